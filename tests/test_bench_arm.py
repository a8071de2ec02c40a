"""The ARM benchmark's arithmetic and bookkeeping (tests/bench/arm), without QEMU.

The benchmark itself (`make bench-arm`) needs minutes of emulation; these check what decides
its reported figures: the idle rate subtracted from instruction counts, the host-load verdict,
the plugin's counter file layout, and that a run replaces only its own architecture's section
of docs/benchmarks-arm.md.
"""

import struct

import pytest

from tests.bench.arm import hostload, plugin, report


def _count(start, loaded, idle, loaded_s=2.0, idle_s=2.0, packets=1000):
    return {"snaps": {"start": start, "loaded": loaded, "idle": idle}, "loaded_s": loaded_s,
            "idle_s": idle_s, "packets": packets, "bytes": packets * 1368, "mbit": 1.0,
            "load": {"others": 0.0}}


def test_per_packet_subtracts_the_idle_rate_scaled_to_the_window():
    # 10M user + 4M kernel during a 2 s transfer; the idle window (1 s) ran 1M + 0.5M.
    c = _count((0, 0), (10_000_000, 4_000_000), (11_000_000, 4_500_000), 2.0, 1.0, 1000)
    user, kernel = report.per_packet(c)
    assert user == pytest.approx((10_000_000 - 2 * 1_000_000) / 1000)
    assert kernel == pytest.approx((4_000_000 - 2 * 500_000) / 1000)


def test_read_counters_sums_user_and_kernel_over_vcpu_slots(tmp_path):
    path = tmp_path / "counters"
    data = bytearray(plugin.MAX_VCPUS * plugin.SLOT_WORDS * 8)
    struct.pack_into("<QQ", data, 0, 5, 7)
    struct.pack_into("<QQ", data, plugin.SLOT_WORDS * 8, 11, 13)
    struct.pack_into("<QQ", data, 63 * plugin.SLOT_WORDS * 8, 1, 2)
    path.write_bytes(bytes(data))
    assert plugin.read_counters(str(path)) == (17, 22)


def test_plugin_slot_layout_matches_the_c_source():
    with open(plugin.SOURCE) as f:
        src = f.read()
    assert "#define MAX_VCPUS %d" % plugin.MAX_VCPUS in src
    assert "#define SLOT_WORDS %d" % plugin.SLOT_WORDS in src


def test_host_window_counts_only_what_ran_outside_qemu(monkeypatch):
    # /proc/stat totals (total, busy) and QEMU's own CPU time, before and after.
    host = iter([(1000, 400), (1200, 580)])
    qemu = iter([300, 450])
    monkeypatch.setattr(hostload, "_host", lambda: next(host))
    monkeypatch.setattr(hostload, "_proc", lambda pid: next(qemu))
    monkeypatch.setattr(hostload, "_loadavg", lambda: 1.0)
    w = hostload.Window(1).start().stop()
    assert w["others"] == pytest.approx((180 - 150) / 200)
    assert w["quiet"] == (w["others"] <= hostload.MAX_OTHERS)


def _results(arch, quiet=True):
    cand = {"tcp1": 10.0, "tcp1_whole": 8.0, "tcp4": 12.0, "udp64": 900.0, "busy": 0.9}
    tunnel = dict(cand, rtt_idle=3.0, rtt_loaded=40.0, tcp1_hog=6.0, rss_kb=[20000, 21000])
    rnd = {"attempt": 0, "at": "10:00:00", "order": report.CANDIDATES,
           "veth": cand, "wgedge": dict(tunnel, nice=[-10]),
           "wireguard-go": dict(tunnel, tcp1=5.0, tcp1_whole=2.0, nice=[0], tcp1_renice=5.0,
                                tcp1_hog_renice=4.0),
           "core": {"send_us": 30.0, "recv_us": 35.0, "recv_gro_us": 34.0,
                    "handshakes_per_s": 100.0},
           "load": {"others": 0.05 if quiet else 0.5, "qemu_cores": 1.9, "loadavg": [1, 2],
                    "quiet": quiet}}
    counts = {n: _count((0, 0), (100_000_000, 20_000_000), (100_100_000, 20_010_000))
              for n in report.CANDIDATES}
    return {"arch": arch, "date": "2026-11-30 10:00 UTC", "qemu": "QEMU emulator 7.2",
            "host_cpus": 2, "max_others": 0.15, "rounds": [rnd], "counts": counts,
            "command": "make bench-arm ARCH=%s" % arch, "minutes": 20.0,
            "guest": {"uname": "6.1", "python": "3.11.2", "cryptography": "38.0.4",
                      "crypto": "fast", "wireguard_go": "wireguard-go v0", "iperf3": "iperf 3"}}


