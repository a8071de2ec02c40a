"""The Buildroot br2-external tree, checked without a Buildroot tree: files present and consistent.

What needs Buildroot itself (defconfigs load, savedefconfig round trip, check-package) is
`make br-check BUILDROOT=...` (tests/brcheck.py, which shares the helpers used here).
"""

import os
import re
import shutil
import stat
import subprocess

import pytest

from tests.brcheck import (
    EXTERNAL_VAR,
    REQUIRED_PACKAGES,
    ROOT,
    defconfigs,
    named_paths,
    parse_config,
    resolve,
)
from tests.qemu.guest import DISK_CMDLINE

PACKAGE_DIR = os.path.join(ROOT, "package", "python-wgedge")
DEFCONFIGS = defconfigs()
EXPECTED_DEFCONFIGS = {
    "wgedge_qemu_aarch64_virt_defconfig",
    "wgedge_qemu_arm_virt_defconfig",
    "wgedge_raspberrypi4_64_defconfig",
}


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


def config_of(path):
    with open(path) as f:
        return parse_config(f.read())


def mk_variables(text):
    """`NAME = value` lines of a .mk file (backslash continuations joined) -> {NAME: value}."""
    text = re.sub(r"\\\n\s*", " ", text)
    return {m.group(1): m.group(2).strip()
            for m in re.finditer(r"^([A-Z0-9_]+)\s*[:+?]?=\s*(.*)$", text, re.M)}


def kconfig_entry(text, symbol):
    """The attribute lines of `config SYMBOL` in a Config.in, up to its help text."""
    m = re.search(r"^config %s\n((?:\t(?!help).*\n)*)" % symbol, text, re.M)
    assert m, "no config %s" % symbol
    return [line.strip() for line in m.group(1).splitlines()]


SHELL_SHEBANG = re.compile(rb"#!\s*(/bin/(ba)?sh|/bin/busybox sh|/usr/bin/env (ba)?sh)\b")


def shell_scripts():
    found = []
    for top in ("board", "package", "rootfs_overlay", os.path.join("tests", "qemu", "overlay")):
        for d, _, names in os.walk(os.path.join(ROOT, top)):
            for n in sorted(names):
                p = os.path.join(d, n)
                with open(p, "rb") as f:
                    head = f.read(64)
                if n.endswith(".sh") or SHELL_SHEBANG.match(head):
                    found.append(p)
    return found


def defconfig_id(path):
    return os.path.basename(path)


# ---- the tree itself --------------------------------------------------------------------------

def test_external_desc_names_the_tree_wgedge():
    fields = dict(line.split(":", 1) for line in read("external.desc").splitlines() if line)
    assert fields["name"].strip() == "WGEDGE"
    assert fields["desc"].strip()


def test_config_in_and_external_mk_take_in_every_package():
    packages = sorted(os.listdir(os.path.join(ROOT, "package")))
    assert packages == ["python-wgedge"]
    config_in = read("Config.in")
    for p in packages:
        assert 'source "$BR2_EXTERNAL_WGEDGE_PATH/package/%s/Config.in"' % p in config_in
        assert os.path.isfile(os.path.join(ROOT, "package", p, "Config.in"))
        assert os.path.isfile(os.path.join(ROOT, "package", p, p + ".mk"))
    assert "$(BR2_EXTERNAL_WGEDGE_PATH)/package/*/*.mk" in read("external.mk")


def test_package_config_in_depends_and_selects():
    text = read("package", "python-wgedge", "Config.in")
    attrs = kconfig_entry(text, "BR2_PACKAGE_PYTHON_WGEDGE")
    depends = {a.split("#")[0].split()[2] for a in attrs if a.startswith("depends on")}
    selects = {a.split("#")[0].split()[1] for a in attrs if a.startswith("select")}
    assert {"BR2_PACKAGE_PYTHON3", "BR2_PACKAGE_HOST_RUSTC_TARGET_ARCH_SUPPORTS",
            "BR2_TOOLCHAIN_HEADERS_AT_LEAST_3_10"} <= depends
    assert {"BR2_PACKAGE_PYTHON_CRYPTOGRAPHY", "BR2_PACKAGE_PYTHON_PYROUTE2",
            "BR2_PACKAGE_WIREGUARD_TOOLS"} <= selects
    # Buildroot style: a comment shown when the toolchain-side dependencies are missing.
    m = re.search(r'^comment "python-wgedge needs [^"]+"\n((?:\tdepends on .*\n)+)', text, re.M)
    assert m, "no 'python-wgedge needs ...' comment"
    assert "!BR2_PACKAGE_PYTHON3" in m.group(1)
    assert "!BR2_TOOLCHAIN_HEADERS_AT_LEAST_3_10" in m.group(1)


