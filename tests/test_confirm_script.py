"""rootfs_overlay's S99wgedge-confirm: a slot on trial is confirmed only when wgedge's tunnels
run. `wgedge` and `wgedge-upgrade` are stand-ins on PATH that print what a real one would and
record what they were asked."""

import os
import stat
import subprocess
import sys

import pytest

from tests.netns import ROOT

SCRIPT = os.path.join(ROOT, "rootfs_overlay", "etc", "init.d", "S99wgedge-confirm")


def _tool(path, body):
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _start(tmp_path, trying, status_json):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (tmp_path / "status.json").write_text(status_json)
    calls = tmp_path / "calls"
    _tool(bindir / "wgedge", 'echo "wgedge $*" >> %s\ncat %s\n' % (calls, tmp_path / "status.json"))
    _tool(bindir / "wgedge-upgrade", 'echo "wgedge-upgrade $*" >> %s\n' % calls)
    # python3 of the image: the interpreter running the tests
    os.symlink(sys.executable, bindir / "python3")
    boot = tmp_path / "wgedge-boot"
    boot.write_text("slot=b\ndevice=/dev/vda2\ntrying=%d\n" % trying)
    env = dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"]),
               WGEDGE_BOOT_FILE=str(boot))
    res = subprocess.run(["sh", SCRIPT, "start"], env=env, capture_output=True, text=True,
                         timeout=60)
    return res, (calls.read_text().splitlines() if calls.exists() else [])


RUNNING = '[{"interface": "wg0", "listen_port": 51820, "peers": []}]'


def test_a_trial_boot_whose_tunnels_run_is_confirmed(tmp_path):
    res, calls = _start(tmp_path, 1, RUNNING)
    assert res.returncode == 0, res.stdout + res.stderr
    assert calls == ["wgedge status --json", "wgedge-upgrade --confirm"]


@pytest.mark.parametrize("status_json", ["[]", '[{"interface": "wg0", "error": "no answer"}]',
                                         "not json"])
def test_a_trial_boot_without_a_running_tunnel_is_not_confirmed(tmp_path, status_json):
    res, calls = _start(tmp_path, 1, status_json)
    assert res.returncode == 1
    assert "not confirmed" in res.stdout and "Traceback" not in res.stdout + res.stderr
    assert "wgedge-upgrade --confirm" not in calls


def test_a_boot_not_on_trial_leaves_it_to_the_tool(tmp_path):
    res, calls = _start(tmp_path, 0, "[]")
    assert res.returncode == 0
    assert calls == ["wgedge-upgrade --confirm"]
