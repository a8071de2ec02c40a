"""Buildroot's own offline checks of wgedge's br2-external tree (`make br-check`).

    python -m tests.brcheck BUILDROOT [--check-package-python PY] [--keep]

For each configs/*_defconfig, against the Buildroot source tree BUILDROOT and in a temporary
output directory outside the repository:
  - `make BR2_EXTERNAL=<repo> O=<tmp> <defconfig>` succeeds;
  - python-wgedge, python-cryptography, python-pyroute2 and wireguard-tools are enabled in .config;
  - `make savedefconfig` writes the committed defconfig back unchanged;
  - every file and directory the configuration names exists (in the repo or in BUILDROOT);
  - python-wgedge's local-site copy (`make python-wgedge-extract`, from a copy of the repo
    that has an output/, .cache/, .venv/ and build/ in it) leaves those out.
Then Buildroot's utils/check-package (in its --br2-external mode) over package/, configs/,
board/, Config.in, external.mk and external.desc must report nothing.

Nothing here downloads anything; the exit status is non-zero when any check fails.
The helpers at the top are shared with tests/test_firmware_tree.py, which runs without Buildroot.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXTERNAL_VAR = "$(BR2_EXTERNAL_WGEDGE_PATH)"

# What every wgedge image must carry.
REQUIRED_PACKAGES = (
    "BR2_PACKAGE_PYTHON3",
    "BR2_PACKAGE_PYTHON_WGEDGE",
    "BR2_PACKAGE_PYTHON_CRYPTOGRAPHY",
    "BR2_PACKAGE_PYTHON_PYROUTE2",
    "BR2_PACKAGE_WIREGUARD_TOOLS",
)

# Options whose value is a space-separated list of files or directories.
PATH_OPTIONS = (
    "BR2_GLOBAL_PATCH_DIR",
    "BR2_ROOTFS_OVERLAY",
    "BR2_ROOTFS_POST_BUILD_SCRIPT",
    "BR2_ROOTFS_POST_IMAGE_SCRIPT",
    "BR2_LINUX_KERNEL_CUSTOM_CONFIG_FILE",
    "BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES",
    "BR2_PACKAGE_RPI_FIRMWARE_CONFIG_FILE",
    "BR2_PACKAGE_RPI_FIRMWARE_CMDLINE_FILE",
)
# Options that are argument lists: the words that name files of this tree count.
ARGS_OPTIONS = ("BR2_ROOTFS_POST_SCRIPT_ARGS", "BR2_ROOTFS_POST_IMAGE_SCRIPT_ARGS",
                "BR2_ROOTFS_POST_BUILD_SCRIPT_ARGS")

# What check-package looks at (it skips readmes, fragments and other data files itself).
CHECK_PACKAGE_PATHS = ("package", "configs", "board", "Config.in", "external.mk", "external.desc")

# Directories that must never reach python-wgedge's build copy of the repository.
SYNC_DECOYS = ("output", ".cache", ".venv", "build")

_LINE = re.compile(r'^(BR2_\w+)=(.*)$')
_UNSET = re.compile(r'^# (BR2_\w+) is not set$')


def defconfigs():
    """-> sorted paths of the tree's configs/*_defconfig."""
    return sorted(glob.glob(os.path.join(ROOT, "configs", "*_defconfig")))


def parse_config(text):
    """A defconfig or .config -> {symbol: value}: 'y', 'n' (is not set) or the unquoted string."""
    values = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            value = m.group(2)
            if value.startswith('"') and value.endswith('"'):
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            values[m.group(1)] = value
            continue
        m = _UNSET.match(line)
        if m:
            values[m.group(1)] = "n"
    return values


def named_paths(values):
    """-> [(option, path as written)] for every file or directory a configuration names."""
    found = []
    for option in PATH_OPTIONS:
        for word in values.get(option, "").split():
            found.append((option, word))
    for option in ARGS_OPTIONS:
        for word in values.get(option, "").split():
            if word.startswith(EXTERNAL_VAR):
                found.append((option, word))
    return found


def resolve(path, buildroot=None):
    """A path as a defconfig writes it -> an absolute path: $(BR2_EXTERNAL_WGEDGE_PATH) is this
    repository, a relative path is relative to the Buildroot tree (None: not checkable here)."""
    if path.startswith(EXTERNAL_VAR):
        return ROOT + path[len(EXTERNAL_VAR):]
    if os.path.isabs(path):
        return path
    return os.path.join(buildroot, path) if buildroot else None


# ---- the checks against a Buildroot tree ------------------------------------------------------

class Report:
    def __init__(self):
        self.passed = 0
        self.failed = []

    def check(self, ok, what, detail=""):
        print("%s  %s" % ("PASS" if ok else "FAIL", what), flush=True)
        if not ok:
            self.failed.append(what)
            if detail:
                print("      " + detail.rstrip().replace("\n", "\n      "), flush=True)
        else:
            self.passed += 1
        return ok