def test_a_run_replaces_only_its_own_section(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "plot", lambda results, m, path: False)
    doc = str(tmp_path / "benchmarks-arm.md")
    report.write(_results("arm64"), doc)
    report.write(_results("armhf"), doc)
    first = open(doc).read()
    assert first.count("<!-- bench-arm arm64 -->") == 1
    assert first.count("<!-- bench-arm armhf -->") == 1
    again = _results("arm64")
    again["date"] = "2026-12-01 09:00 UTC"
    report.write(again, doc)
    text = open(doc).read()
    assert "2026-12-01 09:00 UTC" in text and "2026-11-30 10:00 UTC" in text
    assert text.count("<!-- bench-arm arm64 -->") == 1
    assert text.index("<!-- bench-arm arm64 -->") < text.index("<!-- bench-arm armhf -->")
    # The ratio rows: wgedge 10 Mbit/s against wireguard-go's 5 after the slow start, 8
    # against 2 over the whole run.
    assert "| TCP 1 stream, Mbit/s (after the slow start) | 10.0 | 5.0 | 2.00 |" in text
    assert ("| TCP 1 stream, Mbit/s over the whole run (slow start included) | 8.0 | 2.0 | "
            "4.00 |" in text)
    # The hog: wgedge kept 6/10, wireguard-go 6/5 at its own nice value and 4/5 at wgedge's.
    assert ("| fraction of quiet TCP 1 stream kept with the hog, each daemon at its own nice "
            "value | 0.60 | 1.20 | 0.50 |" in text)
    assert ("| the same, both daemons at nice -10 (wireguard-go reniced) | 0.60 | 0.80 | 0.75 "
            "|" in text)
    assert "| daemons' nice value | -10 | 0 | | |" in text


def test_a_round_on_a_busy_host_reports_no_figures(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "plot", lambda results, m, path: False)
    doc = str(tmp_path / "benchmarks-arm.md")
    report.write(_results("arm64", quiet=False), doc)
    text = open(doc).read()
    assert "refused: busy host" in text
    assert "no round ran on a quiet host" in text
    assert "| TCP 1 stream, Mbit/s (after" not in text


def test_the_runtime_floor_is_reported_beside_the_daemons(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "plot", lambda results, m, path: False)
    doc = str(tmp_path / "benchmarks-arm.md")
    res = _results("armhf")
    res["guest"]["memory_floor"] = [
        {"name": "the interpreter alone", "hwm_kb": 5424, "rss_kb": 5424, "anon_kb": 1632,
         "runs": [5428, 5424, 5412]},
        {"name": "libcrypto through ctypes, one process", "error": "IndexError: list index"}]
    report.write(res, doc)
    text = open(doc).read()
    assert "### The runtime floor" in text
    assert "| the interpreter alone | 5.3 | 1.6 | 5.3, 5.3, 5.3 |" in text
    assert "| libcrypto through ctypes, one process | failed: IndexError: list index | | |" in text
    assert ("| wgedge's daemons (`wgedge IFNAME`: forked, detached), after the rounds' traffic "
            "| 19.5-20.5 | | |" in text)
    report.write(_results("arm64"), doc)  # a run without the floor has no such section
    arm64 = open(doc).read().split("<!-- bench-arm arm64 -->")[1]
    assert "### The runtime floor" not in arm64


def test_the_floor_is_measured_in_fresh_interpreters_without_wgedge():
    from tests.bench.arm import memory

    floor = {r["name"]: r for r in memory.measure_floor(1)}
    assert list(floor) == [name for name, _ in memory.FLOOR_VARIANTS]
    bare = floor["the interpreter alone"]["hwm_kb"]
    for name in ("cryptography, one process", "cryptography, forked after loading"):
        assert floor[name]["hwm_kb"] > bare + 1024, floor  # cryptography's library and its use
    # The measured code imports nothing of wgedge (it would not be a floor) and no json.
    for _, body in memory.FLOOR_VARIANTS:
        assert "wgedge" not in body and "json" not in body
