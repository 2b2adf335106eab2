# One command per chore. `make run` and `make test` set everything up first.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test check bench setup setup-dev clean

run: setup
	$(BIN)/authhooks serve --profile default

test: setup-dev check
	$(BIN)/pytest

check: setup-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: setup-dev
	@scripts/setup.sh dev wrk
	$(BIN)/python bench/token_endpoint.py

setup:
	@scripts/setup.sh

setup-dev:
	@scripts/setup.sh dev

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
