# The two commands a newcomer needs: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
# torch==2.13.0 is a CPU build on the machines we develop on; a GPU host installs its own build.
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run test chaos lint bench clean

$(STAMP): pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ./client -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: venv
	$(BIN)/gradlab-server run

test: venv
	$(BIN)/python -m pytest -m "not chaos"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: venv
	$(BIN)/python bench/overhead.py

clean:
	rm -rf $(VENV) .gradlab
