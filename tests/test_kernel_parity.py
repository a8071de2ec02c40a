"""Behaviours of the kernel's WireGuard that a userspace daemon must copy (issue 17), checked
in throwaway namespaces against the real kernel:

- a new interface has MTU 1420; `wgedge up` keeps it without an mtu option, and an explicit
  one wins.
"""

import json

import pytest

from tests.netns import genkey, sh

pytestmark = [pytest.mark.root]


def link_stats(ns, ifname):
    info = json.loads(sh("ip", "-s", "-j", "link", "show", ifname, ns=ns).stdout)[0]
    return info["mtu"], info["stats64"]["rx"]["bytes"] + info["stats64"]["tx"]["bytes"]


def test_new_interface_has_mtu_1420(nets):
    ns = nets.ns("m")
    ifname = "wpm" + nets.tag
    nets.start_wgedge(ns, ifname)
    assert link_stats(ns, ifname)[0] == 1420


@pytest.mark.parametrize("mtu", [None, 1380])
def test_up_keeps_1420_without_an_mtu_option_and_an_explicit_one_wins(nets, run, tmp_path,
                                                                       mtu):
    ns = nets.ns("u")
    ifname = "wpu" + nets.tag
    priv, _ = genkey()
    conf = tmp_path / "wg.uci"
    conf.write_text("config interface '%s'\n\toption proto 'wireguard'\n"
                    "\toption private_key '%s'\n\tlist addresses '10.78.0.1/24'\n%s"
                    % (ifname, priv, "" if mtu is None else "\toption mtu '%d'\n" % mtu))
    conf.chmod(0o600)
    run.wgedge("up", str(conf), "--no-watchdog", ns=ns)
    try:
        assert link_stats(ns, ifname)[0] == (1420 if mtu is None else mtu)
    finally:
        run.wgedge("down", ifname, ns=ns, check=False)
