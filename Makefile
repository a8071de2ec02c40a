# wgedge: one way to run everything.
#   make test    install what the tests need (venv, Debian packages, MicroPython) and run them
#   make demo    the main job: two simulated routers linked by wgedge (see README.md)
#   make bench   benchmarks; results go to docs/benchmarks.md
#   make qemu-test   ARM guests (Debian packages, QEMU) running wgedge; see docs/qemu.md
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CACHE := .cache
MPY_DIR := $(CACHE)/micropython
APT_PACKAGES := nodejs npm wireguard-go wireguard-tools iperf3 iproute2 iputils-ping shellcheck binutils e2fsprogs
PYTEST_ARGS ?=

.PHONY: test setup venv venv-min apt micropython lint demo bench clean flood fuzz soak

test: setup venv-min
	$(PY) -m ruff check wgedge tests
	$(PY) -m pytest -q $(PYTEST_ARGS)
	@echo "== the crypto and core tests again with the oldest supported cryptography ($(MIN_CRYPTOGRAPHY), Debian 12's)"
	$(MIN_VENV)/bin/python -m pytest -q -p no:cacheprovider $(MIN_TESTS)

setup: apt venv micropython

# Debian packages, installed only when missing (CI runs as root on a fresh machine).
apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.stamp
$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# The oldest cryptography that pyproject.toml admits (Debian 12 ships it): the crypto and core
# tests run against it too, so the fallbacks it needs stay tested.
MIN_CRYPTOGRAPHY := 38.0.4
MIN_VENV := $(CACHE)/venv-min
MIN_TESTS := tests/test_crypto_kat.py tests/test_crypto_diff.py tests/test_crypto_path.py \
	tests/test_core_session.py \
	tests/test_core_fuzz.py tests/test_uapi.py
