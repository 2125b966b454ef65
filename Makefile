# Two entry points that work on a fresh machine with only Python 3.11+:
#   make demo   - run the whole job against the built-in simulated exchange
#   make test   - run the full test suite
# Both install from requirements.txt (exact versions, every platform), so a fresh machine
# runs what CI ran; `make lock` refreshes it, `make test-latest` tries the newest versions
# the ranges in pyproject.toml allow.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LATEST ?= /tmp/alphavol-latest-venv

.PHONY: demo test lint bench install lock test-latest clean

$(BIN)/alphavol: pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

install: $(BIN)/alphavol

demo: install
	$(BIN)/alphavol demo

# Two passes: the tests in parallel workers (they mostly wait on the simulated exchange),
# then the timing-sensitive ones (marked serial) two at a time at most. Fails on any
# failure. --dist loadgroup hands tests out one at a time as workers free up (plain
# "load" sends each worker a batch up front, and in two runs put the notification test
# beside heavier ones until it timed out). The pool's tests once ran one after another
# through xdist_group; with pytest 9.2, pytest-xdist 3.8 ignores that mark
# (pytest-dev/pytest-xdist#1386), so they run two at a time, as every green run measured.
SERIAL = -m serial -n 2 --dist loadgroup
test: install
	$(BIN)/python -m pytest -q -n 4 --dist loadgroup -m "not serial"
	$(BIN)/python -m pytest -q $(SERIAL)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	@# no function of radon's rank D or worse (cyclomatic complexity over 20; issue 24)
	@out=$$($(BIN)/radon cc -n D -s exchange config protocol supervisor userproc); \
	if [ -n "$$out" ]; then echo "split these (radon rank D or worse):"; echo "$$out"; exit 1; fi

bench: install
	$(BIN)/python -m bench

# Exact versions of the project and its test/dev extras, for every platform and Python
# 3.11+ (uv resolves the whole tree in about a second).
lock: install
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		-o requirements.txt

# The suite against the newest versions pyproject.toml's ranges allow, in a throw-away
# venv: tells early what the next `make lock` would break. Not part of CI.
test-latest:
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet --upgrade -e '.[dev]'
	$(LATEST)/bin/python -m pytest -q -n 4 -m "not serial" -p no:cacheprovider
	$(LATEST)/bin/python -m pytest -q $(SERIAL) -p no:cacheprovider

.PHONY: image test-image

# The OCI image (Containerfile), with podman (docker where that is what the machine has);
# deploy/podman-setup.sh prepares the machine first. BASE= the image to build from (default:
# one built from Debian's packages here), IMAGE= the tag. test-image also runs the demo in it.
image: install
	BASE="$(BASE)" IMAGE="$(IMAGE)" PYTHON="$(BIN)/python" deploy/build-image.sh

test-image: install
	BASE="$(BASE)" IMAGE="$(IMAGE)" PYTHON="$(BIN)/python" deploy/test-image.sh

clean:
	rm -rf $(VENV) build dist *.egg-info
