"""The benchmark guest: the QEMU test image (tests/qemu/build.py) plus what the benchmark runs.

    python -m tests.bench.arm.image arm64|armhf

writes .cache/qemu/bench-ARCH/{vmlinuz,initrd.gz,image.txt}. Everything else about the image
(Debian's packages, the kernel, wgedge from this checkout, the cryptography the firmware
ships) is the test image's, built by the same code (as one initramfs, not the test's disk image): the benchmark measures what the QEMU test
tests. On top: wireguard-go and iperf3 (Debian's arm packages), ethtool (NAPI GRO on the veths,
as `make bench` does), iputils ping (sub-second intervals) and the veth module.
"""

import os
import sys

from tests.qemu import build

EXTRA_PACKAGES = ["wireguard-go", "iperf3", "ethtool", "iputils-ping"]
EXTRA_MODULES = ["veth"]


def image_dir(arch):
    return os.path.join(build.CACHE, "bench-" + arch)


def build_image(arch):
    return build.build(arch, out=image_dir(arch), extra_packages=EXTRA_PACKAGES,
                       extra_modules=EXTRA_MODULES, disk=False)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m tests.bench.arm.image arm64|armhf", file=sys.stderr)
        return 2
    try:
        build_image(argv[0])
    except build.BuildError as exc:
        print("bench-arm image: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
