"""wgedge/cli.py: a command or an interface name, `down` touching only what wgedge runs,
relative paths, `up --log`, and errors that say what to do.

The rule for words is tested without root; everything else runs in its own network namespace
with private /var/run/wgedge and /var/run/wireguard (fixture `run`, tests/private_run.py).
"""

import pytest

from tests.netns import sh
from tests.private_run import processes_in
from wgedge import cli


# --- the rule: a command or an interface name --------------------------------------------------
@pytest.mark.parametrize("word, meant", [
    ("stauts", "status"), ("statsu", "status"), ("stat", "status"), ("Status", "status"),
    ("dwon", "down"), ("upp", "up"), ("relaod", "reload"), ("chekc", "check"),
    ("inf", "info"), ("show", "status"), ("showconf", "status"), ("set", "reload"),
    ("stop", "down"), ("start", "up")])
def test_a_word_near_a_command_is_refused_with_a_suggestion(word, meant):
    assert cli._ifname_problem(word, after_options=False).startswith(
        "unknown command '%s'; did you mean '%s'?" % (word, meant))


@pytest.mark.parametrize("word", ["wg0", "wg1", "wg10", "vpn", "home", "office", "tun0", "lan",
                                  "wan", "dmz", "relay", "mullvad", "site-b", "wg_hub",
                                  "eth0.10", "de"])
def test_usual_interface_names_stay_interface_names(word):
    assert cli._ifname_problem(word, after_options=False) is None


@pytest.mark.parametrize("word, needle", [
    ("a" * 16, "1-15 characters"), ("my tun", "invalid interface name"),
    ("a\vb", "invalid interface name"), ("wg%d", "invalid interface name"),
    ("..", "invalid interface name"), ("a:b", "invalid interface name"),
    ("wg0.conf", "wgedge up wg0.conf"), ("site.uci", "wgedge up site.uci"),
    ("genkey", "wg genkey")])
def test_names_linux_refuses_and_other_non_names_are_explained(word, needle):
    assert needle in cli._ifname_problem(word, after_options=False)


def test_a_command_after_daemon_options_is_not_an_interface():
    assert "is a command" in cli._ifname_problem("status", after_options=True)


# --- nothing is created for a word that is not an interface ------------------------------------
@pytest.mark.root
@pytest.mark.parametrize("args, needle", [
    (["stauts"], "unknown command 'stauts'; did you mean 'status'?"),
    (["stauts", "--json"], "did you mean 'status'?"),
    (["show"], "unknown command 'show'; did you mean 'status'?"),
    (["-f", "show"], "did you mean 'status'?"),
    (["-f", "status"], "'status' is a command"),
    (["wg0.conf"], "wgedge up wg0.conf"),
    (["wg%d"], "invalid interface name"),
    (["my tun"], "invalid interface name")])
def test_a_word_that_is_not_an_interface_creates_nothing(nets, run, args, needle):
    ns = nets.ns("w")
    links_before = sh("ip", "-o", "link", "show", ns=ns).stdout
    res = run.wgedge(*args, ns=ns, check=False, timeout=30)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert needle in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1, res.stderr  # one line
    assert sh("ip", "-o", "link", "show", ns=ns).stdout == links_before
    assert run.files() == [] and processes_in(ns) == []
