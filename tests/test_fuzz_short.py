"""Every coverage-guided fuzz target for a few seconds (`make fuzz` runs them longer)."""

import os
import re
import subprocess
import sys

import pytest

from tests.netns import ROOT

TARGETS = ["datagrams", "packets", "uapi", "uci", "wgquick"]


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_briefly(target, tmp_path):
    res = subprocess.run([sys.executable, "-m", "tests.fuzz", target, "3"], cwd=str(tmp_path),
                         env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
                         timeout=120)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    runs = re.search(r"Done (\d+) runs", out)
    assert runs and int(runs.group(1)) > 100, out[-2000:]
