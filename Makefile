# paymodel. `make` or `make help` lists the targets; each one's `## comment` is its help.
# A fresh machine needs only Python 3.11+ and make (plus apt and npm for `make diagrams`).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS := notebooks,test
# Rebuilt whenever pyproject.toml is newer than it: `make venv` is cheap once done.
VENV_STAMP := $(VENV)/.paymodel-installed
BUILD := build
IS_ROOT := $(filter 0,$(shell id -u))
SUDO := $(if $(IS_ROOT),,sudo)

# Diagrams: Debian's Chromium drives mermaid-cli (no Chrome download: PUPPETEER_SKIP_DOWNLOAD).
# mermaid-cli 12 needs Node >= 22.13; 11.x runs on Node 18.19+ and 20.
CHROMIUM ?= /usr/bin/chromium
MERMAID_CLI ?= @mermaid-js/mermaid-cli@11.17.0
NODE_DIR := $(BUILD)/node
MMDC := $(NODE_DIR)/node_modules/.bin/mmdc
PUPPETEER_CONFIG := $(BUILD)/puppeteer.json
# Labels as SVG text (no HTML in foreignObject): the SVG then reads the same in every viewer.
MERMAID_CONFIG := $(BUILD)/mermaid.json
CHROMIUM_ARGS := "--no-sandbox", "--disable-gpu", "--disable-background-networking", \
	"--disable-component-update", "--disable-sync", "--no-first-run"

.PHONY: help venv run test lab diagrams clean mutants

help: ## List the targets with what they do
	@echo "Usage: make <target>"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: $(VENV_STAMP) ## Create .venv (python3 -m venv) and install paymodel[notebooks,test] with uv

$(VENV_STAMP): pyproject.toml
	@if [ ! -x $(BIN)/python ]; then \
	  $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	    || { echo "paymodel needs Python 3.11+: make venv PYTHON=python3.11" >&2; exit 1; }; \
	  echo "$(PYTHON) -m venv $(VENV)"; $(PYTHON) -m venv $(VENV); \
	fi
	@[ -x $(BIN)/uv ] || $(BIN)/python -m pip install --quiet uv || echo "uv unavailable: using pip"
	@# --compile-bytecode: uv writes no .pyc by default, and where PYTHONDONTWRITEBYTECODE is
	@# set Python writes none either, so every process (each test worker, notebook kernel and
	@# CLI call) would compile its imports from source: about 4 s of CPU per process start.
	@if [ -x $(BIN)/uv ] && $(BIN)/uv pip install --compile-bytecode --python $(BIN)/python -e '.[$(EXTRAS)]'; then :; \
	else $(BIN)/python -m pip install -e '.[$(EXTRAS)]'; fi
	@touch $@

# The main job's scale: 0.1 is about 1,000 customers over 24 months (a few seconds).
SCALE ?= 0.1
SEED ?= 0

run: venv ## Main job: schemas/, generate data, load + check it in DuckDB, ingest data/stripe, build the warehouse, its marts and the documents, run every notebook
	$(BIN)/paymodel schemas
	rm -rf $(BUILD)/data $(BUILD)/oltp.duckdb $(BUILD)/stripe-story.duckdb $(BUILD)/warehouse.duckdb
	$(BIN)/paymodel generate --scale $(SCALE) --seed $(SEED) --out $(BUILD)/data
	$(BIN)/paymodel load $(BUILD)/data --db $(BUILD)/oltp.duckdb
	@# data/stripe holds one malformed record on purpose: exit 3 (quarantined) is the expected outcome.
	$(BIN)/paymodel ingest data/stripe/catalog.json data/stripe/events.jsonl \
	  --db $(BUILD)/stripe-story.duckdb || [ $$? -eq 3 ]
	@# The warehouse and its marts, then the document collections (one TinyDB file each; a
	@# rebuild gives identical files). Synthetic data: hashed with the published demo key unless PAYMODEL_PII_KEY is set.
	$(BIN)/paymodel olap $(BUILD)/oltp.duckdb --out $(BUILD)/warehouse.duckdb --demo --no-progress
	$(BIN)/paymodel documents $(BUILD)/oltp.duckdb --warehouse $(BUILD)/warehouse.duckdb \
	  --data $(BUILD)/data --out $(BUILD)/documents --demo --no-progress
	$(BIN)/paymodel notebooks --out $(BUILD)/notebooks -p oltp_db=$(abspath $(BUILD))/oltp.duckdb

# --durations: every run (CI's too) lists its slowest tests, against the suite's budget of
# 15 minutes on 2 cores.
test: venv ## Lint, check schemas/ is up to date, run the test suite on 2 workers
	$(BIN)/ruff check .
	$(BIN)/paymodel schemas --check
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=15

