#!/usr/bin/env bash
# The whole test suite, as `make test` runs it: lint, sanity, pytest (unit,
# real servers, the local cluster), every Molecule scenario on the local
# cluster, then the real-container stages: the Docker engine behind its
# egress guard, the platform's images, an offline kind cluster and its guard
# tests, and the Molecule scenario `kind`. Each stage is timed; the first
# failing stage stops the run with a non-zero exit.
# The real-container stages need root (a Docker engine, or Debian's docker.io
# to install); KIND_STAGES=0 leaves them out. Cold, on a new machine, the
# whole suite took 52 min (docs/testing.md), warm about 30.
set -euo pipefail
cd "$(dirname "$0")/.."
KIND_STAGES=${KIND_STAGES:-1}
case $KIND_STAGES in
  0|1) ;;
  *) echo "run-tests.sh: KIND_STAGES must be 1 (default: the real-container stages too) or 0 (leave them out), not '$KIND_STAGES'" >&2
     exit 2 ;;
esac
if [ "$KIND_STAGES" = 1 ] && [ "$(id -u)" != 0 ]; then
  echo "run-tests.sh: the real-container stages (Docker engine, offline kind cluster) need root;" \
       "run make test as root, or KIND_STAGES=0 make test to leave them out" >&2
  exit 2
fi
VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"
# ansible-test, molecule and pytest share one local cluster binary cache.
scenarios=${MOLECULE_SCENARIOS:-default tenants safety airgap}
summary=()

stage() {
  local name=$1; shift
  local start=$SECONDS
  printf '\n===== %s =====\n' "$name"
  if "$@"; then
    summary+=("PASS  $name ($((SECONDS - start))s)")
  else
    local rc=$?
    summary+=("FAIL  $name ($((SECONDS - start))s)")
    printf '\n===== summary =====\n'; printf '%s\n' "${summary[@]}"
    if [ -d "molecule/${name#molecule }/artifacts" ]; then
      echo "diagnostics: molecule/${name#molecule }/artifacts"
    fi
    exit "$rc"
  fi
}

pytest_all() {
  local kubeconfig
  kubeconfig=$(NEURALLOG_CLUSTER_NAME=${NEURALLOG_CLUSTER_PREFIX:-}pytest python hack/localcluster/cluster.py up)
  local rc=0
  K8S_AUTH_KUBECONFIG=$kubeconfig NEURALLOG_CLUSTER_NAME=${NEURALLOG_CLUSTER_PREFIX:-}pytest \
    pytest -p no:cacheprovider tests/unit tests/servers tests/cluster || rc=$?
  NEURALLOG_CLUSTER_NAME=${NEURALLOG_CLUSTER_PREFIX:-}pytest python hack/localcluster/cluster.py down || true
  return "$rc"
}

# The kind stages: one offline cluster for the guard tests (kept between
# `kind up` and `kind down`), then the scenario `kind` on a cluster of its
# own that Molecule creates and deletes. NEURALLOG_KIND_OFFLINE is set only
# here, so the other stages keep the local (kwok) provider.
kind_name=${NEURALLOG_CLUSTER_PREFIX:-}kind
kind_cluster() {
  NEURALLOG_KIND_OFFLINE=1 NEURALLOG_CLUSTER_NAME=$kind_name hack/kind/cluster.sh "$@" >/dev/null
}
kind_tests() {
  NEURALLOG_KIND_OFFLINE=1 NEURALLOG_KIND_CLUSTER=$kind_name NEURALLOG_KIND_KEEP=1 \
    pytest -p no:cacheprovider tests/kind
}
kind_scenario() {
  NEURALLOG_KIND_OFFLINE=1 NEURALLOG_CLUSTER_PROVIDER=kind molecule test -s kind
}
kind_cleanup() {
  if [ "$KIND_STAGES" = 1 ] && [ -n "${kind_started:-}" ]; then
    NEURALLOG_KIND_OFFLINE=1 NEURALLOG_CLUSTER_NAME=$kind_name hack/kind/cluster.sh down >/dev/null 2>&1 || true
  fi
}
trap kind_cleanup EXIT

# The builds of the kind stages that mostly download and unpack (debootstrap,
# apt, docker build of the images, the node's Debian root) start in the
# background now, behind the engine's guard, and overlap with lint, sanity
# and pytest; the Go builds (CPU) stay in their own stage. Their stages
# below wait for them and then find everything cached (each build holds its
# own lock); a failure shows there.
prebuild_pid=""
if [ "$KIND_STAGES" = 1 ] && [ "$(id -u)" = 0 ]; then
  mkdir -p build
  (hack/engine.sh && hack/images/build.sh all && hack/kind/build.sh rootfs) >build/kind-prebuild.log 2>&1 </dev/null &
  prebuild_pid=$!
fi
images_real() {
  if [ -n "$prebuild_pid" ]; then
    wait "$prebuild_pid" || echo "background build failed (build/kind-prebuild.log); building again here"
  fi
  hack/images/build.sh all
}

stage "binaries" hack/localcluster/build.sh all
stage "yamllint" yamllint -s .
stage "ansible-lint" ansible-lint --profile production
stage "sanity" make --no-print-directory sanity
stage "pytest" pytest_all
for s in $scenarios; do
  stage "molecule $s" molecule test -s "$s"
done
if [ "$KIND_STAGES" = 1 ]; then
  stage "engine" hack/engine.sh
  stage "images-real" images_real
  kind_started=1
  stage "kind build" hack/kind/build.sh all
  stage "kind up" kind_cluster up
  stage "tests/kind" kind_tests
  stage "kind down" kind_cluster down
  stage "molecule kind" kind_scenario
fi

printf '\n===== summary =====\n'; printf '%s\n' "${summary[@]}"
echo "all stages passed in ${SECONDS}s"
