# fileresponse developer entry points.
#
#   make demo    the example media library (.venv-demo, only what it needs); STORAGE=minio|queued too
#   make demo-celery  the same with its own Redis and a Celery worker (DERIVATIVES_EXECUTOR=celery)
#   make demo-s3 a local S3 server alone (example/devserver.py)
#   make test    whole suite (newest Python, newest Django) + the Django 5.2 LTS leg
#   make lint    ruff check, ruff format --check, mypy, lint-imports (pyproject.toml)
#   make bench   benchmarks in bench/
#   make docs    the documentation site in site/ (MkDocs, notebooks executed, API reference)
#
# Override the interpreter with `make PYTHON=/path/to/python3 ...`.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
VENV52 ?= .venv-django52
EXTRAS ?= all
TEST52_EXTRAS ?= test,minio,images,vips,celery,tasks
# Notebooks, the docs site (which executes them) and the browser tests run once, on the main leg.
TEST52_ARGS ?= -m "not notebooks and not docs and not browser"
PYTEST_ARGS ?=
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_WORKERS ?= 2
DEMO_VENV ?= .venv-demo
# The demo extra, with the MinIO client and the S3 server when the storage is remote.
DEMO_EXTRAS = $(if $(filter minio queued,$(STORAGE)),demo-s3,demo)

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

.PHONY: help venv venv52 demo demo-celery demo-s3 test test-main test-django52 lint bench docs clean

help:
	@sed -n '/^#   make /p' Makefile | sed 's/^# \{0,1\}//'

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
# Its own virtualenv, one stamp per set of extras: `make demo` installs a few packages only.
$(DEMO_VENV)/.stamp-%: pyproject.toml
	@test -n "$(PYTHON)" || { echo "no Python >= 3.11 found; pass PYTHON=..." >&2; exit 1; }
	@if [ ! -x $(DEMO_VENV)/bin/python ] || ! $(DEMO_VENV)/bin/python -c '' 2>/dev/null; then \
	  echo "creating $(DEMO_VENV) with $(PYTHON)"; \
	  rm -rf $(DEMO_VENV); "$(PYTHON)" -m venv $(DEMO_VENV); \
	fi
	$(DEMO_VENV)/bin/python $(PIP) -e '.[$*]'
	@touch $@

# example/demo.py: migrate, sample media, collectstatic, then the servers until Ctrl-C.
demo: $(DEMO_VENV)/.stamp-$(DEMO_EXTRAS)
	exec $(DEMO_VENV)/bin/python example/demo.py --host $(HOST) --port $(PORT) --workers $(DEMO_WORKERS)

demo-celery: $(DEMO_VENV)/.stamp-$(DEMO_EXTRAS),celery
	exec $(DEMO_VENV)/bin/python example/demo.py --celery --host $(HOST) --port $(PORT) \
	  --workers $(DEMO_WORKERS)

# A development helper, not part of the package: the suite's JuiceFS gateway on
# MINIO_ENDPOINT of settings.ini, for a `make demo STORAGE=minio` in another terminal
# (which starts one itself when none listens there).
demo-s3: $(DEMO_VENV)/.stamp-demo-s3
	exec $(DEMO_VENV)/bin/python example/devserver.py

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
	$(VENV)/bin/python bench/read_paths.py
	$(VENV)/bin/python bench/serve_minio.py
	$(VENV)/bin/python bench/derivatives.py
	$(VENV)/bin/python bench/report.py

# ------------------------------------------------------------------ docs
# mkdocs.yml: the notebooks of nbs/ executed, the reference from each module's __all__.
# NO_MKDOCS_2_WARNING: Material's banner about MkDocs 2.0, printed at every build.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf site $(VENV) $(VENV52) $(DEMO_VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache \
	  .coverage .coverage.*
