# The README's two commands.  Each creates .venv (if needed) and installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test test-fast bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

## demo: install digitlens and open the web page where you draw a digit and look inside; it
## prints the address at once and trains the ladder of models (logistic first, ready in about
## a second) in the background, each used as soon as it is ready (Ctrl-C stops it)
demo: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/digitlens serve

## test: install digitlens with its test dependencies and run the whole test suite
test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pytest -q

## test-fast: the quick subset while you work (no model training to full accuracy, no browser),
## on both cores (pytest-xdist); under a minute.  `make test` (what CI runs) runs everything.
test-fast: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pytest -q -m "not slow and not browser" -n 2

bench: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python benchmarks/bench_train.py
