# Two commands for a fresh machine: `make run` and `make test` (see README.md). `make` alone is
# `make check`: lint, typecheck and pytest, installing nothing but the Python venv (tests that
# need the real peers skip when they are missing); `make test`, the CI entry, installs the
# peers (system packages, as root) first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-runtime
ARGS ?=

.PHONY: all run test check lint typecheck pytest peers runtime-deps install uninstall bench fuzz \
	clean

all: check

# `make run` installs the gateway and what it needs to run; `make test` adds the test tools.
$(RUN_STAMP): pyproject.toml setup.py drivers/filters/_rastercodec.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Ghostscript interprets PDF and PostScript (as in CUPS); installed when root and missing.
runtime-deps:
	@bash scripts/install-runtime.sh

run: $(RUN_STAMP) runtime-deps
	$(BIN)/ipp-gateway run $(ARGS)

# The appliance (deploy/install.sh --help): a venv under /opt/ipp-gateway, the config under
# /etc/ipp-gateway, the hardened service enabled and started; as root. `make install
# DESTDIR=/tmp/stage` stages instead; INSTALL_ARGS="--no-apt" and the like pass options on.
INSTALL_ARGS ?=

install:
	bash deploy/install.sh $(if $(DESTDIR),--destdir $(DESTDIR)) $(INSTALL_ARGS)

# Keeps /etc/ipp-gateway and the spool: `make uninstall INSTALL_ARGS=--purge` removes them too.
uninstall:
	bash deploy/uninstall.sh $(if $(DESTDIR),--destdir $(DESTDIR)) $(INSTALL_ARGS)

# The real peers the tests talk to: ipptool, cupsd, BSD lpd, p910nd, Ghostscript, wrk.
peers:
	@bash scripts/install-peers.sh

lint: $(STAMP)
	$(BIN)/ruff check gateway drivers ippwire tests bench

typecheck: $(STAMP)
	$(BIN)/mypy gateway drivers ippwire

# Worker processes for the suite: most tests wait on peers and subprocesses, so four keep
# two cores busy; slow tests start first (tests/conftest.py), one test handed out at a time.
PYTEST_WORKERS ?= 4

pytest: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist load --maxschedchunk 1

check: lint typecheck pytest

test: $(STAMP) peers
	$(MAKE) --no-print-directory check

# Benchmarks against the peers, each printing a table (not tests; numbers vary per machine).
bench: $(STAMP) peers
	$(BIN)/python bench/bench_gpa.py
	$(BIN)/python bench/bench_pipeline.py
	PYTHONPATH=. $(BIN)/python bench/bench_transports.py

# Each fuzz target of tests/fuzz/targets.py for FUZZ_SECONDS: coverage-guided with atheris
# (libFuzzer; a binary wheel, no compiler) where it installs, Hypothesis's mutations otherwise.
FUZZ_SECONDS ?= 600

fuzz: $(STAMP)
	-$(BIN)/python -m pip install --quiet atheris
	$(BIN)/python scripts/fuzz.py --seconds $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
