"""Run Python code under MicroPython 1.27 (the WebAssembly build, driven by node).

`run_micropython(script_text)` runs the text as `__main__` with the MicroPython-safe part of
wgedge importable (the same files tests/test_subset.py guards; tests/mpy/run.mjs copies them)
and returns what the script printed. A script that raises, or exits non-zero, fails the calling
test with MicroPython's traceback. Tests get it through the `micropython` fixture (conftest.py),
which fails with a clear message when node or the npm package is missing.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "tests" / "mpy" / "run.mjs"
PACKAGE_MJS = (
    ROOT / ".cache" / "micropython" / "node_modules" / "@micropython"
    / "micropython-webassembly-pyscript" / "micropython.mjs"
)

# The MicroPython-safe part of the package (keep in step with SAFE_* in tests/mpy/run.mjs).
SAFE_FILES = ("wgedge/__init__.py", "wgedge/crypto/__init__.py", "wgedge/config/__init__.py",
              "wgedge/config/uci.py", "wgedge/config/export.py")
SAFE_TREES = ("wgedge/core", "wgedge/crypto/pure")

SETUP_HINT = "run `make micropython` (needs node >= 18 and npm; `make setup` installs them)"


def safe_module_paths(root=ROOT):
    """Every MicroPython-safe module file that exists, sorted."""
    paths = [root / rel for rel in SAFE_FILES if (root / rel).is_file()]
    for tree in SAFE_TREES:
        paths.extend(p for p in (root / tree).rglob("*.py") if "__pycache__" not in p.parts)
    return sorted(paths)


def module_name(path, root=ROOT):
    """wgedge/core/consts.py -> "wgedge.core.consts"; a package's __init__.py -> the package."""
    parts = list(Path(path).resolve().relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def micropython_problem():
    """Why MicroPython cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed: " + SETUP_HINT
    if not PACKAGE_MJS.is_file():
        return "MicroPython npm package missing (%s): %s" % (PACKAGE_MJS, SETUP_HINT)
    return None


def run_micropython(script_text, timeout=120):
    """Run `script_text` under MicroPython; return its stdout. AssertionError on any failure."""
    problem = micropython_problem()
    if problem:
        raise AssertionError(problem)
    with tempfile.TemporaryDirectory(prefix="wgedge-mpy-") as tmp:
        script = Path(tmp) / "script.py"
        script.write_text(script_text)
        try:
            proc = subprocess.run(
                ["node", str(RUNNER), str(ROOT), str(script)],
                capture_output=True, text=True, timeout=timeout, env=_env(),
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout or b""
            out = out.decode(errors="replace") if isinstance(out, bytes) else out
            raise AssertionError(
                "MicroPython run timed out after %ss\n--- stdout ---\n%s" % (timeout, out)
            ) from None
    if proc.returncode != 0:
        raise AssertionError(
            "MicroPython run failed (exit %d)\n--- stdout ---\n%s--- stderr ---\n%s"
            % (proc.returncode, proc.stdout, proc.stderr)
        )
    return proc.stdout


def _env():
    env = dict(os.environ)
    env.pop("NODE_OPTIONS", None)  # a developer's node flags must not change the run
    return env
