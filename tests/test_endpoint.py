"""wgedge/core/endpoint.py: the one endpoint parser and formatter, as numbered rows."""

import pytest

from wgedge.core.endpoint import format_endpoint, split_endpoint

SPLIT = [  # (row, text, expected)
    (1, "192.0.2.1:51820", ("192.0.2.1", "51820", False)),
    (2, "vpn.example.net:51820", ("vpn.example.net", "51820", False)),
    (3, "[2001:db8::1]:51820", ("2001:db8::1", "51820", True)),
    (4, "[fe80::1%eth0]:1", ("fe80::1%eth0", "1", True)),
    (5, "[vpn.example.net]:7", ("vpn.example.net", "7", True)),
    (6, "192.0.2.1", None),             # no port
    (7, ":51820", None),                # no host
    (8, "2001:db8::1:51820", None),     # IPv6 without brackets
    (9, "[2001:db8::1]51820", None),    # no ':' after ']'
    (10, "[2001:db8::1:51820", None),   # no ']'
    (11, "192.0.2.1:", ("192.0.2.1", "", False)),  # an empty port: the caller's range check
]


@pytest.mark.parametrize("row, text, expected", SPLIT, ids=[str(r[0]) for r in SPLIT])
def test_split(row, text, expected):
    assert split_endpoint(text) == expected


FORMAT = [
    (1, "192.0.2.1", 51820, "192.0.2.1:51820"),
    (2, "2001:db8::1", 1, "[2001:db8::1]:1"),
    (3, "fe80::1%eth0", 65535, "[fe80::1%eth0]:65535"),
    (4, "vpn.example.net", 51820, "vpn.example.net:51820"),
]


@pytest.mark.parametrize("row, host, port, expected", FORMAT, ids=[str(r[0]) for r in FORMAT])
def test_format(row, host, port, expected):
    assert format_endpoint(host, port) == expected


@pytest.mark.parametrize("row, host, port, text", FORMAT, ids=[str(r[0]) for r in FORMAT])
def test_what_is_formatted_splits_back(row, host, port, text):
    assert split_endpoint(text) == (host, str(port), ":" in host)
