# crm-etl: `make demo` runs the whole pipeline on the embedded default; `make test` runs the test suite.
# Needs only Python 3.11+ and make: uv is installed into .tools/ when it is not on PATH.

PYTHON ?= python3
UV_VERSION := 0.13.9
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
BIN := $(VENV)/bin
# Tests wait on HTTP, throttles and databases far more than on the CPU: a few workers overlap the waits.
TEST_WORKERS ?= 4

# Keep everything inside the project, and send nothing out by default.
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export DLT_DATA_DIR := $(CURDIR)/data/dlt
export RUNTIME__DLTHUB_TELEMETRY := false
export DAGSTER_DISABLE_TELEMETRY := true
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

.PHONY: help setup demo test test-fast dev sandbox lint bench clean

help:
	@echo "make demo       whole pipeline against the sandbox APIs into data/warehouse.duckdb"
	@echo "make test       the full test suite (DuckDB and PostgreSQL at 127.0.0.1:5432)"
	@echo "make test-fast  the suite without tests marked slow"
	@echo "make dev        the Dagster UI on http://127.0.0.1:3000"
	@echo "make sandbox    the sandbox vendor APIs alone (prints base URLs and tokens)"
	@echo "make bench      benchmarks (prints tables; see bench/)"

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

$(BIN)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --compile-bytecode
	@mkdir -p $(DAGSTER_HOME)
	@test -f $(DAGSTER_HOME)/dagster.yaml || cp docs/deploy/dagster.local.yaml $(DAGSTER_HOME)/dagster.yaml
	@touch $@

setup: $(BIN)/.synced

demo: setup
	$(BIN)/crm-etl demo

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow" -n $(TEST_WORKERS) --dist loadfile

dev: setup
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

sandbox: setup
	$(BIN)/crm-etl sandbox serve --seed 42 --size demo --port 8765 --files data/sandbox_files

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf data/warehouse.duckdb data/dlt .dagster_home/storage .dagster_home/history .dagster_home/logs
