"""`private_key 'generate'` (UCI, as OpenWrt): a new key written into the file in its place."""

import os
import stat

from wgedge.router import atomicfile


def generate_keys(loaded):
    """`private_key 'generate'`: make a key and write it into the file in place of 'generate'
    (as OpenWrt does), keeping every other byte of the file. The file is replaced atomically
    and durably (wgedge/router/atomicfile.py) before this returns, so a key that runs or is
    shown is the key on the disk; its mode keeps the owner's bits only (it now holds a private
    key). A file with no 'generate' left is not written at all: the key is made once."""
    from wgedge.config.schema import encode_key
    from wgedge.core.noise import clamp

    targets = [i for i in loaded.interfaces if i.generate_line and i.private_key is None]
    if not targets:
        return
    with open(loaded.path, "rb") as f:
        lines = f.read().split(b"\n")
    for iface in targets:
        iface.private_key = clamp(os.urandom(32))
        key = encode_key(iface.private_key).encode()
        i = iface.generate_line - 1
        lines[i] = lines[i].replace(b"'generate'", b"'" + key + b"'", 1) \
            if b"'generate'" in lines[i] else lines[i].replace(b"generate", key, 1)
    mode = stat.S_IMODE(os.stat(loaded.path).st_mode) & 0o700
    try:
        atomicfile.write(loaded.path, b"\n".join(lines), mode)
    except OSError as exc:  # named after the config, not the temporary file beside it
        raise OSError(exc.errno, "cannot write the generated key: %s" % exc.strerror,
                      loaded.path) from None
