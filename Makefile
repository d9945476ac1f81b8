# The first two commands on a fresh machine: `make demo` and `make test`. Both create the venv and install.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
export BLOCKS_HOME ?= $(CURDIR)/.blocks
export DAGSTER_HOME ?= $(BLOCKS_HOME)/dagster_home
# one planned event per month run instead of one per hourly partition (see blocks_pipelines/cli/demo.py)
export DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS ?= true

.PHONY: install demo test test-fast lint format bench serve dagster clean

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/blocks demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# everything but the tests marked slow (dbt builds, Dagster runs, servers, crash-injected processes, moto
# integrations), on both cores: the edit-run loop, under a minute here (make test runs all of them, one process)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow" -n 2 $(PYTEST_ARGS)

# ruff (lint + format) on Python; sqlfluff on the dbt models as dbt compiles them for DuckDB (dbt templater)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@mkdir -p $(BLOCKS_HOME)/lint/warehouse
	BLOCKS_HOME=$(BLOCKS_HOME)/lint $(BIN)/sqlfluff lint dbt_project/models

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	@mkdir -p $(BLOCKS_HOME)/lint/warehouse
	BLOCKS_HOME=$(BLOCKS_HOME)/lint $(BIN)/sqlfluff fix dbt_project/models

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

dagster: $(STAMP)
	@mkdir -p $(DAGSTER_HOME)
	@cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml  # the instance reads its config from DAGSTER_HOME only
	$(BIN)/dagster dev -w workspace.yaml -p 3000

serve: $(STAMP)
	$(BIN)/blocks serve

clean:
	rm -rf $(BLOCKS_HOME) dbt_project/target dbt_project/logs
