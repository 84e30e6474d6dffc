# genpercept_ros: set-up, tests and demo on a fresh Debian/Ubuntu machine.
# `make test` and `make demo` are all a new user needs (see README.md).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.genpercept-installed
PYTEST_ARGS ?=
ARGS ?=

.PHONY: all venv system-deps test lint demo bench clean colcon-build

all: test

# open3d-cpu links libusb-1.0; Debian's minimal images do not ship it.
system-deps:
	@if ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo '[genpercept] installing libusb-1.0-0 (needed by open3d)'; \
		(apt-get install -y -q libusb-1.0-0 >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null && apt-get install -y -q libusb-1.0-0 >/dev/null)); \
	else \
		echo '[genpercept] libusb-1.0-0 is missing and this is not root: run'; \
		echo '    sudo apt-get install libusb-1.0-0'; \
		echo '  open3d (PLY export, voxel clouds) will be unavailable until then.'; \
	fi

$(STAMP): requirements.txt setup.py package.xml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade 'pip>=23' >/dev/null
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

venv: system-deps $(STAMP)

test: venv
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: venv
	$(PY) -m pytest -q -m linter

# make demo ARGS="--model-root DIR --frames 10"; GENPERCEPT_MODEL_ROOT=DIR (environment or make
# variable) is the same as ARGS="--model-root DIR".
demo: venv
	$(VENV)/bin/genpercept demo --output demo_output \
		$(if $(GENPERCEPT_MODEL_ROOT),--model-root '$(GENPERCEPT_MODEL_ROOT)') $(ARGS)

bench: venv
	$(PY) benchmarks/bench_cpu_side.py

colcon-build: venv
	$(VENV)/bin/colcon build --base-paths . --build-base build --install-base install

clean:
	rm -rf build install log demo_output .pytest_cache
