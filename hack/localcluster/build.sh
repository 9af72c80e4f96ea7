#!/usr/bin/env bash
# Builds the local test cluster's binaries (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kwok) from the Go module
# proxy, once per pinned version, into a cache outside the tracked tree.
# A warm call only checks the stamps and returns.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cache.sh"
cache=$neurallog_cache
bin="$cache/bin"
work="$cache/build"
mkdir -p "$bin" "$work"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

log() { printf '[build] %s\n' "$*" >&2; }

# Several clusters (and CI stages) may call this at once: one build at a time.
exec 9>"$cache/.build.lock"
flock 9

stamp_ok() { [ -x "$bin/$1" ] && [ "$(cat "$bin/.$1.version" 2>/dev/null)" = "$2" ]; }
stamp() { printf '%s' "$2" >"$bin/.$1.version"; }

build_etcd() {
  stamp_ok etcd "$ETCD_VERSION" && return 0
  log "etcd $ETCD_VERSION"
  local dir="$work/etcd-$ETCD_VERSION"
  rm -rf "$dir" && mkdir -p "$dir"
  cp "$here/etcd/main.go" "$dir/"
  (
    cd "$dir"
    printf 'module neurallog.local/etcd\n\ngo 1.25\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >go.mod
    go mod tidy
    go build -trimpath -ldflags "-s -w" -o "$bin/etcd" .
  )
  stamp etcd "$ETCD_VERSION"
}

# build_kube [component...]: the control plane and kubectl by default; the
# kind node image (hack/kind) also asks for kubelet, kubeadm and kube-proxy.
build_kube() {
  local want="$KUBERNETES_VERSION"
  local components=("$@") todo=() c
  [ ${#components[@]} -gt 0 ] || components=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  for c in "${components[@]}"; do
    stamp_ok "$c" "$want" || todo+=("$c")
  done
  [ ${#todo[@]} -eq 0 ] && return 0
  log "kubernetes $want (${todo[*]})"
  local dir="$work/kube-$want" staging_version="v0${want#v1}"
  rm -rf "$dir" && mkdir -p "$dir"
  cp "$here/kube/tools.go" "$dir/"
  (
    cd "$dir"
    go mod download -json "k8s.io/kubernetes@$want" >/dev/null
    local upstream
    upstream=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$want.mod
    {
      printf 'module neurallog.local/kube\n\ngo 1.25.0\n\nrequire k8s.io/kubernetes %s\n\n' "$want"
      # Every staging module k8s.io/X => ./staging/src/k8s.io/X upstream is
      # published as k8s.io/X v0.<minor>.<patch>; the list comes from the
      # release's own go.mod so it cannot drift.
      awk '/=> \.\/staging\/src\//{print $1}' "$upstream" | sort -u |
        while read -r mod; do printf 'replace %s => %s %s\n' "$mod" "$mod" "$staging_version"; done
    } >go.mod
    go mod tidy
    local major minor pkg=k8s.io/component-base/version cpkg=k8s.io/client-go/pkg/version
    major=$(echo "$want" | cut -d. -f1 | tr -d v)
    minor=$(echo "$want" | cut -d. -f2)
    local date ldflags=""
    date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    for p in $pkg $cpkg; do
      ldflags+=" -X $p.gitVersion=$want -X $p.gitMajor=$major -X $p.gitMinor=$minor"
      ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=$date"
    done
    for c in "${todo[@]}"; do
      log "  go build $c"
      go build -trimpath -ldflags "-s -w $ldflags" -o "$bin/$c" "k8s.io/kubernetes/cmd/$c"
      stamp "$c" "$want"
    done
  )
}

build_kwok() {
  stamp_ok kwok "$KWOK_VERSION" && return 0
  log "kwok $KWOK_VERSION"
  GOBIN="$bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  # The kwok binary has no built-in stages: take the release's own "fast"
  # node and pod stages (kwokctl's defaults), with node leases.
  local src
  src=$(cd "$work" && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  {
    for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
             pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
      printf -- '---\n'; cat "$src/kustomize/stage/$f"
    done
  } >"$bin/kwok-stages.yaml"
  stamp kwok "$KWOK_VERSION"
}

case "${1:-all}" in
  etcd) build_etcd ;;
  kube) build_kube ;;
  kube-node) build_kube kubelet kubeadm kube-proxy ;;
  kwok) build_kwok ;;
  all) build_etcd; build_kwok; build_kube ;;
  *) echo "usage: $0 [all|etcd|kube|kube-node|kwok]" >&2; exit 2 ;;
esac
echo "$bin"
