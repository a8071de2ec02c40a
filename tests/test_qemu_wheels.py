"""The QEMU test image's pinned wheels (tests/qemu/wheels-ARCH.txt, tests/qemu/build.py): the
pins are the firmware's cryptography on the fast path, and the build refuses a wheel whose
SHA-256 is not the pinned one. No network: wheels here are made by the test."""

import hashlib
import os
import re
import zipfile

import pytest

from tests.netns import ROOT
from tests.qemu import build
from wgedge.crypto import fast

ARCHES = sorted(build.WHEEL_MACHINES)


def _makefile_buildroot_version():
    with open(os.path.join(ROOT, "Makefile")) as f:
        return re.search(r"^BUILDROOT_VERSION := (\S+)$", f.read(), re.M).group(1)


@pytest.mark.parametrize("arch", ARCHES)
def test_pins_are_the_firmwares_cryptography_on_the_fast_path(arch):
    path = build.WHEEL_PINS % arch
    pins = build.read_pins(path)
    names = [p[0] for p in pins]
    assert "cryptography" in names and len(set(names)) == len(names)
    version = build.pinned_version(arch, "cryptography")
    assert fast.slow_path(version) is None, version
    # The file says which Buildroot release it follows; moving BUILDROOT_VERSION means
    # looking at that release's python-cryptography (and python-cffi) again.
    with open(path) as f:
        declared = re.search(r"^# buildroot: (\S+)$", f.read(), re.M).group(1)
    assert declared == _makefile_buildroot_version()


def test_both_images_carry_the_same_cryptography():
    assert len({build.pinned_version(a, "cryptography") for a in ARCHES}) == 1


def _wheel(path, entries):
    with zipfile.ZipFile(path, "w") as z:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            z.writestr(info, data)
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _pins(tmp_path, line):
    path = tmp_path / "wheels.txt"
    path.write_text("# test\n" + line + "\n")
    return str(path)


def test_a_cached_wheel_with_another_hash_is_refused(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    good = _wheel(str(cache / "demo_pkg-1.0-py3-none-any.whl"), [("demo_pkg/__init__.py", b"", 0o644)])
    pins = _pins(tmp_path, "demo-pkg==1.0 --hash=sha256:" + good)
    assert build.fetch_wheels("arm64", "3.11", pins, str(cache)) == [
        str(cache / "demo_pkg-1.0-py3-none-any.whl")]
    # The same name, other bytes (a changed upload, a damaged download): refused.
    _wheel(str(cache / "demo_pkg-1.0-py3-none-any.whl"), [("demo_pkg/__init__.py", b"x=1", 0o644)])
    with pytest.raises(build.BuildError, match="SHA-256 .* but the pin is " + good):
        build.fetch_wheels("arm64", "3.11", pins, str(cache))


@pytest.mark.parametrize("line", [
    "cryptography==47.0.0",                                   # no hash
    "cryptography>=47 --hash=sha256:" + "0" * 64,             # not pinned to one version
    "cryptography==47.0.0 --hash=sha256:" + "0" * 63,         # short hash
    "cryptography==47.0.0 --hash=md5:" + "0" * 32,
])
def test_a_pin_without_one_version_and_its_sha256_is_refused(tmp_path, line):
    with pytest.raises(build.BuildError, match="expected 'name==version --hash=sha256"):
        build.read_pins(_pins(tmp_path, line))


def test_install_unpacks_with_modes_and_refuses_escapes(tmp_path):
    tree = tmp_path / "tree"
    site = tree / "usr" / "lib" / "python3" / "dist-packages"
    site.mkdir(parents=True)
    (site / "demo_pkg").mkdir()
    (site / "demo_pkg" / "stale.py").write_text("")
    whl = str(tmp_path / "demo_pkg-1.0-py3-none-any.whl")
    _wheel(whl, [("demo_pkg/__init__.py", b"", 0o644), ("demo_pkg/_x.so", b"\x7fELF", 0o755),
                 ("demo_pkg-1.0.dist-info/METADATA", b"Name: demo-pkg\n", 0o644)])
    build.install_wheels(str(tree), [whl])
    assert os.stat(site / "demo_pkg" / "_x.so").st_mode & 0o777 == 0o755
    assert not (site / "demo_pkg" / "stale.py").exists()  # the old copy is replaced whole
    for bad in ("../evil.py", "demo_pkg-1.0.data/scripts/tool"):
        _wheel(whl, [(bad, b"", 0o644)])
        with pytest.raises(build.BuildError, match="unexpected entry"):
            build.install_wheels(str(tree), [whl])


def test_debian_cryptography_in_the_tree_is_refused(tmp_path):
    site = tmp_path / "usr" / "lib" / "python3" / "dist-packages"
    (site / "cryptography-38.0.4.egg-info").mkdir(parents=True)
    with pytest.raises(build.BuildError, match="python3-cryptography"):
        build.check_no_debian_cryptography(str(tmp_path))
