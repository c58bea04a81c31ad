# fileresponse developer entry points.
#
#   make demo    virtualenv + example project served by gunicorn with the library's uvicorn worker
#   make demo-s3 a local S3 server for `make demo STORAGE=minio` (example/devserver.py)
#   make test    whole suite (newest Python, newest Django) + the Django 5.2 LTS leg
#   make lint    ruff check, ruff format --check, mypy, lint-imports (pyproject.toml)
#   make bench   benchmarks in bench/
#
# Override the interpreter with `make PYTHON=/path/to/python3 ...`.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
VENV52 ?= .venv-django52
EXTRAS ?= all
TEST52_EXTRAS ?= test,minio,images,vips,celery,tasks
TEST52_ARGS ?= -m "not notebooks"
PYTEST_ARGS ?=
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_WORKERS ?= 2

# The newest interpreter in the supported range that really runs (pyenv shims
# exist for versions that are not selected and fail when called).
PY_OK_NEWEST := import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 13)))
PY_OK_52 := import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 12)))

define find_python
for cand in $(1) $$(ls -d $(HOME)/.pyenv/versions/*/bin/python3 2>/dev/null | sort -rV) python3.11 python3; do \
  if "$$cand" -c '$($(2))' >/dev/null 2>&1; then \
    "$$cand" -c 'import sys; print(sys.executable)'; exit 0; \
  fi; \
done; \
echo "no suitable Python interpreter found" >&2; exit 1
endef

# Resolved once, on first use, unless given on the command line or in the environment.
ifndef PYTHON
PYTHON = $(eval PYTHON := $(shell $(call find_python,python3.13 python3.12,PY_OK_NEWEST)))$(PYTHON)
endif
ifndef PYTHON52
PYTHON52 = $(eval PYTHON52 := $(shell $(call find_python,python3.12,PY_OK_52)))$(PYTHON52)
endif

PIP := -m pip install --quiet

.PHONY: help venv venv52 demo demo-s3 test test-main test-django52 lint bench clean

help:
	@sed -n '3,8p' Makefile | sed 's/^# \{0,1\}//'

# ------------------------------------------------------------------ environments
$(VENV)/.stamp-$(EXTRAS): pyproject.toml
	@test -n "$(PYTHON)" || { echo "no Python >= 3.11 found; pass PYTHON=..." >&2; exit 1; }
	@if [ ! -x $(VENV)/bin/python ] || ! $(VENV)/bin/python -c '' 2>/dev/null; then \
	  echo "creating $(VENV) with $(PYTHON)"; \
	  rm -rf $(VENV); "$(PYTHON)" -m venv $(VENV); \
	fi
	$(VENV)/bin/python $(PIP) --upgrade pip
	$(VENV)/bin/python $(PIP) -e '.[$(EXTRAS)]'
	@rm -f $(VENV)/.stamp-*
	@touch $@

$(VENV52)/.stamp: pyproject.toml Makefile
	@test -n "$(PYTHON52)" || { echo "no Python 3.11/3.12 found for the Django 5.2 leg; pass PYTHON52=..." >&2; exit 1; }
	@if [ ! -x $(VENV52)/bin/python ] || ! $(VENV52)/bin/python -c '' 2>/dev/null; then \
	  echo "creating $(VENV52) with $(PYTHON52)"; \
	  rm -rf $(VENV52); "$(PYTHON52)" -m venv $(VENV52); \
	fi
	$(VENV52)/bin/python $(PIP) --upgrade pip
	$(VENV52)/bin/python $(PIP) -e '.[$(TEST52_EXTRAS)]' 'Django>=5.2,<5.3'
	@touch $@

venv: $(VENV)/.stamp-$(EXTRAS)
venv52: $(VENV52)/.stamp

# ------------------------------------------------------------------ demo
demo: venv
	$(VENV)/bin/python example/manage.py migrate --no-input
	$(VENV)/bin/python example/manage.py prepare_media
	@echo
	@echo "  fileresponse demo: http://$(HOST):$(PORT)/   (Ctrl-C stops it)"
	@echo
	exec $(VENV)/bin/gunicorn --chdir example example.asgi:application \
	  -k fileresponse.workers.UvicornWorker -w $(DEMO_WORKERS) -b $(HOST):$(PORT)

# A development helper, not part of the package: the suite's JuiceFS gateway on
# MINIO_ENDPOINT of settings.ini, for `make demo STORAGE=minio` in another terminal.
demo-s3: venv
	exec $(VENV)/bin/python example/devserver.py

# ------------------------------------------------------------------ tests
test: test-main test-django52

test-main: venv
	$(VENV)/bin/python -m django --version | sed 's/^/Django /'
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-django52: venv52
	$(VENV52)/bin/python -m django --version | sed 's/^/Django /'
	$(VENV52)/bin/python -m pytest $(TEST52_ARGS) $(PYTEST_ARGS)

# ------------------------------------------------------------------ quality
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-logo
	$(VENV)/bin/python bench/report.py --check

bench: venv
	$(VENV)/bin/python bench/serve_files.py
	$(VENV)/bin/python bench/serve_minio.py
	$(VENV)/bin/python bench/derivatives.py
	$(VENV)/bin/python bench/report.py

clean:
	rm -rf $(VENV) $(VENV52) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache \
	  .coverage .coverage.*
