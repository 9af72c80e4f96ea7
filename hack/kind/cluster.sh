#!/usr/bin/env bash
# The kind provider of the local test cluster, behind the same commands as
# hack/localcluster/cluster.py (which calls it for NEURALLOG_CLUSTER_PROVIDER
# =kind):
#
#   cluster.sh up          create (or reuse) the cluster; prints the kubeconfig path
#   cluster.sh down        delete it
#   cluster.sh kubeconfig  print the kubeconfig path
#   cluster.sh status      nodes and pods; exit 1 when the cluster does not exist
#   cluster.sh env         shell exports (K8S_AUTH_KUBECONFIG, KUBECONFIG)
#   cluster.sh load [REF...]  load images from the engine into the nodes (no
#                          registry): by default every image the inventory
#                          deploys (hack/images/refs.py, NEURALLOG_IMAGES_INVENTORY)
#                          that the engine has; one already in the nodes under
#                          the same ID is not sent again
#
# NEURALLOG_CLUSTER_NAME names the cluster (default neurallog); its state
# (kubeconfig, kind config) is in <cache>/clusters/<name>, the same place as
# the local provider's. ~/.kube/config is never written.
#
# Node image: kind's stock image (KIND_NODE_IMAGE in versions.env, pulled by
# the engine), unless NEURALLOG_KIND_OFFLINE=1: then the node image and every
# image in it are built on this machine (hack/kind/build.sh) and the cluster
# is kept from reaching anything outside the machine:
#   - host guard (hack/engine.sh) before any container starts;
#   - node guard loaded by the node's entry point before systemd
#     (hack/kind/node/egress-guard), so before containerd, kubelet or a pod;
#   - CoreDNS's Corefile replaced (no `forward`) while no CoreDNS pod can
#     start: the offline node has no CNI configuration yet, so it is NotReady
#     and only host-network pods run; the CNI configuration (ptp/host-local,
#     kindnetd is not available offline) is written after the Corefile.
# and NetworkPolicies are enforced: kube-router's policy controller
# (hack/kind/network-policy.yaml, image built by build.sh) is installed and
# Ready before the CNI configuration is written, so before the first pod
# that is not on the host network. NEURALLOG_KIND_NETWORK_POLICY=0 leaves it
# out (policies then are stored, not enforced).
# One node (control plane, untainted) in offline mode; NEURALLOG_CLUSTER_NODES
# workers (default 2) with the stock image.
# Host adaptations, applied only when the host needs them: the docker shim
# when `docker run --privileged` fails, failCgroupV1: false for the kubelet on
# a cgroup v1 host; the node image's entry point keeps OOM scores when it has
# no CAP_SYS_RESOURCE.
set -euo pipefail
shopt -s inherit_errexit
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../localcluster/versions.env
. "$root/hack/localcluster/versions.env"
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cache.sh"
cache=$neurallog_cache
name=${NEURALLOG_CLUSTER_NAME:-neurallog}
state="$cache/clusters/$name"
kubeconfig="$state/kubeconfig"
# kind edits the kubeconfig KUBECONFIG names (create and delete): this one.
export KUBECONFIG=$kubeconfig
offline=${NEURALLOG_KIND_OFFLINE:-0}
network_policy=${NEURALLOG_KIND_NETWORK_POLICY:-1}
workers=${NEURALLOG_CLUSTER_NODES:-2}
network=${NEURALLOG_KIND_NETWORK:-neurallog-kind}
pod_subnet=10.244.0.0/16
service_subnet=10.96.0.0/16
field_manager=neurallog-kind

log() { printf '[kind] %s\n' "$*" >&2; }
die() { printf '[kind] error: %s\n' "$*" >&2; exit 1; }

case "$offline" in 0 | 1) ;; *) die "NEURALLOG_KIND_OFFLINE=$offline is not allowed: use 1 (build the node image here) or 0 (kind's stock image)" ;; esac
case "$network_policy" in 0 | 1) ;; *) die "NEURALLOG_KIND_NETWORK_POLICY=$network_policy is not allowed: use 1 (enforce NetworkPolicies on the offline node, the default) or 0 (store them only)" ;; esac
case "$workers" in '' | *[!0-9]*) die "NEURALLOG_CLUSTER_NODES=$workers is not allowed: use a number of workers (0 or more)" ;; esac

