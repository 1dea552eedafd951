# fleetbench: two commands on a fresh machine.
#   make demo  - create .venv, install fleetbench[report], run the built-in demo plan
#                (ends by printing the path of the HTML report it wrote)
#   make test  - create/update .venv with test dependencies, run ruff, mypy and the tests
# The first install compiles llama.cpp (about 6 minutes on 2 cores; pip caches the wheel).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# A portable llama.cpp build (no -march=native), so the cached wheel runs on any x86_64.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: demo test install install-dev lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[report]'
	touch $@

# Tests exercise the optional parts too: the HTML report ([report]), transformers ([hf],
# torch pinned first so that pip takes the CPU wheel), hosted APIs ([hosted], against a
# loopback server), dense retrieval ([rag]), PDF corpora ([pdf]), the Ray executor
# ([ray], a local instance), Parquet exports ([parquet]) and S3 uploads ([s3], against a
# local moto server).
$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,report,hf,hosted,rag,pdf,ray,parquet,s3]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/fleetbench run

lint: install-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

# The browser tests drive Debian's Chromium (Playwright's own download is not reachable).
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	apt-get update -qq && apt-get install -y -qq chromium

test: lint $(CHROMIUM)
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/embedded_overhead.py

clean:
	rm -rf $(VENV) fleetbench-results .mypy_cache .ruff_cache .pytest_cache