def test_package_mk_is_a_local_setuptools_package_of_this_repo():
    mk = read("package", "python-wgedge", "python-wgedge.mk")
    v = mk_variables(mk)
    assert v["PYTHON_WGEDGE_SITE"] == EXTERNAL_VAR
    assert v["PYTHON_WGEDGE_SITE_METHOD"] == "local"
    # pyproject.toml builds with setuptools, which Buildroot calls SETUP_TYPE setuptools.
    assert 'build-backend = "setuptools.build_meta"' in read("pyproject.toml")
    assert v["PYTHON_WGEDGE_SETUP_TYPE"] == "setuptools"
    assert "$(eval $(python-package))" in mk
    # The local-site rsync must not copy an output directory (or caches) into itself.
    exclusions = v["PYTHON_WGEDGE_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS"]
    for d in ("/output", "/.cache", "/.venv"):
        assert "--exclude %s" % d in exclusions
    assert "--filter=':- .gitignore'" in exclusions


def test_package_version_is_wgedge_version():
    version = re.search(r'^__version__ = "([^"]+)"', read("wgedge", "__init__.py"), re.M).group(1)
    assert mk_variables(read("package", "python-wgedge", "python-wgedge.mk"))[
        "PYTHON_WGEDGE_VERSION"] == version


def test_package_installs_the_overlay_init_script_0755():
    mk = read("package", "python-wgedge", "python-wgedge.mk")
    m = re.search(r"define PYTHON_WGEDGE_INSTALL_INIT_SYSV\n(.*?)\nendef", mk, re.S)
    assert m
    body = " ".join(m.group(1).replace("\\\n", " ").split())
    assert body == ("$(INSTALL) -D -m 0755 $(@D)/rootfs_overlay/etc/init.d/S50wgedge "
                    "$(TARGET_DIR)/etc/init.d/S50wgedge")
    script = os.path.join(ROOT, "rootfs_overlay", "etc", "init.d", "S50wgedge")
    assert os.path.isfile(script)
    # stops through `wgedge down`, which signals only what wgedge runs (not by pid file alone)
    assert "wgedge down" in read("rootfs_overlay", "etc", "init.d", "S50wgedge")


# ---- defconfigs -------------------------------------------------------------------------------

def test_the_three_boards_have_defconfigs():
    assert {os.path.basename(p) for p in DEFCONFIGS} >= EXPECTED_DEFCONFIGS


@pytest.mark.parametrize("path", DEFCONFIGS, ids=defconfig_id)
def test_defconfig_builds_a_wgedge_image(path):
    c = config_of(path)
    for symbol in REQUIRED_PACKAGES:
        if symbol in ("BR2_PACKAGE_PYTHON_CRYPTOGRAPHY", "BR2_PACKAGE_PYTHON_PYROUTE2",
                      "BR2_PACKAGE_WIREGUARD_TOOLS"):
            continue  # selected by python-wgedge, so savedefconfig leaves them out
        assert c.get(symbol) == "y", symbol
    assert c.get("BR2_DOWNLOAD_FORCE_CHECK_HASHES") == "y"  # check-package wants it
    assert EXTERNAL_VAR + "/rootfs_overlay" in c["BR2_ROOTFS_OVERLAY"].split()
    assert EXTERNAL_VAR + "/board/common/post-build.sh" in c[
        "BR2_ROOTFS_POST_BUILD_SCRIPT"].split()
    assert c.get("BR2_ROOTFS_POST_IMAGE_SCRIPT")
    # glibc: python-cryptography needs host Rust for the target, which musl only gets with C++
    # and uClibc never; every board uses a Bootlin glibc toolchain.
    assert c.get("BR2_TOOLCHAIN_EXTERNAL") == "y"
    assert any(re.match(r"BR2_TOOLCHAIN_EXTERNAL_BOOTLIN_\w+_GLIBC_STABLE$", k) and v == "y"
               for k, v in c.items())
    assert c.get("BR2_LINUX_KERNEL") == "y"
    # Router flash (docs/firmware.md): a squashfs root, e2fsck for the data partition, no
    # remount of the root read-write, genimage and mke2fs on the host for the disk image.
    for symbol in ("BR2_TARGET_ROOTFS_SQUASHFS", "BR2_TARGET_ROOTFS_SQUASHFS4_ZSTD",
                   "BR2_PACKAGE_E2FSPROGS", "BR2_PACKAGE_HOST_GENIMAGE",
                   "BR2_PACKAGE_HOST_E2FSPROGS"):
        assert c.get(symbol) == "y", symbol
    assert c.get("BR2_TARGET_GENERIC_REMOUNT_ROOTFS_RW") == "n"
    assert "BR2_TARGET_ROOTFS_EXT2" not in c
    overlays = c["BR2_ROOTFS_OVERLAY"].split()
    assert EXTERNAL_VAR + "/board/common/rootfs_overlay" in overlays
    boards = [resolve(o) for o in overlays
              if os.path.isfile(os.path.join(resolve(o), "etc", "wgedge-board"))]
    assert len(boards) == 1  # the board's own overlay names it for wgedge-upgrade
    assert c["BR2_ROOTFS_POST_IMAGE_SCRIPT"].split()[0] == (EXTERNAL_VAR +
                                                           "/board/common/post-image.sh")


