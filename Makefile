# genpercept_ros: set-up, tests and demo on a fresh Debian/Ubuntu machine.
# `make test` and `make demo` are all a new user needs (see README.md).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.genpercept-installed
PYTEST_ARGS ?=
# The exact versions `make test` installs (requirements*.txt hold the ranges).
CONSTRAINTS ?= constraints.txt
REQUIREMENTS := requirements.txt requirements-ros.txt requirements-test.txt
# `make test-oldest`: the oldest versions requirements.txt allows (numpy 1.26, torch 2.5, ...),
# in a venv of its own; the tests that need rclpy (marker `ros`) and the linters are deselected.
OLDEST_VENV ?= .venv-oldest
OLDEST_PY := $(OLDEST_VENV)/bin/python
OLDEST_STAMP := $(OLDEST_VENV)/.genpercept-installed
ARGS ?=

.PHONY: all venv test test-oldest lint demo bench clean colcon-build

all: test

$(STAMP): $(REQUIREMENTS) $(CONSTRAINTS) setup.py package.xml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade 'pip>=23' >/dev/null
	$(PIP) install -q $(addprefix -r ,$(REQUIREMENTS)) -c $(CONSTRAINTS)
	$(PIP) install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

venv: $(STAMP)

$(OLDEST_STAMP): $(REQUIREMENTS) constraints-oldest.txt setup.py package.xml
	@test -x $(OLDEST_PY) || $(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_PY) -m pip install -q --upgrade 'pip>=23' >/dev/null
	$(OLDEST_PY) -m pip install -q $(addprefix -r ,$(REQUIREMENTS)) -c constraints-oldest.txt
	$(OLDEST_PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $(OLDEST_STAMP)

# Its own embedding cache: `make test` just filled the user's (~/.cache/genpercept).
test-oldest: $(OLDEST_STAMP)
	cache=$$(mktemp -d) && GENPERCEPT_CACHE_DIR=$$cache $(OLDEST_PY) -m pytest -q \
		-m 'not ros and not linter and not network' $(PYTEST_ARGS); rc=$$?; rm -rf "$$cache"; exit $$rc

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
