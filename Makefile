# kartu — `make run` serves a demo on a fresh machine; `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BIND   ?= 127.0.0.1:8000
# `make run` serves BIND; without KARTU_PUBLIC_URL, links and the card issuer use the same
# address, or 127.0.0.1 with its port when BIND is a wildcard (0.0.0.0, [::]).
BIND_PORT := $(lastword $(subst :, ,$(BIND)))
PUBLIC_HOSTPORT := $(if $(filter 0.0.0.0:% [::]:%,$(BIND)),127.0.0.1:$(BIND_PORT),$(BIND))
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup run test lint bench bench-import bench-verify bench-extract clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/kartu migrate --noinput -v0
	$(BIN)/kartu createcachetable
	$(BIN)/kartu demo --people 1000 --if-empty
	KARTU_PUBLIC_URL="$${KARTU_PUBLIC_URL:-http://$(PUBLIC_HOSTPORT)}" $(BIN)/kartu up --bind $(BIND)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy kartu
	KARTU_DATA_DIR=$$(mktemp -d) $(BIN)/kartu makemigrations --check --dry-run

# The whole suite on SQLite (plus Redis when KARTU_TEST_REDIS_URL is set), then the tests
# marked `backends` again on PostgreSQL when KARTU_TEST_POSTGRES_URL is set.
test: lint
	$(BIN)/pytest
	@if [ -n "$$KARTU_TEST_POSTGRES_URL" ]; then \
	  echo "== the backend tests again, on PostgreSQL"; \
	  KARTU_DATABASE_URL="$$KARTU_TEST_POSTGRES_URL" $(BIN)/pytest -m backends -p no:cacheprovider; \
	else echo "== PostgreSQL run SKIPPED: KARTU_TEST_POSTGRES_URL is not set"; fi

bench: bench-import bench-verify bench-extract

bench-import: setup
	$(BIN)/python bench/import_bench.py --rows 1000000

bench-verify: setup
	$(BIN)/python bench/verify_bench.py --people 1000000

bench-extract: setup
	$(BIN)/python bench/extract.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
