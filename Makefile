# Two entry points for a fresh machine: `make demo` and `make test`. Both create .venv and install.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install demo demo-models experiment test docs docs-serve clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e '.[test,docs]'
	touch $(STAMP)

install: $(STAMP)

## The main job end to end on built-in data (no download, no GPU).
demo: install
	$(BIN)/ambient-eval demo --out demo_out

## Retrain the demo's shipped checkpoints (ambient_eval/demo/checkpoints) with the CLI recipe (~20 CPU min).
demo-models: install
	$(BIN)/python -m ambient_eval.demo.pretrained

## Clean-only vs naive vs both Ambient-Omni loops, 3 corruption splits x 3 seeds, digits8 + cifar16 (~25 CPU min) -> experiments/results/.
experiment: install
	$(BIN)/python experiments/ambient_ordering.py

## The test suite (what CI runs).
test: install
	$(BIN)/python -m pytest -n 2 -q $(PYTEST_ARGS)

## The documentation site (MkDocs, --strict: a broken link or a docstring warning fails) -> site/.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## Serve the site with live reload on http://127.0.0.1:8000.
docs-serve: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

clean:
	rm -rf demo_out bench_out site .pytest_cache
