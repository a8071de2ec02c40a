"""The Internet checksum the long way (RFC 1071: 16-bit words, end-around carry), as the
independent reference the tests of wgedge's own checksums compare with."""


def word_sum(data):
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return total


def checksum(data):
    return ~word_sum(data) & 0xFFFF
