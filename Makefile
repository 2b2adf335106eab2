# One command per chore. `make run` and `make test` set everything up first.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test check bench stress setup setup-dev clean

run: setup
	$(BIN)/authhooks serve --profile default

# Two runs: everything but the load and fault suite spread over every core (tests
# wait on servers and sandboxes more than they compute), then that suite alone,
# so that its figures are not another test's noise.
test: setup-dev check
	$(BIN)/pytest --numprocesses=auto --ignore=tests/stress
	$(BIN)/pytest tests/stress

# The layer check (tests/test_layers.py) only reads the sources, so it runs here as well.
check: setup-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q -p no:cacheprovider tests/test_layers.py

# The load and fault suite at full length (a few minutes), then its table.
stress: setup-dev
	AUTHHOOKS_STRESS=full AUTHHOOKS_FUZZ_EXAMPLES=100 $(BIN)/pytest -p no:cacheprovider tests/stress tests/fuzz

bench: setup-dev
	@scripts/setup.sh dev wrk
	$(BIN)/python bench/token_endpoint.py

setup:
	@scripts/setup.sh

setup-dev:
	@scripts/setup.sh dev

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
