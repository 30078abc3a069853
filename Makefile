# The two commands a newcomer needs: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
# torch==2.13.0 is a CPU build on the machines we develop on; a GPU host installs its own build.
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv ui browser run test chaos lint bench clean compose-check env-docs

$(STAMP): pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ./client -e '.[dev,worker]'
	touch $(STAMP)

venv: $(STAMP)

# The /ui dashboard's charting library (and the test driver, playwright-core), from npm into
# node_modules: never committed, never fetched from a CDN. Without npm the API still runs and
# /ui says what is missing.
UI_STAMP := node_modules/.package-lock.json
$(UI_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund; \
	else echo "npm not found: /ui will have no charts (install Node.js, then make ui)"; fi

ui: $(UI_STAMP)

# The browser tests/ui drives: Debian's Chromium (never a downloaded one). Needs root.
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

run: venv ui
	$(BIN)/gradlab-server run

test: venv ui
	$(BIN)/python -m pytest -m "not chaos"

# Worker deaths and outages (tests/chaos): real worker processes killed by pid, and private
# PostgreSQL and Redis servers stopped, restarted and wiped (never the shared ones). Prints the
# fault table and writes it to test-artifacts/chaos-report.{json,md}.
chaos: venv
	$(BIN)/python -m pytest -m chaos tests/chaos

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: venv
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python bench/overhead.py

# The deployment's static checks: Dockerfile (hadolint), docker-compose.yml (compose-spec
# schema, docker-compose config, wiring), .env.example and the README's configuration table.
compose-check: venv
	$(BIN)/python -m pytest tests/deploy -m "not integration" -q

# Rewrite .env.example and the README's configuration table from store/settings.py.
env-docs: venv
	$(BIN)/python deploy/config_docs.py --write

clean:
	rm -rf $(VENV) .gradlab node_modules
