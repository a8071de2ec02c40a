"""Routes that `up` adds for a wg-quick file's `Table`, in a network namespace (root only):
`Table = off` adds none, `Table = 1234` puts them in table 1234 and leaves main alone."""

import pytest

from tests.netns import genkey, sh
from tests.private_run import PrivateRun

pytestmark = [pytest.mark.root]


@pytest.fixture
def run():
    r = PrivateRun()
    try:
        yield r
    finally:
        r.close()


def routes(ns, ifname, table):
    """Routes through `ifname` in `table` that the kernel did not make itself (a table that
    holds nothing does not exist, and `ip` says so: no routes)."""
    out = sh("ip", "route", "show", "table", table, ns=ns, check=False).stdout
    out += sh("ip", "-6", "route", "show", "table", table, ns=ns, check=False).stdout
    return sorted(line.split(" proto")[0].strip() for line in out.splitlines()
                  if "dev %s " % ifname in line + " " and "proto kernel" not in line
                  and not line.startswith(("local", "multicast", "fe80::")))


@pytest.mark.parametrize("table,in_main,in_1234", [
    ("off", [], []),
    ("1234", [], ["10.66.0.0/16 dev IF", "default dev IF", "fd66::/64 dev IF"]),
    ("auto", ["0.0.0.0/1 dev IF", "10.66.0.0/16 dev IF", "128.0.0.0/1 dev IF",
              "fd66::/64 dev IF"], []),
])
def test_table_off_and_number(nets, run, tmp_path, table, in_main, in_1234):
    """Old code: Table was ignored, and every case routed 0.0.0.0/1 and 128.0.0.0/1 in main."""
    ns = nets.ns("t")
    ifname = "wgt" + nets.tag
    priv, _ = genkey()
    _, pub = genkey()
    conf = tmp_path / ("%s.conf" % ifname)
    conf.write_text("[Interface]\nPrivateKey = %s\nAddress = 10.65.0.1/24, fd65::1/64\n"
                    "Table = %s\n\n[Peer]\nPublicKey = %s\n"
                    "AllowedIPs = 0.0.0.0/0, 10.66.0.0/16, fd66::/64\n" % (priv, table, pub))
    conf.chmod(0o600)
    run.wgedge("up", str(conf), "--no-watchdog", ns=ns)
    try:
        expect = [[r.replace("IF", ifname) for r in want] for want in (in_main, in_1234)]
        assert [routes(ns, ifname, "main"), routes(ns, ifname, "1234")] == expect
        state = run.path("/var/run/wgedge/%s.state.json" % ifname)
        with open(state) as f:
            recorded = f.read()
        assert ("1234" in recorded) == (table == "1234")
    finally:
        run.wgedge("down", ifname, ns=ns)
    assert routes(ns, ifname, "all") == []


def test_reload_moves_routes_between_tables(nets, run, tmp_path):
    """A route in another table is recorded with its table, so a reload that changes `Table`
    takes the old routes away and puts the new ones in place, and `down` leaves none."""
    ns = nets.ns("m")
    ifname = "wgm" + nets.tag
    priv, _ = genkey()
    _, pub = genkey()
    conf = tmp_path / ("%s.conf" % ifname)
    text = ("[Interface]\nPrivateKey = %s\nAddress = 10.65.0.1/24\nTable = %%s\n\n[Peer]\n"
            "PublicKey = %s\nAllowedIPs = 10.66.0.0/16\n" % (priv, pub))
    conf.write_text(text % "auto")
    conf.chmod(0o600)
    run.wgedge("up", str(conf), "--no-watchdog", ns=ns)
    try:
        want = ["10.66.0.0/16 dev %s" % ifname]
        assert [routes(ns, ifname, "main"), routes(ns, ifname, "1234")] == [want, []]
        conf.write_text(text % "1234")
        run.wgedge("reload", str(conf), ns=ns)
        assert [routes(ns, ifname, "main"), routes(ns, ifname, "1234")] == [[], want]
        conf.write_text(text % "off")
        run.wgedge("reload", str(conf), ns=ns)
        assert [routes(ns, ifname, "main"), routes(ns, ifname, "1234")] == [[], []]
        conf.write_text(text % "1234")
        run.wgedge("reload", str(conf), ns=ns)
    finally:
        run.wgedge("down", ifname, ns=ns)
    assert routes(ns, ifname, "all") == []
