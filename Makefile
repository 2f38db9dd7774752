# The two-command quick start: `make up` runs opswire, `make test` runs every test.
# Needs only Python 3.11+ and make; everything else is installed into .venv.
# `make lint`: ruff and mypy, at the versions pinned here (docs/development.md).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LINT_TOOLS := ruff==0.14.0 mypy==1.18.2
LINT_STAMP := $(VENV)/.lint-stamp
TYPED := opswire auth commands ingest gateway agent bench

.PHONY: install up demo browser test lint bench asyncapi clean

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

# The dashboard's browser tests drive the system's Chromium (Playwright's own browser download
# cannot work offline): Debian's package is installed when there is none (as root or with sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	  || [ -n "$$OPSWIRE_TEST_CHROMIUM" ] || { \
	    SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	    echo "installing Chromium for the browser tests (apt-get install chromium)"; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) browser
	$(BIN)/python -m pytest $(ARGS)

$(LINT_STAMP): $(STAMP) Makefile
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(LINT_TOOLS)
	touch $(LINT_STAMP)

lint: $(LINT_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(TYPED)

# The issue-10 table: opswire and bench/floor.py side by side (bench/abuse.py: the flood benchmark).
bench: $(STAMP)
	$(BIN)/python bench/table.py $(ARGS)

asyncapi: $(STAMP)
	$(BIN)/opswire asyncapi > docs/asyncapi.json

clean:
	rm -rf $(VENV) .pytest_cache
