"""Coverage-guided fuzzing (atheris/libFuzzer) of every parser that sees outside bytes.

    python -m tests.fuzz TARGET SECONDS      one target
    make fuzz FUZZ_SECONDS=60                every target (tests/test_fuzz_short.py: 3 s each)

Targets: datagrams (WireGuard messages into an engine with a live session), packets (inner
IP packets from TUN), uapi (control-socket lines parsed and applied), uci and wgquick (config
text). Each checks the invariants, so an assertion failure is a finding too. A crash leaves
its input in the working directory as crash-*; turn it into a regression test.
"""

import sys

import atheris

with atheris.instrument_imports():
    from wgedge import crypto
    from wgedge.config import loader, uci, wgquick
    from wgedge.core import consts as C
    from wgedge.core import uapi, uapi_get
    from wgedge.core.device import Device, Output

REASONS = {getattr(C, n) for n in dir(C) if n.startswith("DROP_")}


def _session():
    from tests.memnet import Net, ipv4_packet

    net = Net(crypto.load("fast"))
    a = net.node("alice", "192.0.2.1")
    b = net.node("bob", "192.0.2.2")
    a.peer_with(b, ["10.0.0.2/32", "fd00::2/128"])
    b.peer_with(a, ["10.0.0.1/32", "fd00::1/128"])
    net.send(a, [ipv4_packet("10.0.0.1", "10.0.0.2", b"x")])
    net.pump()
    return net, a, b


def target_datagrams():
    net, a, b = _session()
    samples = [d for d, _ in a.sent] + [d for d, _ in b.sent]

    def one(data):
        fdp = atheris.FuzzedDataProvider(data)
        if fdp.ConsumeBool() and samples:
            base = bytearray(samples[fdp.ConsumeIntInRange(0, len(samples) - 1)])
            for _ in range(fdp.ConsumeIntInRange(0, 4)):
                if base:
                    base[fdp.ConsumeIntInRange(0, len(base) - 1)] = fdp.ConsumeInt(1) & 255
            msg = bytes(base[:fdp.ConsumeIntInRange(0, len(base))])
        else:
            msg = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200))
        before = sum(b.device.drops.values())
        out = b.device.receive_datagrams([(msg, ("203.0.113.7", 4000))], net.now)
        assert set(out.dropped) <= REASONS
        assert sum(b.device.drops.values()) - before == len(out.dropped)
    return one


def target_packets():
    net, a, b = _session()

    def one(data):
        out = a.device.send_packets([data], net.now)
        assert set(out.dropped) <= REASONS
    return one


def target_uapi():
    def one(data):
        text = data.decode("utf-8", "replace")
        dev = Device(crypto.load("fast"), lambda n: bytes(n))
        try:
            ops = uapi.parse_set(text.split("\n"))
        except uapi.UapiError:
            return
        out = Output(dev)
        try:
            uapi.apply_set(dev, ops, 1.0, out)
        except uapi.UapiError:
            pass
        uapi_get.get_lines(dev)
    return one


def target_uci():
    def one(data):
        loaded = loader.from_uci(data.decode("utf-8", "replace"), "fuzz")
        for e in loaded.errors + loaded.warnings:
            assert isinstance(e, uci.ConfigError)
    return one


def target_wgquick():
    def one(data):
        loaded = wgquick.from_text(data.decode("utf-8", "replace"), "/f/wg0.conf")
        for e in loaded.errors + loaded.warnings:
            assert isinstance(e, uci.ConfigError)
    return one


TARGETS = {"datagrams": target_datagrams, "packets": target_packets, "uapi": target_uapi,
           "uci": target_uci, "wgquick": target_wgquick}


def main():
    name, seconds = sys.argv[1], int(sys.argv[2])
    fn = TARGETS[name]()
    atheris.Setup([sys.argv[0], "-max_total_time=%d" % seconds, "-print_final_stats=1",
                   "-rss_limit_mb=1024"], fn)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
