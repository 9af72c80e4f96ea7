# neurallog.platform — one entry point for set-up, the main job and the tests.
#   make deploy   set up everything; with no KUBECONFIG given, bring up the
#                 local test cluster and run site.yml on it
#   make test     the whole test suite (lint, sanity, unit, cluster, Molecule, real containers on kind)
#   make security render every inventory and example tenants, run checkov, print the figures
#   make bench    site.yml and tenants against kubectl (build/bench/*.md); bench-profile: a no-op's profile;
#                 bench-fleet: three clusters in parallel against one after another
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CLUSTER := $(BIN)/python hack/localcluster/cluster.py
INVENTORY ?= inventories/local
MOLECULE_SCENARIOS ?= default tenants safety airgap
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help deps venv binaries cluster-up cluster-down cluster-status cluster-demo kind-up kind-down kind-load molecule-kind deploy site \
        lint sanity unit cluster-test molecule test security build bench bench-tenants bench-profile bench-fleet bundle images images-real clean

help:
	@sed -n 's/^#   //p' Makefile

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade 'pip>=24'
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

# Debian packages the tests need (real Redis and PostgreSQL servers, skopeo,
# the registry), installed when missing.
deps:
	hack/deps.sh

binaries:
	hack/localcluster/build.sh all >/dev/null

cluster-up: venv
	$(CLUSTER) up

cluster-down: venv
	$(CLUSTER) down

cluster-status: venv
	$(CLUSTER) status

# A real kind cluster (hack/kind/cluster.sh). On a machine without internet
# access (the CI machines) run it with NEURALLOG_KIND_OFFLINE=1: the node
# image is built here and nothing can leave the machine (docs/testing.md).
kind-up: binaries
	NEURALLOG_CLUSTER_NAME=$${NEURALLOG_CLUSTER_NAME:-kind} hack/kind/cluster.sh up

kind-down:
	NEURALLOG_CLUSTER_NAME=$${NEURALLOG_CLUSTER_NAME:-kind} hack/kind/cluster.sh down

# The platform's images (make images-real) into that cluster; only what the
# node does not hold yet is sent.
kind-load: venv
	NEURALLOG_CLUSTER_NAME=$${NEURALLOG_CLUSTER_NAME:-kind} hack/kind/cluster.sh load

# The Molecule scenario on an offline kind cluster of its own (real
# containers): images, cluster, converge, idempotence, verify, delete.
molecule-kind: venv binaries deps
	hack/engine.sh && hack/images/build.sh all >/dev/null
	NEURALLOG_KIND_OFFLINE=1 NEURALLOG_CLUSTER_PROVIDER=kind $(BIN)/molecule test -s kind

# Nodes, a rollout with volumes, a quota and RBAC refusing, on a throw-away
# local cluster (hack/localcluster/demo.sh).
cluster-demo: venv binaries
	hack/localcluster/demo.sh

# With KUBECONFIG/K8S_AUTH_KUBECONFIG set, site.yml runs against that
# cluster; otherwise against the local test cluster, brought up first.
deploy: venv
	@if [ -n "$${K8S_AUTH_KUBECONFIG:-$${KUBECONFIG:-}}" ]; then \
	  $(BIN)/ansible-playbook site.yml -i $(INVENTORY); \
	else \
	  kc=$$($(CLUSTER) up) && \
	  K8S_AUTH_KUBECONFIG=$$kc $(BIN)/ansible-playbook site.yml -i $(INVENTORY); \
	fi

lint: venv
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint --profile production

# ansible-test needs the collection under ansible_collections/<ns>/<name>:
# sanity runs on a copy made from `git ls-files`.
sanity: venv
	mkdir -p $(HOME)/.ansible/test/cache
	for v in 24.2 25.0.1 25.1.1 25.3; do \
	  f=$(HOME)/.ansible/test/cache/get_pip_$$(echo $$v | tr . _).py; \
	  [ -f $$f ] || cp hack/ansible-test-get-pip.py $$f; done
	rm -rf build/sanity && mkdir -p build/sanity/ansible_collections/neurallog/platform
	git ls-files -z --cached --others --exclude-standard | grep -zv '^collections/' \
	  | xargs -0 cp --parents -t build/sanity/ansible_collections/neurallog/platform
	cd build/sanity/ansible_collections/neurallog/platform && git init -q && git add -A && \
	  $(CURDIR)/$(BIN)/ansible-test sanity --python 3.11 --local --color no

