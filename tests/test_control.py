"""The control socket (wgedge/io/control.py) and the daemon's handling of control requests
(wgedge/io/loop.py): nothing a client sends reaches the log.
"""

import base64
import logging
import re

from tests.memnet import SeededRng
from wgedge import crypto
from wgedge.core import uapi
from wgedge.core.device import Device, Output

# A key-shaped canary: 32 bytes in base64 and in hex, as a pasted key would look.
CANARY_RAW = bytes(range(0xA0, 0xC0))
CANARY = base64.b64encode(CANARY_RAW).decode()
CANARY_FORMS = (CANARY, CANARY[:16], CANARY_RAW.hex(), CANARY_RAW.hex()[:16],
                CANARY_RAW.hex()[-16:])


def _device_with_peers(count):
    dev = Device(crypto.load("fast"), SeededRng("control"))
    lines = ["private_key=" + "11" * 32, "listen_port=51820"]
    for i in range(count):
        lines.append("public_key=" + uapi.key_to_hex(bytes([9]) + i.to_bytes(4, "big")
                                                     + bytes(27)))
        lines.append("endpoint=192.0.2.%d:%d" % (i % 250 + 1, 1024 + i))
        lines.append("allowed_ip=10.%d.%d.0/24" % (i >> 8 & 255, i & 255))
        lines.append("allowed_ip=fd00::%x/128" % i)
    uapi.apply_set(dev, uapi.parse_set(lines), 1.0, Output(dev))
    return dev


def _daemon_handler(dev):
    """The daemon's own request handler (io/loop.py), on a device without TUN or UDP."""
    from wgedge.io import loop

    iface = loop.Interface.__new__(loop.Interface)
    iface.device, iface.udp, iface.epoll = dev, None, None
    return iface._control_request


def test_malformed_control_lines_log_no_key_material(caplog):
    """The daemon's handler logs what was wrong with a request, never a value from it."""
    dev = _device_with_peers(1)
    handle = _daemon_handler(dev)
    caplog.set_level(logging.DEBUG, logger="wgedge")
    hexkey = CANARY_RAW.hex()
    for op, lines in (
            ("set=1", ["private_key=%s garbage" % CANARY]),
            ("set=1", ["private_key=%s" % hexkey[:-1] + "z"]),
            ("set=1", ["unknown_key=%s" % CANARY]),
            ("set=1", ["%s" % CANARY]),  # a pasted key: base64 ends in '='
            ("set=1", [hexkey]),
            ("set=1", ["public_key=" + "00" * 32, "endpoint=" + CANARY]),
            ("set=1", ["public_key=" + "00" * 32, "allowed_ip=" + hexkey]),
            ("set=1", ["listen_port=" + hexkey]),
            (CANARY, []),
            ("private_key=" + hexkey, ["set=1"]),
            ("get=1", ["private_key=" + hexkey])):
        reply, _ = handle(op, lines)
        assert re.match(rb"errno=-\d+\n\n$", reply)
    assert caplog.text.count("refused set") == 8
    assert caplog.text.count("unknown operation") == 2
    for form in CANARY_FORMS:
        assert form not in caplog.text, caplog.text
