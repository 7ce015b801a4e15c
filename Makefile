# The two commands of the README. Both bootstrap .venv themselves, idempotently:
# torch==2.13.0 (the CPU wheel on disk) first, so nothing pulls a CUDA build, then the project with its dev extra.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bootstrap clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

bootstrap: $(STAMP)

# The main job on the embedded default. Until the diffusion checkpoints land this renders the gallery of every
# task and level (problem, solution, parsed back and verified).
demo: $(STAMP)
	$(VENV)/bin/diffthinker gallery --out gallery --overwrite
	@echo "gallery written to gallery/README.md"

test: $(STAMP)
	$(PY) -m pytest -n 2 tests

clean:
	rm -rf $(VENV) gallery .pytest_cache