unit: venv
	$(BIN)/pytest tests/unit

cluster-test: venv
	kc=$$($(CLUSTER) up) && K8S_AUTH_KUBECONFIG=$$kc $(BIN)/pytest tests/cluster

molecule: venv binaries
	for s in $(MOLECULE_SCENARIOS); do $(BIN)/molecule test -s $$s || exit 1; done

test: deps venv binaries
	hack/run-tests.sh

# checkov on every rendered inventory and the example tenants, offline, in
# its own virtualenv (hack/security/checkov-venv.sh); docs/security.md.
security: venv
	$(BIN)/python hack/security/checkov.py $(SECURITY_ARGS)

# The collection tarball, into $(DIST) (hack/, build/, dist/, the virtualenv
# and test output stay out: galaxy.yml build_ignore, tests/unit/test_packaging.py).
DIST ?= dist
build: venv
	mkdir -p $(DIST) && $(BIN)/ansible-galaxy collection build --force --output-path $(DIST) .

# Benchmarks on the local test cluster (or the cluster K8S_AUTH_KUBECONFIG
# names): site.yml and the tenant reconcile against kubectl, paired runs,
# medians; tables printed and written to build/bench/*.md (docs/benchmarks.md).
# BENCH_ARGS goes to hack/bench/platform.py (e.g. --site-args "-t redis"),
# BENCH_TENANTS_ARGS to hack/bench/tenants.py (e.g. --sizes 1,10,100),
# BENCH_PROFILE_ARGS to hack/bench/profile.py.
bench: venv
	kc=$${K8S_AUTH_KUBECONFIG:-$$($(CLUSTER) up)} && \
	  K8S_AUTH_KUBECONFIG=$$kc $(BIN)/python hack/bench/platform.py $(BENCH_ARGS) && \
	  K8S_AUTH_KUBECONFIG=$$kc $(BIN)/python hack/bench/tenants.py $(BENCH_TENANTS_ARGS)

bench-tenants: venv
	kc=$${K8S_AUTH_KUBECONFIG:-$$($(CLUSTER) up)} && \
	  K8S_AUTH_KUBECONFIG=$$kc $(BIN)/python hack/bench/tenants.py $(BENCH_TENANTS_ARGS)

# Profile of a no-op site.yml: time per task (profile_tasks) and the plan's
# top 10 functions by cumulative time (cProfile); build/bench/profile.md.
bench-profile: venv
	kc=$${K8S_AUTH_KUBECONFIG:-$$($(CLUSTER) up)} && \
	  K8S_AUTH_KUBECONFIG=$$kc $(BIN)/python hack/bench/profile.py $(BENCH_PROFILE_ARGS)

# A fleet: site.yml on three local clusters of its own in parallel against
# the same three runs one after another (no-op and first converge, paired
# runs); build/bench/fleet.md. BENCH_FLEET_ARGS goes to hack/bench/fleet.py.
bench-fleet: venv binaries
	$(BIN)/python hack/bench/fleet.py $(BENCH_FLEET_ARGS)

# Air-gapped bundle for $(INVENTORY) (dist/neurallog-<version>-bundle.tar.gz).
bundle: venv
	$(BIN)/ansible-playbook playbooks/airgap_bundle.yml -i $(INVENTORY)

# The images that bundle holds, for $(INVENTORY).
images: venv
	$(BIN)/python hack/airgap/images.py -i $(INVENTORY)

# Real images of the data services and the services' stand-in, built on
# this machine from Debian packages under the names the inventories deploy
# (hack/images/build.sh; docs/testing.md#real-container-images).
images-real: venv
	hack/images/build.sh all

clean:
	rm -rf build dist tests/output molecule/*/artifacts
