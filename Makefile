# durable-lambda developer tasks. Every target builds .venv itself when needed,
# so `make test` works on a fresh clone with nothing but Python installed.

# Prefer python3.11 (the oldest version we support) when it is on PATH.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
VENV   := .venv
PY     := $(VENV)/bin/python

# The stamp carries a checksum of pyproject.toml: editing dependencies reinstalls.
PYPROJECT_SUM := $(shell cksum pyproject.toml | cut -d' ' -f1)
STAMP         := $(VENV)/.installed-$(PYPROJECT_SUM)

# Lint only the folders that exist (tests/ or benchmarks/ may not yet).
LINT_DIRS := $(wildcard durable_lambda functions tests benchmarks)

.DEFAULT_GOAL := test
.PHONY: venv demo test pytest lint typecheck cfn-lint sam-validate bench clean localstack viewer-test browser

# The SAM CLI pins its own boto3: it gets a virtualenv of its own, inside .venv because
# `sam build` (CodeUri: .) leaves any .venv folder out of the functions' bundle.
SAM_VENV    := $(VENV)/sam
SAM         := $(SAM_VENV)/bin/sam
SAM_VERSION := 1.170.0
# SAM reads a region and credentials even offline; it must not phone home.
SAM_ENV     := AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline \
               SAM_CLI_TELEMETRY=0

# venv: create .venv and install the package editable with every extra.
venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,local,bench]'
	rm -f $(VENV)/.installed-*
	touch $@

# demo: start the dev stack (moto, emulated functions, the HTTP API on localhost), run
# the sample tasks to their end, print them, stop. Its own light virtualenv: the package
# and its `demo` extra only (a lean moto server), none of the test, lint or benchmark tools. A repository
# command: the demo and its tasks live in functions/, which the wheel does not ship.
DEMO_VENV  := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed-$(PYPROJECT_SUM)

$(DEMO_STAMP): pyproject.toml
	test -x $(DEMO_VENV)/bin/python || $(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install -q --disable-pip-version-check -e '.[demo]'
	rm -f $(DEMO_VENV)/.installed-*
	touch $@

demo: $(DEMO_STAMP)
	$(DEMO_VENV)/bin/python -m functions.demo

# localstack: start LocalStack in host mode (its own Python 3.13 virtualenv, installed on
# first use), run the LocalStack-marked tests against it (SQS, S3 on LocalStack, DynamoDB on
# the embedded moto server), then stop it by its PID whatever happened.
localstack: $(STAMP)
	@pid=$$(scripts/localstack.sh up) || exit 1; \
	trap 'scripts/localstack.sh down '"$$pid" EXIT; \
	LOCALSTACK_HOST=127.0.0.1:$${LOCALSTACK_PORT:-4566} DL_REQUIRE_LOCALSTACK=1 \
		$(PY) -m pytest -q -p no:cacheprovider -m localstack tests

# test: everything CI checks: lint, types, template, then the whole test suite (slow included).
test: lint typecheck cfn-lint sam-validate pytest

# pytest: the test suite alone.
pytest: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider --durations=25

# lint: ruff rules on all Python code, formatting on the library.
lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/ruff format --check durable_lambda

# typecheck: mypy --strict on the library (configured in pyproject.toml).
typecheck: $(STAMP)
	$(VENV)/bin/mypy durable_lambda

# cfn-lint: validate the SAM template.
cfn-lint: $(STAMP)
	$(VENV)/bin/cfn-lint template.yaml

# sam-validate: the SAM CLI's own validation and linting of the template, offline.
sam-validate: $(SAM)
	$(SAM_ENV) $(SAM) validate --lint --template template.yaml

$(SAM):
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q aws-sam-cli==$(SAM_VERSION)

# browser: Debian's chromium and chromium-driver, for the viewer's test (installed where missing).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium chromium-driver; }

# viewer-test: the run viewer in headless Chromium against a run on the dev stack.
# (make test runs it too where chromium is installed, and says it skipped it otherwise.)
viewer-test: $(STAMP) browser
	$(PY) -m pytest -q -p no:cacheprovider tests/emulator/test_viewer.py

# bench: run every benchmark script in turn; stop at the first failure.
bench: $(STAMP)
	@set -e; for script in benchmarks/*.py; do \
		[ -e "$$script" ] || { echo "no benchmarks found"; exit 0; }; \
		echo "== $$script"; \
		$(PY) "$$script"; \
	done

# clean: remove the virtualenv, caches and build output.
clean:
	rm -rf $(VENV) $(DEMO_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .aws-sam build dist *.egg-info .dl-local
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
