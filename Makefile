# The single entry point: `make run` (the service, locally) and `make test` (the whole suite).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_VERSION := $(shell cat .python-version)
# pyenv keeps 3.13 installed but not active on these machines; fall back to whatever python3.13 is on PATH.
PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/$(PYTHON_VERSION)/bin/python3.13) $(shell command -v python3.13))
VENV := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
PY := $(VENV)/bin/python
# sam build looks for python3.13 on PATH; the project venv provides it.
SAM := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam
REGION ?= us-east-1
# Offline: no update check against PyPI, no download of the vendor platform's policies or ID mapping. Failed
# checks fail the build; skips are inline in template.yaml, each with its reason (docs/security.md).
CHECKOV := CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov \
	--file template.yaml --framework cloudformation --skip-download --quiet --compact

.PHONY: help install lint build test unit e2e run enqueue bench mutate clean
help:
	@echo "make run    start the whole service on 127.0.0.1 (PORT=3000), no AWS account needed"
	@echo "make test   set everything up and run the whole suite (ruff, cfn-lint, sam validate, checkov, sam build, pytest)"
	@echo "make e2e    the black-box contract suite against make run (started and stopped by it); STACK_NAME=<stack> make e2e: against that deployed stack"
	@echo "make bench  benchmarks: cold import, cold first answer, handler overhead, Wooxy bulk, the queue path under load (each part in its own process)"
	@echo "make mutate mutation testing of the providers, mappings, store and queue rules, HTTP layer, lookups, validator; prints the score per file"

$(VENV)/.installed: requirements-dev.txt layers/shared/requirements.txt
	@test -n "$(PYTHON)" || { echo "python$(PYTHON_VERSION) not found (pyenv install $(PYTHON_VERSION))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet -r requirements-sam.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements-checkov.txt
	touch $@

install: $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM) validate --lint --region $(REGION)
	$(CHECKOV)

build: install
	$(SAM) build --region $(REGION)

test: lint build
	$(VENV)/bin/pytest

unit: $(VENV)/.installed
	$(VENV)/bin/pytest tests/unit

# The black-box contract suite (tests/e2e, also part of `make test`): against `make run`, which it starts on free
# ports and stops; with STACK_NAME, against that deployed stack (its Outputs; signed with the caller's AWS
# credentials; docs/deploy.md). Deployed, tests/conftest.py's fake credentials and loopback-only sockets stay out.
e2e: $(VENV)/.installed
ifdef STACK_NAME
	E2E_STACK_NAME=$(STACK_NAME) $(VENV)/bin/pytest tests/e2e --confcutdir=tests/e2e --force-enable-socket --timeout=900
else
	$(VENV)/bin/pytest tests/e2e
endif

run: $(VENV)/.installed
	PYTHONPATH=layers/shared:. $(PY) -m local.run

enqueue: $(VENV)/.installed  ## make enqueue PROVIDER=wooxy IDS="id1 id2": track ids through the running local service's queue
	PYTHONPATH=layers/shared:. $(PY) -m local.enqueue $(PROVIDER) $(IDS)

bench: build
	PYTHONPATH=layers/shared:. $(PY) -m bench

# Mutation testing (docs/testing.md): what is mutated and which tests run is [tool.mutmut] in pyproject.toml.
# mutmut names modules after their path, so it runs in a staging directory where the layer is src/sms_status,
# and every other top-level entry next to it (symlinks, rebuilt each time: a full run, never stale results).
MUTATE_DIR := build/mutate
MUTATE_JOBS ?= 2
mutate: $(VENV)/.installed
	rm -rf $(MUTATE_DIR) && mkdir -p $(MUTATE_DIR)/src
	ln -s $(CURDIR)/layers/shared/sms_status $(MUTATE_DIR)/src/sms_status
	for path in $(filter-out build layers,$(wildcard *)); do ln -s $(CURDIR)/$$path $(MUTATE_DIR)/$$path; done
	cd $(MUTATE_DIR) && $(CURDIR)/$(VENV)/bin/mutmut run --max-children $(MUTATE_JOBS)
	$(PY) mutation/scores.py $(MUTATE_DIR)

clean:
	rm -rf .aws-sam $(VENV) $(SAM_VENV) $(CHECKOV_VENV) build
