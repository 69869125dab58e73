# Two commands: `make run` starts the platform, `make test` runs the whole suite.
# Both build .venv first; all they need on the machine is Python 3.11 and make.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# `make run` keeps its state here (database, secrets, uploads, notebook homes).
ERUMLAB_DATA_DIR ?= $(CURDIR)/var/data
PYTEST_ARGS ?=

.PHONY: run test lint clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), \
	  "erumlab needs Python 3.11, found " + sys.version.split()[0]' \
	  || { echo "Set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install only when the dependency lists change.
$(VENV)/.installed-run: pyproject.toml spawners/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e . -e ./spawners
	@touch $@

$(VENV)/.installed-test: pyproject.toml spawners/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[test]' -e './spawners[docker]'
	@touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	ERUMLAB_DATA_DIR=$(ERUMLAB_DATA_DIR) $(BIN)/erumlab up

test: $(VENV)/.installed-test
	$(BIN)/ruff check platform spawners tests bench
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var