@pytest.mark.parametrize("path", DEFCONFIGS, ids=defconfig_id)
def test_defconfig_lines_are_savedefconfig_shaped(path):
    seen = set()
    with open(path) as f:
        text = f.read()
    assert text.endswith("\n") and "\n\n" not in text
    for line in text.splitlines():
        m = re.match(r'^(BR2_\w+)=(y|"[^"]*"|[0-9]+)$', line) or \
            re.match(r"^# (BR2_\w+) is not set$", line)
        assert m, "not a savedefconfig line: %r" % line
        assert m.group(1) not in seen, "twice: " + m.group(1)
        seen.add(m.group(1))


@pytest.mark.parametrize("path", DEFCONFIGS, ids=defconfig_id)
def test_defconfig_paths_in_this_tree_exist(path):
    c = config_of(path)
    paths = [(o, w) for o, w in named_paths(c) if w.startswith(EXTERNAL_VAR)]
    assert paths
    for option, written in paths:
        assert os.path.exists(resolve(written)), "%s: %s" % (option, written)
    # Its board directory, with a readme and a kernel fragment.
    fragments = c["BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES"].split()
    assert len(fragments) == 1 and fragments[0].startswith(EXTERNAL_VAR + "/board/")
    board = os.path.dirname(resolve(fragments[0]))
    assert os.path.isfile(os.path.join(board, "readme.txt"))


@pytest.mark.parametrize("path", DEFCONFIGS, ids=defconfig_id)
def test_kernel_sources_have_hashes(path):
    c = config_of(path)
    patch_dir = resolve(c["BR2_GLOBAL_PATCH_DIR"])
    hashes = open(os.path.join(patch_dir, "linux", "linux.hash")).read()
    if c.get("BR2_LINUX_KERNEL_CUSTOM_VERSION") == "y":
        tarball = "linux-%s.tar.xz" % c["BR2_LINUX_KERNEL_CUSTOM_VERSION_VALUE"]
    else:
        tarball = c["BR2_LINUX_KERNEL_CUSTOM_TARBALL_LOCATION"].rsplit("/", 1)[1]
    assert re.search(r"^sha256  [0-9a-f]{64}  %s$" % re.escape(tarball), hashes, re.M)


# ---- kernel fragments -------------------------------------------------------------------------

FRAGMENTS = sorted({resolve(f) for p in DEFCONFIGS
                    for f in config_of(p)["BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES"].split()})


@pytest.mark.parametrize("fragment", FRAGMENTS, ids=lambda p: os.path.relpath(p, ROOT))
def test_fragment_turns_tun_and_ipv6_on_and_wireguard_off(fragment):
    lines = open(fragment).read().splitlines()
    assert "CONFIG_TUN=y" in lines
    assert "CONFIG_IPV6=y" in lines
    assert "# CONFIG_WIREGUARD is not set" in lines
    assert not [line for line in lines if line.startswith("CONFIG_WIREGUARD=")]
    for line in lines:
        assert not line or line.startswith("#") or re.match(r"^CONFIG_\w+=(y|m|\d+|\".*\")$",
                                                            line), line


# ---- boards -----------------------------------------------------------------------------------

QEMU_BOARDS = {
    "wgedge_qemu_aarch64_virt_defconfig": ("aarch64-virt", "qemu-system-aarch64", "Image"),
    "wgedge_qemu_arm_virt_defconfig": ("arm-virt", "qemu-system-arm", "zImage"),
}


