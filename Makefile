# The two commands a new user runs: `make run` (the main job) and `make test`. Each installs what it needs
# into .venv from nothing. Frameworks come through constraints/frameworks.txt (see README, "Installing").
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check
# CPU-only builds unless an NVIDIA GPU answers nvidia-smi (then CUDA builds: see pyproject's `gpu` extra).
EXTRAS ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)

.PHONY: run test install install-test lint typecheck browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-$(EXTRAS): $(BIN)/python pyproject.toml constraints/frameworks.txt
	$(PIP) install -q -c constraints/frameworks.txt -e '.[$(EXTRAS)]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed-$(EXTRAS)
	$(PIP) install -q -c constraints/frameworks.txt -e '.[$(EXTRAS),test]'
	touch $@

install: $(VENV)/.installed-$(EXTRAS)

install-test: $(VENV)/.installed-test

## run: install, then run the default suite for this machine (seed on a CUDA GPU, seed-cpu otherwise)
run: install
	$(BIN)/dlbench run $(ARGS)

## test: install, then lint (ruff, and the layer contracts of pyproject.toml), type-check the core, run the tests
test: install-test lint typecheck browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

typecheck: install-test
	$(BIN)/mypy

## browser: Debian's chromium for the HTML report's browser test; installed only where it is missing and we are
## root with apt-get, else the test skips (said here, once)
browser:
	@if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else echo "make browser: no chromium, and not root with apt-get: the report's browser test will be skipped"; fi

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
