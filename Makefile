# wgedge: one way to run everything.
#   make test    install what the tests need (venv, Debian packages, MicroPython) and run them
#   make demo    the main job: two simulated routers linked by wgedge (see README.md)
#   make bench   benchmarks; results go to docs/benchmarks.md
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CACHE := .cache
MPY_DIR := $(CACHE)/micropython
APT_PACKAGES := nodejs npm wireguard-go wireguard-tools iperf3 iproute2 iputils-ping
PYTEST_ARGS ?=

.PHONY: test setup venv apt micropython lint demo bench clean flood fuzz soak

test: setup
	$(PY) -m ruff check wgedge tests
	$(PY) -m pytest -q $(PYTEST_ARGS)

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