# Mutation testing: MUTANTS narrows the run (mutmut names, globs allowed) and MUTATION_TESTS
# the tests it runs, e.g. make mutants MUTANTS='paymodel.oltp.flows.money.*'
# MUTATION_TESTS=tests/test_money.py. Results are kept between runs in MUTATION.
MUTATION ?= $(BUILD)/mutation
MUTANTS ?=
MUTATION_TESTS ?=
MUTANT_CHILDREN ?= 1
comma := ,
empty :=
space := $(empty) $(empty)
MUTATION_TEST_LIST = $(subst $(space),$(comma) ,$(patsubst %,"%",$(MUTATION_TESTS)))

mutants: venv ## Mutation testing (mutmut) of money, refunds, idempotency, invariants, ingestion, constraints; prints score and survivors (slow, not in CI)
	@$(BIN)/python -c 'import mutmut' 2>/dev/null || $(BIN)/uv pip install --python $(BIN)/python -e '.[mutation]' \
	  || $(BIN)/python -m pip install -e '.[mutation]'
	mkdir -p $(MUTATION)/mutants/src
	ln -sfn ../../lib $(MUTATION)/src
	rm -rf $(MUTATION)/tests $(MUTATION)/data && cp -r tests data pyproject.toml $(MUTATION)/
	@$(if $(MUTATION_TESTS),sed -i -z 's|pytest_add_cli_args_test_selection = \[[^]]*\]|pytest_add_cli_args_test_selection = [$(MUTATION_TEST_LIST)]|' $(MUTATION)/pyproject.toml)
	@# mutants/src must exist before Python starts, or the import system skips it for good.
	cd $(MUTATION) && PYTHONPATH=$(abspath $(MUTATION))/mutants/src nice -n 10 \
	  $(abspath $(BIN))/mutmut run --max-children $(MUTANT_CHILDREN) $(MUTANTS) > mutmut-run.log 2>&1 \
	  || { tail -20 mutmut-run.log; exit 1; }
	cd $(MUTATION) && $(abspath $(BIN))/mutmut export-cicd-stats > /dev/null
	@# No quotes inside the f-strings: Python before 3.12 refuses a backslash there.
	@cd $(MUTATION) && $(abspath $(BIN))/python -c 'import json; s = json.load(open("mutants/mutmut-cicd-stats.json")); \
	  k, t, sv, nt, su = (s[n] for n in ("killed", "timeout", "survived", "no_tests", "suspicious")); \
	  caught = k + t; judged = caught + sv + nt + su; \
	  print(f"mutation score: {caught}/{judged} = {100 * caught / max(judged, 1):.1f}% ", \
	        f"(killed {k}, timeout {t}, survived {sv}, no tests {nt})")'
	@echo "survivors (mutmut show NAME in $(MUTATION) for the diff):"
	@cd $(MUTATION) && $(abspath $(BIN))/mutmut results

lab: venv ## Open JupyterLab on notebooks/ (installs the `lab` extra); jupytext keeps each .py and .ipynb pair in sync
	@[ -x $(BIN)/jupyter-lab ] || $(BIN)/uv pip install --python $(BIN)/python -e '.[$(EXTRAS),lab]' \
	  || $(BIN)/python -m pip install -e '.[$(EXTRAS),lab]'
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks $(if $(IS_ROOT),--allow-root)

# Which SVGs to render is decided by content, not modification times (a fresh clone sets
# those arbitrarily): each SVG records the SHA-256 of the .mmd it was rendered from, and
# `python -m paymodel.model.diagrams stale` lists the .mmd whose SVG is missing or differs.
diagrams: venv | $(CHROMIUM) $(MMDC) $(PUPPETEER_CONFIG) $(MERMAID_CONFIG) ## Render each schemas/*.mmd whose SVG is missing or stale (installs Chromium and mermaid-cli if missing)
	@stale="$$($(BIN)/python -m paymodel.model.diagrams stale schemas)"; \
	[ -n "$$stale" ] || echo "schemas/*.svg: up to date with their .mmd"; \
	for mmd in $$stale; do \
	  svg="$${mmd%.mmd}.svg"; echo "$(MMDC) -i $$mmd -o $$svg"; \
	  $(MMDC) --quiet -i "$$mmd" -o "$$svg" -p $(PUPPETEER_CONFIG) -c $(MERMAID_CONFIG) \
	    --svgId "$$(basename "$${mmd%.mmd}")"; \
	  $(BIN)/python -m paymodel.model.diagrams stamp "$$mmd" "$$svg"; \
	done

$(CHROMIUM):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
	  || { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

$(MMDC):
	mkdir -p $(NODE_DIR)
	PUPPETEER_SKIP_DOWNLOAD=1 npm install --prefix $(NODE_DIR) --no-audit --no-fund $(MERMAID_CLI)

$(PUPPETEER_CONFIG): Makefile
	mkdir -p $(@D)
	echo '{"executablePath": "$(CHROMIUM)", "args": [$(CHROMIUM_ARGS)]}' > $@

$(MERMAID_CONFIG): Makefile
	mkdir -p $(@D)
	echo '{"htmlLabels": false, "er": {"useMaxWidth": false}, "state": {"useMaxWidth": false}}' > $@

clean: ## Remove build/ (executed notebooks, node_modules, puppeteer config)
	rm -rf $(BUILD)
