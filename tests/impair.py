"""A UDP relay that misbehaves like a bad network: loss, duplication, reordering, delay with
jitter. Stands in for `tc netem`, which kernels without sch_netem (this test machine's among
them) cannot do. Runs inside a test namespace; one side talks to it as if it were the peer.

    python -m tests.impair LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT [seconds]

Datagrams from the first client are forwarded to TARGET from a second socket, and answers
come back the same way. It stops by itself after `seconds`.
"""

import heapq
import random
import select
import socket
import sys
import time

LOSS = 0.05
DUPLICATE = 0.05
REORDER = 0.10  # this share is held back 20-40 ms more than the rest
DELAY = 0.050  # each way: 100 ms round trip
JITTER = 0.010


def main(listen_host, listen_port, target_host, target_port, seconds=300.0):
    rng = random.Random(1)
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind((listen_host, int(listen_port)))
    back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    back.bind((listen_host, 0))
    target = (target_host, int(target_port))
    client = None
    queue = []  # (due, seq, socket, data, destination)
    seq = 0
    stop = time.monotonic() + float(seconds)
    stats = {"in": 0, "lost": 0, "dup": 0, "reordered": 0}
    while time.monotonic() < stop:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, sock, data, dest = heapq.heappop(queue)
            try:
                sock.sendto(data, dest)
            except OSError:
                pass
        timeout = max(0.0, queue[0][0] - now) if queue else 0.05
        ready, _, _ = select.select([front, back], [], [], min(timeout, 0.05))
        for s in ready:
            data, addr = s.recvfrom(65535)
            stats["in"] += 1
            if s is front:
                client = addr
                out_sock, dest = back, target
            elif client is not None:
                out_sock, dest = front, client
            else:
                continue
            if rng.random() < LOSS:
                stats["lost"] += 1
                continue
            copies = 2 if rng.random() < DUPLICATE else 1
            stats["dup"] += copies - 1
            for _ in range(copies):
                delay = DELAY + rng.uniform(-JITTER, JITTER)
                if rng.random() < REORDER:
                    delay += rng.uniform(0.020, 0.040)
                    stats["reordered"] += 1
                seq += 1
                heapq.heappush(queue, (now + delay, seq, out_sock, data, dest))
    print(stats, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