@pytest.mark.parametrize("name", sorted(QEMU_BOARDS))
def test_qemu_board_writes_start_qemu_from_its_readme(name, tmp_path):
    board, qemu, kernel = QEMU_BOARDS[name]
    c = config_of(os.path.join(ROOT, "configs", name))
    board_dir = os.path.join(ROOT, "board", "qemu", board)
    assert c["BR2_ROOTFS_POST_IMAGE_SCRIPT"].split() == [
        EXTERNAL_VAR + "/board/common/post-image.sh", EXTERNAL_VAR + "/board/qemu/post-image.sh"]
    assert resolve(c["BR2_ROOTFS_POST_IMAGE_SCRIPT_ARGS"]) == board_dir
    board_name = read("board", "qemu", board, "rootfs_overlay", "etc", "wgedge-board").strip()
    assert board_name == "qemu-" + board

    readme = read("board", "qemu", board, "readme.txt")
    commands = [line.strip() for line in readme.splitlines()
                if line.strip().startswith("qemu-system-")]
    assert len(commands) == 1
    command = commands[0]
    assert command.startswith(qemu + " -M virt")
    assert "-kernel %s " % kernel in command
    # The disk from board/qemu/genimage.cfg and the preinit, named as the QEMU test names them.
    assert "file=disk.img," in command and "-initrd preinit.cpio.gz " in command
    assert DISK_CMDLINE in command and "root=" not in command
    assert "-device virtio-net-device" in command  # the PCI variant's boot ROM may be absent
    assert "hostfwd=udp:127.0.0.1:51820-:51820" in command
    assert "make image BOARD=%s" % name[:-len("_defconfig")] in readme

    res = subprocess.run([os.path.join(ROOT, "board", "qemu", "post-image.sh"),
                          str(tmp_path), board_dir], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    start = tmp_path / "start-qemu.sh"
    assert start.stat().st_mode & 0o777 == 0o755
    assert "exec %s \"$@\"" % command in start.read_text()
    shellcheck(str(start))


def test_qemu_post_image_refuses_a_readme_without_a_command(tmp_path):
    (tmp_path / "board").mkdir()
    (tmp_path / "board" / "readme.txt").write_text("no command here\n")
    res = subprocess.run([os.path.join(ROOT, "board", "qemu", "post-image.sh"),
                          str(tmp_path), str(tmp_path / "board")], capture_output=True, text=True)
    assert res.returncode != 0 and "no qemu-system- line" in res.stderr
    assert not (tmp_path / "start-qemu.sh").exists()


def test_arm_board_is_built_without_neon():
    c = config_of(os.path.join(ROOT, "configs", "wgedge_qemu_arm_virt_defconfig"))
    assert c.get("BR2_arm") == "y"
    assert "BR2_ARM_ENABLE_NEON" not in c and not any("NEON" in k for k in c)
    assert "neon=off" in read("board", "qemu", "arm-virt", "readme.txt")


def genimage_partitions(text, image):
    """[(partition name, its image or None)] of `image` in a genimage.cfg, in order."""
    body = re.search(r"^image %s \{(.*?)^\}" % re.escape(image), text, re.S | re.M).group(1)
    return [(name, (re.search(r'image = "([^"]+)"', part) or [None, None])[1])
            for name, part in re.findall(r"partition ([\w-]+) \{(.*?)\}", body, re.S)]


def test_qemu_disk_layout_is_the_one_the_command_lines_name():
    text = read("board", "qemu", "genimage.cfg")
    assert genimage_partitions(text, "disk.img") == [
        ("slot-a", "rootfs.squashfs"), ("slot-b", None), ("data", "data.ext4")]
    assert 'label = "wgdata"' in text and "empty = true" in text
    # vda1, vda2, vda3 in that order
    assert DISK_CMDLINE == ("wgedge.slot_a=/dev/vda1 wgedge.slot_b=/dev/vda2 "
                            "wgedge.data=/dev/vda3")


def test_raspberrypi4_sdcard_image():
    c = config_of(os.path.join(ROOT, "configs", "wgedge_raspberrypi4_64_defconfig"))
    cfg = os.path.join(ROOT, "board", "raspberrypi4-64", "genimage.cfg")
    assert c["BR2_ROOTFS_POST_IMAGE_SCRIPT"] == EXTERNAL_VAR + "/board/common/post-image.sh"
    assert c["BR2_ROOTFS_POST_IMAGE_SCRIPT_ARGS"] == EXTERNAL_VAR + "/board/raspberrypi4-64"
    genimage = open(cfg).read()
    files = re.findall(r'"([^"]+)"', re.search(r"files = \{(.*?)\}", genimage, re.S).group(1))
    dtbs = [n.rsplit("/", 1)[1] + ".dtb" for n in c["BR2_LINUX_KERNEL_INTREE_DTS_NAME"].split()]
    assert sorted(f for f in files if f.endswith(".dtb")) == sorted(dtbs)
    assert {"Image", "rpi-firmware/start4.elf", "rpi-firmware/fixup4.dat",
            "rpi-firmware/config.txt", "rpi-firmware/cmdline.txt",
            "preinit.cpio.gz"} <= set(files)
    # p1 boot, p2 slot a, p3 slot b, p4 data: what cmdline.txt names
    assert genimage_partitions(genimage, "sdcard.img") == [
        ("boot", "boot.vfat"), ("slot-a", "rootfs.squashfs"), ("slot-b", None),
        ("data", "data.ext4")]
    assert 'label = "wgdata"' in genimage
    assert c.get("BR2_PACKAGE_RPI_FIRMWARE_VARIANT_PI4") == "y"
    config_txt = read("board", "raspberrypi4-64", "config.txt").splitlines()
    assert "kernel=Image" in config_txt and "arm_64bit=1" in config_txt
    assert "initramfs preinit.cpio.gz followkernel" in config_txt
    cmdline = read("board", "raspberrypi4-64", "cmdline.txt")
    assert len(cmdline.splitlines()) == 1 and "root=" not in cmdline  # the preinit mounts it
    assert ("wgedge.slot_a=/dev/mmcblk0p2 wgedge.slot_b=/dev/mmcblk0p3 "
            "wgedge.data=/dev/mmcblk0p4") in cmdline
    assert read("board", "raspberrypi4-64", "rootfs_overlay", "etc",
                "wgedge-board") == "raspberrypi4-64\n"
    readme = read("board", "raspberrypi4-64", "readme.txt")
    assert "make image BOARD=wgedge_raspberrypi4_64" in readme
    assert re.search(r"dd if=\S+/images/sdcard\.img of=/dev/sdX", readme)


# ---- scripts ----------------------------------------------------------------------------------

SCRIPTS = shell_scripts()


def shellcheck(path):
    exe = shutil.which("shellcheck")
    assert exe, "shellcheck is not installed (make apt installs it)"
    res = subprocess.run([exe, "--external-sources", path], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_there_are_scripts():
    names = {os.path.relpath(p, ROOT) for p in SCRIPTS}
    assert {"board/common/post-build.sh", "board/qemu/post-image.sh",
            "board/raspberrypi4-64/post-build.sh"} <= names


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: os.path.relpath(p, ROOT))
def test_script_is_executable_and_passes_shellcheck(path):
    assert os.stat(path).st_mode & stat.S_IXUSR, "not executable"
    shellcheck(path)


def test_common_post_build_makes_the_mount_points_and_the_default_root_only(tmp_path):
    default = tmp_path / "usr" / "share" / "wgedge" / "default-config"
    default.parent.mkdir(parents=True)
    default.write_text(read("rootfs_overlay", "usr", "share", "wgedge", "default-config"))
    default.chmod(0o644)
    script = os.path.join(ROOT, "board", "common", "post-build.sh")
    # Buildroot passes BR2_ROOTFS_POST_SCRIPT_ARGS after the target directory.
    subprocess.run([script, str(tmp_path), "extra", "args"], check=True)
    assert default.stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path / "etc" / "config") == [] and (tmp_path / "data").is_dir()
    subprocess.run([script, str(tmp_path / "empty")], check=True)  # no default: mount points


def test_common_post_build_refuses_a_config_the_data_partition_would_hide(tmp_path):
    (tmp_path / "etc" / "config").mkdir(parents=True)
    (tmp_path / "etc" / "config" / "wgedge").write_text("config interface 'wg0'\n")
    script = os.path.join(ROOT, "board", "common", "post-build.sh")
    res = subprocess.run([script, str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 1 and "/usr/share/wgedge/default-config" in res.stderr


def test_raspberrypi4_post_build_adds_one_hdmi_login(tmp_path):
    inittab = tmp_path / "etc" / "inittab"
    inittab.parent.mkdir(parents=True)
    inittab.write_text("::sysinit:/etc/init.d/rcS\n"
                       "console::respawn:/sbin/getty -L console 0 vt100\n")
    script = os.path.join(ROOT, "board", "raspberrypi4-64", "post-build.sh")
    for _ in range(2):
        subprocess.run([script, str(tmp_path)], check=True)
    tty1 = [line for line in inittab.read_text().splitlines() if line.startswith("tty1::")]
    assert tty1 == ["tty1::respawn:/sbin/getty -L tty1 0 vt100 # HDMI console"]
