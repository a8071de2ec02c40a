"""Crypto benchmarks: microseconds per operation for each backend.

Run with `python -m tests.bench.crypto_bench`. Each figure is the best of several rounds (the
least disturbed by other work on the machine), so compare backends within one run.
"""

import os
import time

from wgedge import crypto

PACKET = 1420  # a full packet at WireGuard's default MTU


def _best_us(fn, number, rounds=5):
    best = None
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        per_op = (time.perf_counter() - t0) / number * 1e6
        best = per_op if best is None else min(best, per_op)
    return best


def measure(backend):
    """{operation: microseconds} for one backend."""
    quick = backend.name == "fast"  # repeat counts sized so the whole run takes about a second
    aead = backend.aead(os.urandom(32))
    nonce = bytes(12)
    packet = os.urandom(PACKET)
    sealed = aead.encrypt(nonce, packet, None)
    private, public = os.urandom(32), backend.x25519_public(os.urandom(32))
    block = os.urandom(64)
    return {
        "aead_encrypt_1420": _best_us(lambda: aead.encrypt(nonce, packet, None),
                                      5000 if quick else 100),
        "aead_decrypt_1420": _best_us(lambda: aead.decrypt(nonce, sealed, None),
                                      5000 if quick else 100),
        "x25519_shared": _best_us(lambda: backend.x25519(private, public), 500 if quick else 20),
        "blake2s_hash_64": _best_us(lambda: backend.hash(block), 20000 if quick else 300),
    }


def run():
    """{backend name: {operation: microseconds}} for every backend that loads here."""
    results = {}
    for name in crypto.BACKENDS:
        try:
            backend = crypto.load(name)
        except ValueError:  # `cryptography` missing: there is no fast backend to measure
            continue
        results[name] = measure(backend)
    return results


def report(results):
    """A Markdown table: one row per operation, one column per backend."""
    names = list(results)
    operations = list(results[names[0]]) if names else []
    lines = ["| operation | " + " | ".join("%s (µs)" % n for n in names) + " |",
             "|---|" + "---:|" * len(names)]
    for op in operations:
        lines.append("| %s | " % op + " | ".join("%.1f" % results[n][op] for n in names) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run()))
