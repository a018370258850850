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
MMD ?= $(wildcard schemas/*.mmd)
CHROMIUM ?= /usr/bin/chromium
MERMAID_CLI ?= @mermaid-js/mermaid-cli@11.17.0
NODE_DIR := $(BUILD)/node
MMDC := $(NODE_DIR)/node_modules/.bin/mmdc
PUPPETEER_CONFIG := $(BUILD)/puppeteer.json
CHROMIUM_ARGS := "--no-sandbox", "--disable-gpu", "--disable-background-networking", \
	"--disable-component-update", "--disable-sync", "--no-first-run"

.PHONY: help venv run test lab diagrams clean

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
	@if [ -x $(BIN)/uv ] && $(BIN)/uv pip install --python $(BIN)/python -e '.[$(EXTRAS)]'; then :; \
	else $(BIN)/python -m pip install -e '.[$(EXTRAS)]'; fi
	@touch $@

# The main job's scale: 0.1 is about 1,000 customers over 24 months (a few seconds).
SCALE ?= 0.1
SEED ?= 0

run: venv ## Main job: schemas/, generate data, load + check it in DuckDB, ingest data/stripe, build the documents, run every notebook
	$(BIN)/paymodel schemas
	rm -rf $(BUILD)/data $(BUILD)/oltp.duckdb $(BUILD)/stripe-story.duckdb
	$(BIN)/paymodel generate --scale $(SCALE) --seed $(SEED) --out $(BUILD)/data
	$(BIN)/paymodel load $(BUILD)/data --db $(BUILD)/oltp.duckdb
	@# data/stripe holds one malformed record on purpose: exit 3 (quarantined) is the expected outcome.
	$(BIN)/paymodel ingest data/stripe/catalog.json data/stripe/events.jsonl \
	  --db $(BUILD)/stripe-story.duckdb || [ $$? -eq 3 ]
	@# The warehouse, then the document collections (one TinyDB file each; a rebuild gives
	@# identical files). Synthetic data: hashed with the published demo key unless PAYMODEL_PII_KEY is set.
	$(BIN)/paymodel olap $(BUILD)/oltp.duckdb --out $(BUILD)/warehouse.duckdb --demo
	$(BIN)/paymodel documents $(BUILD)/oltp.duckdb --warehouse $(BUILD)/warehouse.duckdb \
	  --data $(BUILD)/data --out $(BUILD)/documents --demo
	$(BIN)/paymodel notebooks --out $(BUILD)/notebooks

test: venv ## Lint, check schemas/ is up to date, run the test suite on 2 workers
	$(BIN)/ruff check .
	$(BIN)/paymodel schemas --check
	$(BIN)/python -m pytest -n 2

lab: venv ## Open JupyterLab on notebooks/; jupytext keeps each .py and .ipynb pair in sync
	@[ -x $(BIN)/jupyter-lab ] || $(BIN)/uv pip install --python $(BIN)/python jupyterlab jupytext \
	  || $(BIN)/python -m pip install jupyterlab jupytext
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks $(if $(IS_ROOT),--allow-root)

diagrams: $(MMD:.mmd=.svg) ## Render schemas/*.mmd to SVG (installs Chromium and mermaid-cli if missing)
	@$(if $(strip $(MMD)),:,echo "no schemas/*.mmd to render")

%.svg: %.mmd | $(CHROMIUM) $(MMDC) $(PUPPETEER_CONFIG)
	$(MMDC) --quiet -i $< -o $@ -p $(PUPPETEER_CONFIG)

$(CHROMIUM):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
	  || { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

$(MMDC):
	mkdir -p $(NODE_DIR)
	PUPPETEER_SKIP_DOWNLOAD=1 npm install --prefix $(NODE_DIR) --no-audit --no-fund $(MERMAID_CLI)

$(PUPPETEER_CONFIG): Makefile
	mkdir -p $(@D)
	echo '{"executablePath": "$(CHROMIUM)", "args": [$(CHROMIUM_ARGS)]}' > $@

clean: ## Remove build/ (executed notebooks, node_modules, puppeteer config)
	rm -rf $(BUILD)
