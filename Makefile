# The two commands a newcomer needs: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
# torch==2.13.0 is a CPU build on the machines we develop on; a GPU host installs its own build.
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run test chaos lint bench clean compose-check env-docs

$(STAMP): pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ./client -e '.[dev,worker]'
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

# The deployment's static checks: Dockerfile (hadolint), docker-compose.yml (compose-spec
# schema, docker-compose config, wiring), .env.example and the README's configuration table.
compose-check: venv
	$(BIN)/python -m pytest tests/deploy -m "not integration" -q

# Rewrite .env.example and the README's configuration table from store/settings.py.
env-docs: venv
	$(BIN)/python deploy/config_docs.py --write

clean:
	rm -rf $(VENV) .gradlab