kind_bin() {
  if [ "$offline" = 0 ] && type -P kind >/dev/null; then type -P kind; return; fi
  "$here/build.sh" kind
}
# kind KIND-ARGS...: kind, through the docker shim where `up` found that
# this host cannot run --privileged containers (recorded in the state).
kind() {
  local path=$PATH real bin
  real=$(type -P docker)
  bin=$(kind_bin)
  [ -f "$state/docker-shim" ] && path="$state/shim:$PATH"
  if [ "$offline" = 1 ]; then
    PATH=$path NEURALLOG_REAL_DOCKER=$real KIND_EXPERIMENTAL_DOCKER_NETWORK=$network "$bin" "$@"
  else
    PATH=$path NEURALLOG_REAL_DOCKER=$real "$bin" "$@"
  fi
}
kubectl() { "$cache/bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
exists() { kind get clusters 2>/dev/null | grep -qx -- "$name"; }
node() { echo "$name-control-plane"; }

# Can this host give a container --privileged? (No network, nothing kept.)
privileged_ok() { docker run --rm --privileged --network none --entrypoint /bin/true "$1" >/dev/null 2>&1; }
cgroup_v1() { [ ! -f /sys/fs/cgroup/cgroup.controllers ]; }

# kubeadm's Corefile without its `forward . /etc/resolv.conf`: a name outside
# the cluster reaches the end of the plugin chain and is answered SERVFAIL at
# once, instead of going to the machine's resolver.
corefile() {
  cat <<'COREFILE'
.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    cache 30
    loop
    reload
    loadbalance
}
COREFILE
}

write_config() {
  local config="$state/kind.yaml" image=$1
  {
    echo "kind: Cluster"
    echo "apiVersion: kind.x-k8s.io/v1alpha4"
    echo "networking:"
    echo "  apiServerAddress: 127.0.0.1"
    echo "  podSubnet: $pod_subnet"
    echo "  serviceSubnet: $service_subnet"
    if [ "$offline" = 1 ]; then
      echo "  ipFamily: ipv4"
      echo "  disableDefaultCNI: true"
    fi
    echo "nodes:"
    echo "- role: control-plane"
    if [ "$offline" = 1 ]; then
      echo "  extraMounts:"
      echo "  - hostPath: $state/egress.env"
      echo "    containerPath: /etc/neurallog/egress.env"
      echo "    readOnly: true"
    else
      for _ in $(seq "$workers"); do echo "- role: worker"; done
    fi
    if cgroup_v1; then
      echo "kubeadmConfigPatches:"
      echo "- |"
      echo "  kind: KubeletConfiguration"
      echo "  failCgroupV1: false"
    fi
  } >"$config"
  echo "$config"
}

up_offline() {
  local image
  "$root/hack/engine.sh"
  image=$("$here/build.sh" node)
  log "node image $image"
  docker network inspect "$network" >/dev/null 2>&1 ||
    docker network create --driver bridge --opt com.docker.network.bridge.enable_ip_masquerade=true "$network" >/dev/null
  printf 'POD_SUBNET=%s\nSERVICE_SUBNET=%s\n' "$pod_subnet" "$service_subnet" >"$state/egress.env"
  local config
  config=$(write_config "$image")
  if ! privileged_ok "$image"; then
    log "docker run --privileged fails on this host: nodes run with the capabilities it can give (hack/kind/docker-shim)"
    mkdir -p "$state/shim"
    ln -sf "$here/docker-shim" "$state/shim/docker"
    touch "$state/docker-shim"
  fi
  cgroup_v1 && log "cgroup v1 host: kubelet runs with failCgroupV1: false"
  local start=$SECONDS
  kind create cluster --name "$name" --image "$image" --config "$config" --kubeconfig "$kubeconfig" >&2 ||
    die "kind create failed"
  log "kind create: $((SECONDS - start))s"

  # CoreDNS: its pods exist but cannot be scheduled (node NotReady, no CNI
  # configuration yet). Replace the Corefile first, then check nothing ran.
  local cm
  cm=$(corefile | sed 's/^/    /')
  printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: coredns\n  namespace: kube-system\ndata:\n  Corefile: |\n%s\n' "$cm" |
    kubectl apply --server-side --force-conflicts --field-manager="$field_manager" -f - >/dev/null
  if kubectl get configmap coredns -n kube-system -o jsonpath='{.data.Corefile}' | grep -qw forward; then
    die "the CoreDNS Corefile still has a forward"
  fi
  local started
  started=$(kubectl get pods -A --no-headers \
    -o custom-columns=NS:.metadata.namespace,NAME:.metadata.name,HOST:.spec.hostNetwork,PHASE:.status.phase |
    awk '$3 != "true" && $4 != "Pending" {print $1 "/" $2 " " $4}')
  [ -z "$started" ] || die "pods started before the CNI configuration was written: $started"
  log "CoreDNS Corefile replaced (no forward) while no pod network existed"
  if [ "$network_policy" = 1 ]; then network_policy_agent; fi

  # Pod network: ptp + host-local over the node's pod range.
  # (kube-controller-manager gives the node its range shortly after start.)
  local cidr="" _
  for _ in $(seq 120); do
    cidr=$(kubectl get node "$(node)" -o jsonpath='{.spec.podCIDR}')
    [ -n "$cidr" ] && break
    sleep 1
  done
  [ -n "$cidr" ] || die "node $(node) got no pod range within 120 s"
  sed "s#POD_SUBNET_OF_NODE#$cidr#" "$here/node/10-neurallog-ptp.conflist" |
    docker exec -i "$(node)" sh -c 'cat >/etc/cni/net.d/10-neurallog-ptp.conflist'
  # One node: workloads run on the control plane.
  kubectl taint node "$(node)" node-role.kubernetes.io/control-plane:NoSchedule- >/dev/null 2>&1 || true
  kubectl wait --for=condition=Ready "node/$(node)" --timeout=180s >/dev/null
  kubectl -n kube-system rollout status deployment/coredns --timeout=180s >/dev/null
  kubectl -n local-path-storage rollout status deployment/local-path-provisioner --timeout=180s >/dev/null
  log "node Ready, CoreDNS and local-path-provisioner running: $((SECONDS - start))s"
}

