# Two entry points: `make demo` (install + run the demo) and `make test` (install + run the tests).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

.PHONY: install install-dev demo test lint
install: $(BIN)/python
	$(BIN)/pip install -q .

# torch==2.13.0 first: the local CPU wheel. An unpinned torch pulls a multi-GB CUDA build.
install-dev: $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[train,sim,dev]'

demo: install
	$(BIN)/trafficprn demo

lint: install-dev
	$(BIN)/ruff check trafficprn tests benchmarks services docs examples
	$(BIN)/mypy

test: install-dev
	$(BIN)/ruff check trafficprn tests benchmarks services docs examples
	$(BIN)/mypy
	$(BIN)/pytest -q -p no:cacheprovider --timeout=300
