"""First boot of a flashed router: a config to start from, and the public keys on the console.

    install_default(config, default)   no config file yet: copy the image's default in place
    announce(loaded, console)          "wgedge: IFNAME public key BASE64" per interface

`wgedge up --install-default FILE --console DEV` runs both (S50wgedge passes
/usr/share/wgedge/default-config and /dev/console), around the key generation of
wgedge/router/keys.py, so a headless board can be enrolled from its serial log:

    1. /etc/config/wgedge missing -> the default installed (atomically, 0600)
    2. `private_key 'generate'` -> a key written into the file (once: it is then a key)
    3. each interface's public key on the console, at every start

Rules: an existing config is never touched here, whatever it holds; only public keys are
printed; a console that cannot be written is worth a warning, never a failed start.
"""

import os
import sys

from wgedge.router import atomicfile

CONSOLE = "/dev/console"
DEFAULT_CONFIG = "/usr/share/wgedge/default-config"


class FirstBootError(Exception):
    pass


def install_default(config, default):
    """Copy `default` to `config` (mode 0600, atomically and durably) when `config` does not
    exist -> True if it was installed. Raises FirstBootError when it cannot be."""
    if os.path.lexists(config):
        return False
    try:
        with open(default, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise FirstBootError("no %s and no default to install: cannot read %s: %s"
                             % (config, default, exc.strerror or exc)) from None
    try:
        atomicfile.makedirs(os.path.dirname(os.path.abspath(config)))
        atomicfile.write(config, data, 0o600)
    except OSError as exc:
        raise FirstBootError("cannot install the default config as %s: %s"
                             % (config, exc.strerror or exc)) from None
    return True


def public_key_lines(loaded):
    """One line per interface with a private key: "wgedge: IFNAME public key BASE64"."""
    from wgedge.config.schema import encode_key
    from wgedge.crypto import load as load_crypto

    crypto = load_crypto()
    return ["wgedge: %s public key %s" % (i.name, encode_key(crypto.x25519_public(i.private_key)))
            for i in loaded.interfaces if i.private_key is not None]


def announce(loaded, console):
    """Write the public key lines to `console` (a terminal; a file in tests)."""
    lines = public_key_lines(loaded)
    if not lines:
        return
    try:
        with open(console, "a") as f:
            f.write("".join(line + "\n" for line in lines))
    except OSError as exc:
        print("wgedge: warning: cannot write the public keys to %s: %s"
              % (console, exc.strerror or exc), file=sys.stderr)
