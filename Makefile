# One command per task. `make course` opens the course; `make test` runs every test.
# Both create the environment (.venv) first if it is missing or older than pyproject.toml.

VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The first Python >= 3.11 on PATH (override with `make PYTHON=/path/to/python3.12 ...`).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3 python; do \
            command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
            2>/dev/null && { echo $$p; break; }; done)
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
          --nbval-cell-timeout 120

.PHONY: setup course test lint typecheck notebooks exercises bench cluster mutation clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed; none found on PATH." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $(STAMP)

setup: $(STAMP)  ## create .venv with the course and its tools

course: setup  ## open the course in JupyterLab, at lesson 00
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/00_start_here.ipynb

lint: setup  ## ruff over the package, tests, scripts and notebooks
	$(BIN)/ruff check course_server tests scripts benchmarks loadtest attacks notebooks solutions exercises
	$(BIN)/ruff format --check course_server tests scripts benchmarks loadtest attacks notebooks solutions exercises

typecheck: setup  ## mypy --strict over the package (settings in pyproject.toml's [tool.mypy])
	$(BIN)/python -m mypy

test: lint typecheck  ## every test: lint, types, package tests, browser tests, lessons and solutions under nbval
	$(BIN)/python -m pytest tests notebooks solutions $(NBVAL)

notebooks: setup  ## re-execute lessons and solutions, store their outputs, regenerate exercises
	$(BIN)/python scripts/execute_notebooks.py notebooks/*.ipynb solutions/*.ipynb
	$(BIN)/python scripts/make_exercises.py

exercises: setup  ## regenerate exercises/ from solutions/ (after editing a solution)
	$(BIN)/python scripts/make_exercises.py

bench: setup  ## benchmarks (lesson 10): fan-out at 1,000 receivers, polling vs push, cross-process
	$(BIN)/python -m benchmarks.fanout --receivers 1000 --messages 200 --repeat 2 --wait-quiet 30
	$(BIN)/python -m benchmarks.transports --events 1000
	$(BIN)/python -m benchmarks.crossprocess --wait-quiet 30
	$(BIN)/python -m benchmarks.crossprocess --knee

# REPLICAS=N course_server processes (2), PORT=P nginx's public port (a free one).
cluster: setup  ## Redis, course_server replicas and nginx (deploy/nginx.conf) on 127.0.0.1, until Ctrl+C
	$(BIN)/python -m course_server.tools.cluster --replicas $(or $(REPLICAS),2) --port $(or $(PORT),0)

# LIMIT=N checks at most N mutants per exercise (the same ones each run); JOBS=N at once.
mutation: setup  ## mutation score of each exercise's checks: edits of the solutions that pass
	COURSE_CHECK_TIMEOUT_FACTOR=$${COURSE_CHECK_TIMEOUT_FACTOR:-3} $(BIN)/python scripts/mutate.py \
	  $(if $(LIMIT),--limit $(LIMIT)) $(if $(JOBS),--jobs $(JOBS))

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
