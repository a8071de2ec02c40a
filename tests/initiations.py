"""Send handshake initiations from a peer the receiver does not know (tests of its log).

    python -m tests.initiations PUBLIC_KEY_BASE64 HOST PORT COUNT [PRIVATE_KEY_BASE64 [COPIES]]

Each initiation is real (made by the core, mac1 right for the receiver), so the receiver
decrypts its static key: with a fresh key pair of the sender's own (no PRIVATE_KEY given) it
refuses it as unknown-peer. COUNT of them go out as fast as the loop makes them, each sent
COPIES times (default 1: a second copy is a replayed timestamp to a receiver that knows the
sender). Prints the sender's public key in base64.
"""

import base64
import os
import socket
import sys

from wgedge import crypto as crypto_mod
from wgedge.core.device import Device, Output


def main(argv):
    key, host, port, count = base64.b64decode(argv[0]), argv[1], int(argv[2]), int(argv[3])
    private = base64.b64decode(argv[4]) if len(argv) > 4 else os.urandom(32)
    copies = int(argv[5]) if len(argv) > 5 else 1
    device = Device(crypto_mod.load(), os.urandom, private)
    peer = device.add_peer(key)
    peer.endpoint = (host, port)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        for _ in range(count):
            out = Output(device)
            peer.last_sent_handshake = None  # one per REKEY_TIMEOUT otherwise
            peer.send_initiation(0.0, out)
            for datagram, endpoint in out.udp * copies:
                s.sendto(datagram, endpoint)
    print(base64.b64encode(device.public_key).decode())


if __name__ == "__main__":
    main(sys.argv[1:])
