#!/usr/bin/env bash
# The whole test suite, as `make test` runs it: lint, sanity, pytest (unit,
# real servers, the local cluster) and every Molecule scenario. Each stage
# is timed; the first failing stage stops the run with a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/.."
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

stage "binaries" hack/localcluster/build.sh all
stage "yamllint" yamllint -s .
stage "ansible-lint" ansible-lint --profile production
stage "sanity" make --no-print-directory sanity
stage "pytest" pytest_all
for s in $scenarios; do
  stage "molecule $s" molecule test -s "$s"
done

printf '\n===== summary =====\n'; printf '%s\n' "${summary[@]}"
echo "all stages passed in ${SECONDS}s"
