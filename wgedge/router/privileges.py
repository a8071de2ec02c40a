"""Drop what the interface daemon does not need once its TUN device and sockets exist.

Kept, and why:
- CAP_NET_ADMIN: `wg set ... fwmark` sets SO_MARK on the UDP sockets at any time.
- CAP_NET_BIND_SERVICE: `wg set ... listen-port` may rebind to a port below 1024.
Everything else leaves the effective, permitted, inheritable and bounding sets, and
no_new_privs is set, so nothing the process could exec regains them. The process stays uid 0
so it can remove its own root-owned socket and pid files on exit. Where ctypes or prctl is
missing (some minimal images), the daemon says so in its log and runs on unchanged.
"""

from wgedge.io.logger import log

CAP_NET_BIND_SERVICE = 10
CAP_NET_ADMIN = 12
KEEP = (CAP_NET_BIND_SERVICE, CAP_NET_ADMIN)
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _last_cap():
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 40


def drop():
    """Returns True when the capabilities were reduced to KEEP."""
    try:
        import ctypes
    except ImportError:
        log.warning("privileges: no ctypes here, keeping all capabilities")
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in range(_last_cap() + 1):
        if cap not in KEEP:
            libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    mask = 0
    for cap in KEEP:
        mask |= 1 << cap
    header = Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (Data * 2)()
    data[0].effective = data[0].permitted = mask & 0xFFFFFFFF
    data[1].effective = data[1].permitted = mask >> 32
    if libc.capset(ctypes.byref(header), data) != 0:
        log.warning("privileges: capset failed (errno %d), keeping capabilities",
                    ctypes.get_errno())
        return False
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    log.info("privileges: dropped all capabilities but CAP_NET_ADMIN and CAP_NET_BIND_SERVICE")
    return True
