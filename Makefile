# The two commands a new user runs: `make run` (the main job) and `make test`. Each installs what it needs
# into .venv from nothing. Frameworks come through constraints/frameworks.txt (see README, "Installing").
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check
# CPU-only builds unless an NVIDIA GPU answers nvidia-smi (then CUDA builds: see pyproject's `gpu` extra).
EXTRAS ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)

# SYSTEM=1: use the frameworks this machine already has (a GPU node's own torch and JAX, no network): the venv
# sees the system's site-packages, and dlbench is installed without downloading anything (no build isolation,
# no index; pip checks that every dependency is already installed and names any that is not).
SYSTEM ?=
ifeq ($(SYSTEM),1)
VENV_FLAGS := --system-site-packages
EXTRAS     := system
INSTALL    := $(BIN)/python -c "$$SYSTEM_CHECK" && $(PIP) install -q --no-index --no-build-isolation -e .
else
VENV_FLAGS :=
INSTALL    := $(PIP) install -q -c constraints/frameworks.txt -e '.[$(EXTRAS)]'
endif

# What SYSTEM=1 needs from the machine, said in one line before pip would say it in forty.
define SYSTEM_CHECK
import importlib.metadata as m, sys
need = {"setuptools": (68,), "wheel": (0,), "numpy": (1, 23), "rich": (13,), "psutil": (5, 9)}
def version(name):
    try:
        return tuple(int(p) for p in m.version(name).split(".")[:2] if p.isdigit())
    except m.PackageNotFoundError:
        return None
bad = [f"{n}>={'.'.join(map(str, v))} (found {'.'.join(map(str, version(n))) if version(n) else 'none'})"
       for n, v in need.items() if version(n) is None or version(n) < v]
if bad:
    sys.exit("make SYSTEM=1: this Python lacks " + ", ".join(bad) + ": install them into it, or run make without SYSTEM=1")
endef
export SYSTEM_CHECK

.PHONY: run test install install-test lint typecheck browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV_FLAGS) $(VENV)

$(VENV)/.installed-$(EXTRAS): $(BIN)/python pyproject.toml constraints/frameworks.txt
	$(INSTALL)
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
