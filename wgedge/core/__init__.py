"""The sans-I/O WireGuard protocol core.

Rules for every module in this package: no sockets, threads, clocks or randomness of its own
(time and a random source are passed in); MicroPython-compatible subset only (plain classes,
int constants, struct, bytes/bytearray/memoryview; no dataclasses, enum, ipaddress, typing at
run time). tests/test_subset.py enforces the import list.
"""
