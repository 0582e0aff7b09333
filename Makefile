# The README names these targets; each one installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean postgresql nginx

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	# tensorflow_hub 0.15 (the last with the TF1 API) for compatibility tests only, kept apart
	# from the environment because it cannot be imported on TF 2.16+ without a stand-in.
	$(BIN)/python -m pip install --quiet --no-deps --upgrade --target $(VENV)/tfhub015 tensorflow_hub==0.15.0
	touch $(STAMP)

install: $(STAMP)

# The demo needs only the demo extra (no test packages): its own stamp, or the full install.
DEMO_STAMP := $(VENV)/.installed-demo
$(DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[demo]"
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/python examples/demo.py

# Browser tests drive Debian's chromium through Playwright (which cannot download its own).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && apt-get install -y -qq chromium

# Three workers on this 2-core machine (much of the suite waits on servers, subprocesses and
# deadlines: two workers kept 1.5 cores busy, three 1.65; 6:00 vs 6:27 measured back to back),
# each taking whole test files (so module and session fixtures are built once per worker) in
# collection order: conftest puts the longest files first (xdist would otherwise start with the
# files holding most tests and leave a long one for the end). Hypothesis runs its quick "dev"
# profile here and the thorough "ci" one when CI is set.
# The catalog tests start a real PostgreSQL with Debian's binaries (tests/helpers/postgres.py).
PG_CTL := $(firstword $(wildcard /usr/lib/postgresql/*/bin/pg_ctl))
postgresql:
	test -n "$(PG_CTL)" || (apt-get update -qq && apt-get install -y -qq postgresql)

# The delivery tests and the benchmarks run a real nginx (tests/helpers/nginx.py).
nginx:
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || (apt-get update -qq && apt-get install -y -qq nginx)

test: $(STAMP) $(CHROMIUM) postgresql nginx
	$(BIN)/ruff check src tests examples
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 3 --dist loadfile --no-loadscope-reorder

bench: $(STAMP) postgresql nginx
	$(BIN)/python bench/tf1_module.py
	$(BIN)/python bench/download.py
	$(BIN)/python bench/keras_layer.py
	$(BIN)/python bench/catalog.py

lint: $(STAMP)
	$(BIN)/ruff check src tests examples
	$(BIN)/ruff format --check src tests examples
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