def buildroot_make(buildroot, *args):
    """Run Buildroot's make without the caller's make variables (BOARD=..., -j) leaking in."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL",
                                                             "MAKEOVERRIDES")}
    return subprocess.run(["make", "-C", buildroot] + list(args), env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def tail(text, lines=25):
    return "\n".join(text.splitlines()[-lines:])


def check_defconfig(report, buildroot, path, workdir):
    name = os.path.basename(path)
    out = os.path.join(workdir, name[:-len("_defconfig")])
    print("== %s" % name, flush=True)

    res = buildroot_make(buildroot, "BR2_EXTERNAL=" + ROOT, "O=" + out, name)
    if not report.check(res.returncode == 0, "make %s" % name, tail(res.stdout)):
        return
    with open(os.path.join(out, ".config")) as f:
        config = parse_config(f.read())

    missing = [s for s in REQUIRED_PACKAGES if config.get(s) != "y"]
    report.check(not missing, "enabled in .config: %s" % ", ".join(
        s[len("BR2_PACKAGE_"):].lower().replace("_", "-") for s in REQUIRED_PACKAGES),
        "not enabled: " + " ".join(missing))

    saved = os.path.join(out, "saved_defconfig")
    # BR2_DEFCONFIG: without it savedefconfig would write over the committed file.
    res = buildroot_make(buildroot, "O=" + out, "savedefconfig", "BR2_DEFCONFIG=" + saved)
    if report.check(res.returncode == 0, "make savedefconfig", tail(res.stdout)):
        diff = subprocess.run(["diff", "-u", path, saved], text=True, stdout=subprocess.PIPE)
        report.check(diff.returncode == 0,
                     "savedefconfig reproduces configs/%s" % name, diff.stdout)

    absent = []
    paths = named_paths(config)
    for option, written in paths:
        resolved = resolve(written, buildroot)
        if not os.path.exists(resolved):
            absent.append("%s: %s (%s)" % (option, written, resolved))
    report.check(paths and not absent, "the %d paths the configuration names exist" % len(paths),
                 "\n".join(absent))


def check_local_sync(report, buildroot, workdir):
    """python-wgedge's rsync from a copy of the repository with decoy build directories in it."""
    print("== python-wgedge local-site copy", flush=True)
    src = os.path.join(workdir, "repo-copy")
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "__pycache__", ".hypothesis", ".pytest_cache", ".ruff_cache", "*.egg-info",
        *SYNC_DECOYS))
    for decoy in SYNC_DECOYS:
        os.makedirs(os.path.join(src, decoy, "sub"), exist_ok=True)
        with open(os.path.join(src, decoy, "sub", "marker"), "w") as f:
            f.write("must not be copied\n")

    out = os.path.join(workdir, "sync")
    name = os.path.basename(defconfigs()[0])
    res = buildroot_make(buildroot, "BR2_EXTERNAL=" + ROOT, "O=" + out, name)
    if res.returncode == 0:
        res = buildroot_make(buildroot, "O=" + out, "python-wgedge-extract",
                             "PYTHON_WGEDGE_OVERRIDE_SRCDIR=" + src)
    if not report.check(res.returncode == 0, "make python-wgedge-extract", tail(res.stdout)):
        return
    copies = glob.glob(os.path.join(out, "build", "python-wgedge-*"))
    if not report.check(len(copies) == 1, "one python-wgedge build directory", repr(copies)):
        return
    copy = copies[0]
    leaked = [d for d in SYNC_DECOYS if os.path.exists(os.path.join(copy, d))]
    report.check(not leaked, "the copy leaves out %s" % ", ".join(d + "/" for d in SYNC_DECOYS),
                 "copied: " + " ".join(leaked))
    needed = ("pyproject.toml", "wgedge/__init__.py", "rootfs_overlay/etc/init.d/S50wgedge")
    lost = [p for p in needed if not os.path.exists(os.path.join(copy, p))]
    report.check(not lost, "the copy has what the build and install need",
                 "missing: " + " ".join(lost))


def check_package(report, buildroot, python):
    print("== utils/check-package --br2-external", flush=True)
    files = []
    for p in CHECK_PACKAGE_PATHS:
        full = os.path.join(ROOT, p)
        if os.path.isdir(full):
            for d, _, names in os.walk(full):
                files += [os.path.relpath(os.path.join(d, n), ROOT) for n in sorted(names)]
        else:
            files.append(p)
    res = subprocess.run([python, os.path.join(buildroot, "utils", "check-package"),
                          "--br2-external"] + files, cwd=ROOT, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    report.check(res.returncode == 0 and "0 warnings generated" in res.stdout,
                 "check-package: %d files, %s" % (len(files), res.stdout.strip().splitlines()[-1]
                                                  if res.stdout.strip() else "no output"),
                 res.stdout)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("buildroot", help="a Buildroot source tree")
    parser.add_argument("--check-package-python", default=sys.executable,
                        help="a Python with flake8 and python-magic, for utils/check-package")
    parser.add_argument("--keep", action="store_true", help="keep the temporary output dirs")
    args = parser.parse_args(argv)

    buildroot = os.path.abspath(args.buildroot)
    if not os.path.isfile(os.path.join(buildroot, "utils", "check-package")):
        print("br-check: %s is not a Buildroot source tree (no utils/check-package)" % buildroot)
        return 2
    version = ""
    try:
        version = subprocess.run(["make", "-s", "-C", buildroot, "print-version"], text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.strip()
    except OSError:
        pass
    print("br-check: Buildroot %s at %s" % (version or "(unknown version)", buildroot))

    report = Report()
    workdir = tempfile.mkdtemp(prefix="wgedge-br-check-")
    try:
        for path in defconfigs():
            check_defconfig(report, buildroot, path, workdir)
        check_local_sync(report, buildroot, workdir)
        check_package(report, buildroot, args.check_package_python)
    finally:
        if args.keep:
            print("br-check: output directories kept in %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print("br-check: %d passed, %d failed" % (report.passed, len(report.failed)))
    for what in report.failed:
        print("  failed: " + what)
    return 1 if report.failed or not report.passed else 0


if __name__ == "__main__":
    sys.exit(main())