# The NetworkPolicy agent (kube-router's firewall), Ready before the pod
# network exists: it runs on the host network, talks to the API server on
# the node's loopback, and has written its chains before any pod could be
# sent traffic. Its rules sit in iptables' filter chains (priority 0),
# behind the node's egress guard (priority filter - 10).
network_policy_agent() {
  local image
  image=$("$here/build.sh" kube-router-image)
  sed -e "s#KUBE_ROUTER_IMAGE#$image#" -e "s#SERVICE_SUBNET#$service_subnet#" "$here/network-policy.yaml" |
    kubectl apply --server-side --force-conflicts --field-manager="$field_manager" -f - >/dev/null
  kubectl -n kube-system rollout status daemonset/neurallog-network-policy --timeout=180s >/dev/null ||
    die "the NetworkPolicy agent (kube-system/neurallog-network-policy) did not become Ready: $(kubectl -n kube-system logs daemonset/neurallog-network-policy --tail=20 2>&1)"
  log "NetworkPolicy agent $image Ready (kube-router firewall)"
}

up_stock() {
  local config
  config=$(write_config "$KIND_NODE_IMAGE")
  kind create cluster --name "$name" --image "$KIND_NODE_IMAGE" --config "$config" \
    --kubeconfig "$kubeconfig" --wait 180s >&2
}

cmd_up() {
  mkdir -p "$state"
  echo kind >"$state/provider"
  if exists; then
    kind export kubeconfig --name "$name" --kubeconfig "$kubeconfig" >&2
    log "kind cluster '$name' already running"
  elif [ "$offline" = 1 ]; then
    up_offline
  else
    up_stock
  fi
  echo "$kubeconfig"
}

cmd_down() {
  if exists; then kind delete cluster --name "$name" >&2; fi
  rm -rf "$state"
}

cmd_status() {
  if ! exists; then
    echo "cluster '$name': not created (provider kind)"
    return 1
  fi
  echo "cluster '$name': running (provider kind)"
  echo "  kubeconfig: $kubeconfig"
  [ -x "$cache/bin/kubectl" ] && kubectl get nodes || true
}

# load [REF...]: `kind load docker-image` of the references that the engine
# has. kind itself compares each image's ID with the one in every node's
# containerd and sends only what is missing or different, so a second load
# of unchanged images transfers nothing.
cmd_load() {
  exists || die "kind cluster '$name' does not exist: run up first"
  local refs=("$@") ref missing=() present=() python=${PYTHON:-}
  if [ ${#refs[@]} = 0 ]; then
    [ -n "$python" ] || python=$( [ -x "$root/.venv/bin/python" ] && echo "$root/.venv/bin/python" || echo python3)
    mapfile -t refs < <("$python" "$root/hack/images/refs.py" "${NEURALLOG_IMAGES_INVENTORY:-$root/inventories/local}" | awk '{print $2}' | sort -u)
  fi
  for ref in "${refs[@]}"; do
    if docker image inspect "$ref" >/dev/null 2>&1; then present+=("$ref"); else missing+=("$ref"); fi
  done
  [ ${#missing[@]} = 0 ] || log "not in the engine, not loaded: ${missing[*]}"
  [ ${#present[@]} -gt 0 ] || die "none of the images is in the engine (make images-real builds them)"
  local start=$SECONDS out
  out=$(kind load docker-image --name "$name" "${present[@]}" 2>&1) || { printf '%s\n' "$out" >&2; die "kind load failed"; }
  local sent
  sent=$(printf '%s\n' "$out" | grep -c '^Image: .* not yet present' || true)
  log "images: ${#present[@]} checked, $sent sent to the node(s) in $((SECONDS - start))s"
}

case "${1:-}" in
  up) cmd_up ;;
  load) shift; cmd_load "$@" ;;
  down) cmd_down ;;
  kubeconfig) echo "$kubeconfig"; [ -f "$kubeconfig" ] ;;
  status) cmd_status ;;
  env) printf 'export K8S_AUTH_KUBECONFIG=%s\nexport KUBECONFIG=%s\n' "$kubeconfig" "$kubeconfig" ;;
  *) echo "usage: $0 up|down|kubeconfig|status|env|load [REF...]" >&2; exit 2 ;;
esac
