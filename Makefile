# swg-operator developer entry points. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
LOCAL := .local
KUBECONFIG_LOCAL := $(abspath $(LOCAL)/kubeconfig)
CLUSTER := $(PY) -m e2e.cluster
PYTEST := $(PY) -m pytest
N ?= 100 1000

.PHONY: help
help: ## List the targets with one line each
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## Install missing Debian packages (apt) the tools and tests need
	@hack/install-apt.sh

# The dependencies come from the hashed lock (every version and file pinned:
# `.venv/bin/python -m devtools.images lock` regenerates it), then the project itself without any.
# pip itself is pinned first: the pip that Python 3.11's venv brings (23.2) refuses the lock's
# hashed requirements when a locked package asks for another with extras (lightkube's httpx2[http2,ws]).
$(VENV)/.installed: pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q 'pip==26.3'
	$(PY) -m pip install -q --require-hashes -r requirements-dev.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

.PHONY: setup
setup: deps $(VENV)/.installed ## Install what is missing: apt packages, .venv, cached Go-built binaries, analysers
	@e2e/cluster/build-binaries.sh all
	@hack/install-analyzers.sh all

.PHONY: cluster-up
cluster-up: setup ## Start the local control plane (etcd, kube-apiserver, controllers, kwok) and the real node
	$(CLUSTER) up --dir $(LOCAL)

.PHONY: cluster-down
cluster-down: ## Stop the local control plane and every process it started
	@if [ -x $(PY) ]; then $(CLUSTER) down --dir $(LOCAL); fi

.PHONY: up
up: cluster-up images ## Everything: control plane and real node, images, the operator by helm, sample tenants
	$(PY) -m e2e.operator_process up --dir $(LOCAL)
	@echo
	@echo "Control plane is up. Use it with:"
	@echo "  export KUBECONFIG=$(KUBECONFIG_LOCAL)"
	@echo "  $$($(CLUSTER) kubectl-path) get nodes"

.PHONY: down
down: ## Stop everything `make up` started
	@if [ -x $(PY) ]; then $(PY) -m e2e.operator_process down --dir $(LOCAL); fi
	@$(MAKE) --no-print-directory cluster-down

.PHONY: lint
lint: $(VENV)/.installed ## ruff (lint + format check), mypy --strict, import-linter
	$(VENV)/bin/ruff check operator tests e2e bench devtools
	$(VENV)/bin/ruff format --check operator tests e2e bench devtools
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

.PHONY: fmt
fmt: $(VENV)/.installed ## Format and auto-fix the code
	$(VENV)/bin/ruff format operator tests e2e bench devtools
	$(VENV)/bin/ruff check --fix operator tests e2e bench devtools

.PHONY: crds
crds: $(VENV)/.installed ## Regenerate crds/ from the API models (swg-operator crd)
	$(VENV)/bin/swg-operator crd --file crds/swg.dev_securewebgateways.yaml

.PHONY: test-unit
test-unit: $(VENV)/.installed ## Fast tier: tests/ (no cluster)
	$(PYTEST) tests

.PHONY: test-e2e
test-e2e: setup ## Cluster tier: e2e/ against the local control plane (or $$SWG_E2E_KUBECONFIG)
	$(PYTEST) e2e -m "not dataplane and not images and not node"

.PHONY: test-node
test-node: setup images ## Node tier: the real node of .local (started and stopped unless running) and tenants on it, installed by helm (root)
	$(PYTEST) e2e -m node

.PHONY: rootfs
rootfs: deps ## Build (or reuse) the cached Debian 13 rootfs of the data-plane tier (root, ~1 min)
	$(PYTHON) -m devtools.rootfs build

.PHONY: test-dataplane
test-dataplane: setup rootfs ## Data-plane tier: Squid, c-icap, clamd from rendered config (root)
	$(PYTEST) e2e -m dataplane

.PHONY: test
test: setup lint test-unit test-e2e test-dataplane test-images test-node ## Install what is missing, then lint and every test tier

.PHONY: bench-dataplane
bench-dataplane: deps $(VENV)/.installed ## Data-plane benchmark (root; loopback-only namespaces): bench/results/dataplane-<date>.json
	timeout 1800 $(PY) -m bench.dataplane $(BENCH_ARGS)

# bench-provision stops after 30 minutes plus 6 s per tenant, the sizes of N together (about
# three times the durations in docs/benchmarks.md: 100 -> 50 min, 1000 -> 2 h 10, 10000 -> 17 h).
PROVISION_TIMEOUT = $$(( 1800 + 6 * ($(subst $(empty) ,+,$(strip $(N)))) ))

.PHONY: bench-provision
bench-provision: setup ## Provisioning benchmark, operator vs floor (N="100 1000"; N=10000 runs for hours): bench/results/provision-<date>-N<n>.json
	timeout $(PROVISION_TIMEOUT) $(PY) -m bench.provision $(foreach n,$(N),--tenants $(n)) $(BENCH_ARGS)

.PHONY: bench-chaos
bench-chaos: setup ## Chaos run: 100 operator kills, API server pause, etcd restart: bench/results/chaos-<date>.json
	timeout 3600 $(PY) -m bench.chaos $(BENCH_ARGS)

.PHONY: bench
bench: bench-dataplane bench-provision bench-chaos ## Every benchmark (bench-* targets)

.PHONY: chart-lint
chart-lint: $(VENV)/.installed ## helm lint --strict of the chart, hadolint of the images, shellcheck of hack/e2e-kind.sh
	@e2e/cluster/build-binaries.sh helm
	"$$($(CLUSTER) helm-path)" lint --strict charts/swg-operator
	$(VENV)/bin/hadolint --failure-threshold error images/*/Dockerfile
	shellcheck hack/e2e-kind.sh

.PHONY: chart-docs
chart-docs: ## Regenerate charts/swg-operator/README.md's values table (helm-docs, from values.yaml's `# --` comments)
	@e2e/cluster/build-binaries.sh helm-docs
	"$${SWG_CACHE:-$$HOME/.cache/swg-operator}/bin/helm-docs-$$(sed -nE 's/^HELM_DOCS_VERSION="\$$\{HELM_DOCS_VERSION:-(.*)\}"$$/\1/p' e2e/cluster/build-binaries.sh)/helm-docs" \
		--chart-search-root charts/swg-operator --template-files README.md.gotmpl --sort-values-order file

.PHONY: krew-plugin
krew-plugin: $(VENV)/.installed ## Build the kubectl swg krew archive in .local/krew/ and write its sha256 into plugins/krew/swg.yaml
	$(PY) -m devtools.krew build --out $(LOCAL)/krew

.PHONY: images
images: $(VENV)/.installed ## Build the four images with buildah, no Docker (root): tars + index.json in $$SWG_CACHE/images
	@hack/install-apt.sh buildah debootstrap
	$(PY) -m devtools.images build

.PHONY: images-docker
images-docker: ## docker build of every image (needs a Docker engine: none on the project's machines)
	hack/e2e-kind.sh images

.PHONY: test-images
test-images: images ## Images tier: each built image unpacked, run as UID 10001 (squid, clamd, c-icap, swg-operator)
	$(PYTEST) e2e -m images

.PHONY: e2e-kind
e2e-kind: setup ## e2e/ on kind with real pods and enforced NetworkPolicy (needs Docker; see docs/install.md)
	hack/e2e-kind.sh all
