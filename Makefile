# The two commands of the README. Both bootstrap .venv themselves, idempotently:
# torch==2.13.0 (the CPU wheel on disk) first, so nothing pulls a CUDA build, then the project with its dev extra.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

# Debian's chromium for the demo's browser test (tests/browser), driven by the playwright package of the dev extra
# through its executable path: never a browser download. Installed once; skipped when it is already there.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo gallery test bootstrap browser clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

bootstrap: $(STAMP)

$(CHROMIUM):
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

browser: $(CHROMIUM)

# The Gradio demo on the shipped checkpoints (checkpoints/), at http://127.0.0.1:7860; options go in DEMO_ARGS,
# e.g. make demo DEMO_ARGS="--checkpoint runs/bench/maze8/pipeline --port 7861".
demo: $(STAMP)
	$(PY) app/app.py $(DEMO_ARGS)

# Every task and level drawn, parsed back and verified: gallery/README.md.
gallery: $(STAMP)
	$(VENV)/bin/diffthinker gallery --out gallery --overwrite
	@echo "gallery written to gallery/README.md"

# DIFFTHINKER_REQUIRE_BROWSER=1: the browser test fails (instead of skipping) if chromium or playwright is missing.
test: $(STAMP) $(CHROMIUM)
	DIFFTHINKER_REQUIRE_BROWSER=1 $(PY) -m pytest -n 2 tests

clean:
	rm -rf $(VENV) gallery .pytest_cache
