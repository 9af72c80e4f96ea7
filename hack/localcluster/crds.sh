#!/usr/bin/env bash
# Writes the CustomResourceDefinitions of the optional APIs the collection
# adapts to (Prometheus Operator, Gateway API, VPA) into one YAML stream and
# prints its path; `crds.sh openshift` does the same for OpenShift's Route
# and SecurityContextConstraints (the two API groups the preflight takes for
# OpenShift), `crds.sh prometheus` for the Prometheus Operator's kinds the
# monitoring role creates or reads (ServiceMonitor, PodMonitor,
# PrometheusRule, Prometheus), `crds.sh gitops` for Argo CD's and Flux's CRDs
# (the objects render mode writes with neurallog_gitops), `crds.sh
# external-secrets` for the External Secrets Operator's ExternalSecret,
# SecretStore and ClusterSecretStore (neurallog_secrets_backend=external-secrets).
# The CRDs come from the projects' own Go modules, at the
# versions pinned in versions.env, downloaded once into the Go module cache.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cache.sh"
cache=$neurallog_cache
export GOFLAGS=-mod=mod GOTOOLCHAIN=local

module_dir() {
  local json
  mkdir -p "$cache/crds"
  json=$(cd "$cache/crds" && go mod download -json "$1") || {
    echo "crds.sh: go mod download $1 failed: $(sed -n 's/.*"Error": "\(.*\)".*/\1/p' <<<"$json")" >&2
    return 1
  }
  sed -n 's/.*"Dir": "\(.*\)".*/\1/p' <<<"$json"
}

# Every module named in versions.env was downloaded (go mod download -json says why not).
require() {
  local dir
  for dir in "$@"; do
    [ -n "$dir" ] || { echo "crds.sh: a module pinned in versions.env was not downloaded (go mod download -json says why)" >&2; exit 1; }
  done
}

# Each kind of stream: its file name (keyed by the versions) and how it is
# written; written once, atomically, by the common part below.
case "${1:-optional}" in
  optional)
    out="$cache/crds/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION-gateway-api-$GATEWAY_API_VERSION-vpa-$VPA_VERSION.yaml"
    stream() {
      local prom gateway vpa f
      prom=$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
      gateway=$(module_dir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")
      vpa=$(module_dir "k8s.io/autoscaler/vertical-pod-autoscaler@$VPA_VERSION")
      require "$prom" "$gateway" "$vpa"
      # The kinds the collection creates (and PodMonitor, which a Prometheus
      # resource selects alongside them).
      for f in servicemonitors podmonitors prometheusrules; do
        printf -- '---\n'; cat "$prom/example/prometheus-operator-crd/monitoring.coreos.com_$f.yaml"
      done
      # The standard channel's CRDs (its ValidatingAdmissionPolicy is left out).
      for f in "$gateway"/config/crd/standard/gateway.networking.k8s.io_*.yaml; do
        case "$f" in *_vap_*) continue ;; esac
        printf -- '---\n'; cat "$f"
      done
      printf -- '---\n'; cat "$vpa/deploy/vpa-v1-crd-gen.yaml"
    } ;;
  openshift)
    out="$cache/crds/openshift-api-$OPENSHIFT_API_VERSION.yaml"
    stream() {
      local api
      api=$(module_dir "github.com/openshift/api@$OPENSHIFT_API_VERSION")
      require "$api"
      # the Default feature set's CRDs, as OpenShift's own manifests hold them
      printf -- '---\n'; cat "$api/route/v1/zz_generated.crd-manifests/routes.crd.yaml"
      printf -- '---\n'; cat "$api/security/v1/zz_generated.crd-manifests/0000_03_config-operator_01_securitycontextconstraints.crd.yaml"
    } ;;
  prometheus)
    out="$cache/crds/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION-with-prometheus.yaml"
    stream() {
      local prom f
      prom=$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
      require "$prom"
      for f in servicemonitors podmonitors prometheusrules prometheuses; do
        printf -- '---\n'; cat "$prom/example/prometheus-operator-crd/monitoring.coreos.com_$f.yaml"
      done
    } ;;
  gitops)
    out="$cache/crds/argocd-$ARGOCD_VERSION-kustomize-controller-$FLUX_KUSTOMIZE_CONTROLLER_VERSION-source-controller-$FLUX_SOURCE_CONTROLLER_VERSION.yaml"
    stream() {
      local argocd kustomize source f
      argocd=$(module_dir "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION")
      kustomize=$(module_dir "github.com/fluxcd/kustomize-controller@$FLUX_KUSTOMIZE_CONTROLLER_VERSION")
      source=$(module_dir "github.com/fluxcd/source-controller@$FLUX_SOURCE_CONTROLLER_VERSION")
      require "$argocd" "$kustomize" "$source"
      for f in application-crd applicationset-crd appproject-crd; do
        printf -- '---\n'; cat "$argocd/manifests/crds/$f.yaml"
      done
      printf -- '---\n'; cat "$kustomize/config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml"
      printf -- '---\n'; cat "$source/config/crd/bases/source.toolkit.fluxcd.io_gitrepositories.yaml"
    } ;;
  external-secrets)
    out="$cache/crds/external-secrets-$EXTERNAL_SECRETS_VERSION.yaml"
    stream() {
      local eso f
      eso=$(module_dir "github.com/external-secrets/external-secrets@$EXTERNAL_SECRETS_VERSION")
      require "$eso"
      # the kinds the collection creates (neurallog_secrets_backend=external-secrets)
      for f in externalsecrets secretstores clustersecretstores; do
        printf -- '---\n'; cat "$eso/config/crds/bases/external-secrets.io_$f.yaml"
      done
    } ;;
  *) echo "usage: crds.sh [optional|openshift|prometheus|gitops|external-secrets]" >&2; exit 2 ;;
esac

if [ ! -s "$out" ]; then
  mkdir -p "$cache/crds"
  tmp=$(mktemp "$out.XXXXXX")
  trap 'rm -f "$tmp"' EXIT
  stream >"$tmp"
  chmod 0644 "$tmp" && mv "$tmp" "$out"
fi
echo "$out"
