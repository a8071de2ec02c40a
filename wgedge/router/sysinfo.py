"""What this host offers wgedge: CPU features that matter for crypto, Python, backends.

Read by `wgedge info` and logged at daemon start-up, so an operator can see which path runs;
`warning_lines` says what to fix (printed by `wgedge info`; the daemon logs the backend's
warnings at warning level).
Imports only what the daemon has loaded anyway: `platform` alone cost 140 kB of its RSS.
"""

import os
import sys


def cpu_features(cpuinfo_path="/proc/cpuinfo"):
    """-> dict: arch, neon (NEON/ASIMD present), aes (AES instructions present), flags seen."""
    arch = os.uname().machine or "unknown"
    flags = set()
    try:
        with open(cpuinfo_path) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("flags", "features"):
                    flags.update(value.split())
    except OSError:
        pass
    return {
        "arch": arch,
        "neon": bool(flags & {"neon", "asimd"}),
        "aes": "aes" in flags,
    }


def python_description():
    impl = sys.implementation.name
    return "%s %s" % (impl, ".".join(str(n) for n in sys.version_info[:3]))


def describe_lines(backend):
    from wgedge import __version__

    cpu = cpu_features()
    return [
        "wgedge %s" % __version__,
        "python: %s" % python_description(),
        "crypto: %s" % backend.describe(),
        "cpu: %s, NEON/ASIMD %s, AES %s (neither is needed: ChaCha20-Poly1305, BLAKE2s and "
        "X25519 run on plain integer code)" % (
            cpu["arch"], "yes" if cpu["neon"] else "no", "yes" if cpu["aes"] else "no"),
    ]


def warning_lines(backend):
    """["warning: ..."] for what the operator should fix, e.g. a slow `cryptography`."""
    return ["warning: %s" % text for text in backend.warnings()]


def offload_lines():
    """Kernel features the I/O layer can use (reported by `wgedge info`)."""
    import socket

    found = []
    found.append("tun: %s" % ("yes" if os.path.exists("/dev/net/tun") else "no /dev/net/tun"))
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for name, level, opt in (("UDP_SEGMENT (GSO)", socket.IPPROTO_UDP, 103),
                                     ("UDP_GRO", socket.IPPROTO_UDP, 104)):
                try:
                    s.getsockopt(level, opt)
                    found.append("%s: yes" % name)
                except OSError:
                    found.append("%s: no" % name)
        finally:
            s.close()
    except OSError:
        pass
    return ["kernel: " + ", ".join(found)]
