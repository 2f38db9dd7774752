# The two-command quick start: `make up` runs opswire, `make test` runs every test.
# Needs only Python 3.11+ and make; everything else is installed into .venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install up demo test bench asyncapi clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -c 'import sys; sys.exit("opswire needs Python 3.11+") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/opswire up $(ARGS)

demo: $(STAMP)
	$(BIN)/opswire up --demo $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

bench: $(STAMP)
	$(BIN)/python bench/pipeline.py $(ARGS)

asyncapi: $(STAMP)
	$(BIN)/opswire asyncapi > docs/asyncapi.json

clean:
	rm -rf $(VENV) .pytest_cache