venv-min: $(MIN_VENV)/.stamp
$(MIN_VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/pip install -q "cryptography==$(MIN_CRYPTOGRAPHY)" pytest hypothesis
	touch $@

# MicroPython 1.27 (WebAssembly build) for the subset test, run with node (tests/mpy/run.mjs).
# --prefix: without it npm installs into any node_modules it finds in a parent directory.
MPY_MJS := $(MPY_DIR)/node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs
micropython: $(MPY_MJS)
$(MPY_MJS):
	mkdir -p $(MPY_DIR)
	cd $(MPY_DIR) && npm install --prefix . --silent --no-audit --no-fund --no-save @micropython/micropython-webassembly-pyscript@1.27.0
	test -f $@  # fails loudly if npm put the package anywhere else

lint: venv
	$(PY) -m ruff check wgedge tests

# Two simulated routers (network namespaces) from the example configs in config/: up,
# status, traffic between their LANs, down. Needs root.
demo: apt venv
	$(PY) -m wgedge info
	$(PY) -m tests.sitelab demo

bench: setup
	$(PY) -m pip install -q -e '.[test,bench]'
	$(PY) -m tests.bench

clean:
	rm -rf $(VENV) $(CACHE) .pytest_cache .ruff_cache

# Handshake flood against wgedge and wireguard-go carrying iperf3 traffic (root, ~2 min).
flood: setup
	$(PY) -m tests.reliability.flood

# Coverage-guided fuzzing (atheris) of every parser that sees outside bytes, FUZZ_SECONDS each.
FUZZ_SECONDS ?= 60
fuzz: setup
	@mkdir -p $(CACHE)/fuzz; for t in datagrams packets uapi uci wgquick; do \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  (cd $(CACHE)/fuzz && PYTHONPATH=$(CURDIR) $(CURDIR)/$(PY) -m tests.fuzz $$t \
	    $(FUZZ_SECONDS) > $$t.log 2>&1); rc=$$?; \
	  grep -E "Done [0-9]+ runs" $(CACHE)/fuzz/$$t.log; \
	  if [ $$rc -ne 0 ]; then tail -40 $(CACHE)/fuzz/$$t.log; exit 1; fi; \
	done

# The accelerated soak, longer: 72 simulated hours (about 1 minute).
soak: venv
	WGEDGE_SOAK_HOURS=72 $(PY) -m pytest -q tests/test_soak.py

# ---- Firmware: this repository is a Buildroot br2-external tree (docs/firmware.md) ----
#   make image BOARD=wgedge_qemu_aarch64_virt    NEEDS INTERNET: fetches Buildroot and every source
#   make br-check BUILDROOT=/path/to/buildroot   offline: Buildroot's own checks of this tree
# BOARD is a configs/*_defconfig name without _defconfig. Images are built outside the
# repository (IMAGE_OUT/BOARD): Buildroot copies this tree as python-wgedge's source.
BOARD ?= wgedge_qemu_aarch64_virt
IMAGE_OUT ?= $(abspath $(CURDIR)/../wgedge-build)
BUILDROOT_VERSION := 2026.05.1
BUILDROOT_SRC := $(CACHE)/buildroot-$(BUILDROOT_VERSION)
BUILDROOT_TARBALL := $(CACHE)/buildroot-$(BUILDROOT_VERSION).tar.xz
BUILDROOT_URL := https://buildroot.org/downloads/buildroot-$(BUILDROOT_VERSION).tar.xz
# Leave empty to check the tarball against the SHA256 line of Buildroot's signed .sign file;
# set it to pin the exact bytes.
BUILDROOT_SHA256 ?=
# Sources Buildroot downloads, kept across builds and Buildroot versions.
IMAGE_DL_DIR ?= $(abspath $(CACHE)/buildroot-dl)
# Buildroot's make, without this make's variables and flags leaking into it.
BR_MAKE := env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES -u BOARD -u BUILDROOT \
	BR2_DL_DIR=$(IMAGE_DL_DIR) make
# What Buildroot needs on the host to load a defconfig (support/dependencies/dependencies.sh).
BR_APT_PACKAGES := which make gcc g++ bash patch perl rsync bc cpio unzip file wget python3
BRCHECK_VENV := $(CACHE)/brcheck-venv

.PHONY: image br-check br-apt

ifneq ($(filter image,$(MAKECMDGOALS)),)
ifeq ($(wildcard configs/$(BOARD)_defconfig),)
$(error no configs/$(BOARD)_defconfig: BOARD is one of \
  $(patsubst configs/%_defconfig,%,$(wildcard configs/*_defconfig)))
endif
endif

image: $(BUILDROOT_SRC)/.stamp
	@echo "== image $(BOARD): Buildroot $(BUILDROOT_VERSION) in $(IMAGE_OUT)/$(BOARD)" \
	  "(needs internet: downloads every source into $(IMAGE_DL_DIR), then builds them all)"
	$(BR_MAKE) -C $(BUILDROOT_SRC) BR2_EXTERNAL=$(CURDIR) O=$(IMAGE_OUT)/$(BOARD) $(BOARD)_defconfig
	$(BR_MAKE) -C $(BUILDROOT_SRC) O=$(IMAGE_OUT)/$(BOARD)
	@echo "== image $(BOARD): done, images in $(IMAGE_OUT)/$(BOARD)/images" \
	  "(docs/firmware.md and board/*/readme.txt say how to boot or flash them)"

# The pinned Buildroot release, fetched once into .cache/ (needs internet) and checked.
$(BUILDROOT_TARBALL):
	@echo "== fetching Buildroot $(BUILDROOT_VERSION) from $(BUILDROOT_URL) (needs internet)"
	mkdir -p $(CACHE)
	wget -nv -O $@.part $(BUILDROOT_URL)
	@if [ -n "$(BUILDROOT_SHA256)" ]; then want="$(BUILDROOT_SHA256)"; else \
	  wget -nv -O $@.sign $(BUILDROOT_URL).sign && \
	  want=$$(grep -E "SHA256.*buildroot-$(BUILDROOT_VERSION)\.tar\.xz" $@.sign \
	    | grep -oE "[0-9a-f]{64}" | head -1); fi; \
	got=$$(sha256sum $@.part | cut -d' ' -f1); \
	if [ -z "$$want" ] || [ "$$want" != "$$got" ]; then \
	  echo "Buildroot tarball sha256 $$got does not match '$$want'"; exit 1; fi; \
	echo "Buildroot tarball sha256 $$got: OK"
	mv $@.part $@

$(BUILDROOT_SRC)/.stamp: $(BUILDROOT_TARBALL)
	rm -rf $(BUILDROOT_SRC) && tar -xf $(BUILDROOT_TARBALL) -C $(CACHE)
	touch $@

ifneq ($(filter br-check,$(MAKECMDGOALS)),)
ifeq ($(BUILDROOT),)
$(error usage: make br-check BUILDROOT=/path/to/a/buildroot/source/tree)
endif
endif

br-check: br-apt $(BRCHECK_VENV)/.stamp
	$(PYTHON) -m tests.brcheck $(BUILDROOT) --check-package-python $(BRCHECK_VENV)/bin/python

br-apt:
	@$(MAKE) --no-print-directory apt APT_PACKAGES="$(BR_APT_PACKAGES)"

# utils/check-package needs flake8 and python-magic.
$(BRCHECK_VENV)/.stamp:
	$(PYTHON) -m venv $(BRCHECK_VENV)
	$(BRCHECK_VENV)/bin/pip install -q flake8 python-magic
	touch $@

# ---- QEMU image test: offline, from Debian's ARM packages, software emulation (docs/qemu.md) ----
#   make qemu-image ARCH=arm64|armhf   .cache/qemu/ARCH/: vmlinuz, preinit.cpio.gz, disk.img
#                                      (router flash: squashfs slots a/b, ext4 data), upgrades
#   make qemu-test                     builds what changed, runs each guest through first
#                                      boot, reboot, upgrades and power cuts (tests/qemu)
#   make bench-arm ARCH=arm64|armhf    wgedge against wireguard-go in one ARM guest, with
#                                      instructions per packet; docs/benchmarks-arm.md
ARCH ?= arm64
QEMU_ARCHES ?= arm64 armhf
QEMU_APT_PACKAGES := qemu-system-arm qemu-utils mmdebstrap iputils-ping genimage squashfs-tools
QEMU_IMAGE_INPUTS := $(shell find wgedge rootfs_overlay tests/qemu/overlay tests/qemu/build.py \
	tests/qemu/wheels-*.txt \
	tests/qemu/cpio.py board/common board/qemu/genimage.cfg board/qemu/*/rootfs_overlay -type f \
	-not -name '*.pyc' 2>/dev/null)

.PHONY: qemu-image qemu-test qemu-apt bench-arm

ifneq ($(filter qemu-image bench-arm,$(MAKECMDGOALS)),)
ifeq ($(filter $(ARCH),arm64 armhf),)
$(error ARCH must be arm64 or armhf, not '$(ARCH)')
endif
endif

qemu-image: qemu-apt venv
	$(PY) -m tests.qemu.build $(ARCH)

$(CACHE)/qemu/%/disk.img: $(QEMU_IMAGE_INPUTS) | qemu-apt venv
	$(PY) -m tests.qemu.build $*

qemu-test: setup qemu-apt $(foreach a,$(QEMU_ARCHES),$(CACHE)/qemu/$(a)/disk.img)
	WGEDGE_QEMU_ARCHES="$(QEMU_ARCHES)" $(PY) -m pytest -q -s -p no:cacheprovider tests/qemu

qemu-apt:
	@$(MAKE) --no-print-directory apt APT_PACKAGES="$(QEMU_APT_PACKAGES)"

# The benchmark guest is the test image plus wireguard-go, iperf3, ethtool, ping and veth
# (tests/bench/arm/image.py); the counting plugin is compiled with gcc at bench time.
$(CACHE)/qemu/bench-%/initrd.gz: $(QEMU_IMAGE_INPUTS) tests/bench/arm/image.py | qemu-apt venv
	$(PY) -m tests.bench.arm.image $*

bench-arm: qemu-apt venv $(CACHE)/qemu/bench-$(ARCH)/initrd.gz
	@$(MAKE) --no-print-directory apt APT_PACKAGES="gcc"
	$(PY) -m pip install -q -e '.[test,bench]'
	$(PY) -m tests.bench.arm $(ARCH)
