#!/usr/bin/env bash
# Builds, fully offline, what the kind provider needs (hack/kind/cluster.sh):
#
#   kind                the kind binary (KIND_VERSION, Go module proxy)
#   go                  the node's Go components: containerd, ctr and the runc
#                       shim, crictl, CoreDNS, etcd, local-path-provisioner,
#                       pause, kube-router (the NetworkPolicy agent), and
#                       kubelet/kubeadm/kube-proxy/control plane
#                       (hack/localcluster/build.sh, same wrapper module)
#   rootfs              Debian roots from the apt mirror (debootstrap): a small
#                       one for images that need iptables, the node's base
#   images              the component images, saved as one archive per image
#   kube-router-image   prints the name of the NetworkPolicy agent's image
#   node                the node image neurallog.local/kind-node:<key>
#   all (default)       everything; prints the node image name
#
# Every artefact is cached under $NEURALLOG_CACHE_DIR/kind (default
# ~/.cache/neurallog/kind), keyed by the versions (and, for the node image,
# by the hash of everything that goes into it); a second call rebuilds
# nothing. One build at a time (flock). Each build's duration is appended to
# kind/build-times.tsv.
set -euo pipefail
shopt -s inherit_errexit
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../localcluster/versions.env
. "$root/hack/localcluster/versions.env"
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cache.sh"
cache=$neurallog_cache
kc="$cache/kind"
bin="$kc/bin"
mkdir -p "$bin" "$kc/work" "$kc/images" "$kc/rootfs"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
mirror=${NEURALLOG_DEBIAN_MIRROR:-}
registry_local=neurallog.local

log() { printf '[kind-build] %s\n' "$*" >&2; }
die() { printf '[kind-build] error: %s\n' "$*" >&2; exit 1; }

# One build of each stage at a time (several checkouts share the cache): a
# lock per stage, held until the script ends.
lock() { eval "exec $2>\"\$kc/.$1.lock\""; flock "$2"; }

stamp_ok() { [ -e "$bin/$1" ] && [ "$(cat "$bin/.$1.version" 2>/dev/null)" = "$2" ]; }
stamp() { printf '%s' "$2" >"$bin/.$1.version"; }
# timed NAME VERSION CMD...: runs CMD, records how long it took.
timed() {
  local _t_name=$1 _t_version=$2 _t_start; shift 2
  _t_start=$(date +%s)
  "$@"
  printf '%s\t%s\t%s\t%ss\n' "$(date -u +%FT%TZ)" "$_t_name" "$_t_version" "$(( $(date +%s) - _t_start ))" \
    >>"$kc/build-times.tsv"
  log "$_t_name $_t_version built in $(( $(date +%s) - _t_start ))s"
}

# go_install NAME VERSION MODULE@VERSION/PKG [LDFLAGS] [TAGS]
go_install() {
  local name=$1 version=$2 pkg=$3 ldflags=${4:-} tags=${5:-}
  stamp_ok "$name" "$version" && return 0
  log "go install $pkg"
  _go_install() {
    local gobin="$kc/work/gobin-$name"
    rm -rf "$gobin" && mkdir -p "$gobin"
    GOBIN="$gobin" go install -trimpath -tags "$tags" -ldflags "-s -w $ldflags" "$pkg"
    mv "$gobin"/* "$bin/$name" && rmdir "$gobin"
  }
  timed "$name" "$version" _go_install
  stamp "$name" "$version"
}

build_kind() {
  lock kind 5
  go_install kind "$KIND_VERSION" "sigs.k8s.io/kind@$KIND_VERSION"
  echo "$bin/kind"
}

# The images kubeadm asks for (registry.k8s.io/<name>:<tag> lines), from the
# pinned kubeadm itself, in a network namespace of its own: it cannot reach
# anything.
kubeadm_images() {
  unshare --net "$cache/bin/kubeadm" config images list --kubernetes-version "$KUBERNETES_VERSION" 2>/dev/null
}
image_tag() { kubeadm_images | sed -n "s#^registry.k8s.io/\\(.*/\\)\\{0,1\\}$1:##p"; }

build_go() {
  lock go 7
  "$root/hack/localcluster/build.sh" kube >/dev/null
  "$root/hack/localcluster/build.sh" kube-node >/dev/null
  build_kind >/dev/null
  local cv=$KIND_CONTAINERD_VERSION
  local ctags="no_aufs no_zfs no_btrfs no_devmapper"
  local cld="-X github.com/containerd/containerd/v2/version.Version=$cv"
  go_install containerd "$cv" "github.com/containerd/containerd/v2/cmd/containerd@$cv" "$cld" "$ctags"
  go_install ctr "$cv" "github.com/containerd/containerd/v2/cmd/ctr@$cv" "$cld" "$ctags"
  go_install containerd-shim-runc-v2 "$cv" "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$cv" "$cld" "$ctags"
  go_install crictl "$KIND_CRICTL_VERSION" "sigs.k8s.io/cri-tools/cmd/crictl@$KIND_CRICTL_VERSION" \
    "-X sigs.k8s.io/cri-tools/pkg/version.Version=${KIND_CRICTL_VERSION#v}"
  go_install local-path-provisioner "$KIND_LOCAL_PATH_PROVISIONER_VERSION" \
    "github.com/rancher/local-path-provisioner@$KIND_LOCAL_PATH_PROVISIONER_VERSION" \
    "-X main.VERSION=$KIND_LOCAL_PATH_PROVISIONER_VERSION"
  local coredns etcd
  coredns=$(image_tag coredns); etcd=$(image_tag etcd)
  [ -n "$coredns" ] && [ -n "$etcd" ] || die "kubeadm $KUBERNETES_VERSION did not name its CoreDNS and etcd images"
  build_coredns "$coredns"
  build_etcd "v${etcd%-*}"
  build_pause
  build_kube_router
}

# wrapper_build NAME STAMP PKG LDFLAGS SOURCES MODULE@VERSION...: builds
# PKG as $bin/NAME in a module of its own, neurallog.local/NAME, that holds
# the *.go files of the folder SOURCES (none: -) and requires each
# MODULE@VERSION given: the program's module first, then any dependency
# raised above the version the program asks for (MVS keeps the highest).
# Used where `go install MODULE/cmd/...@VERSION` cannot work or cannot raise
# a dependency: etcd's modules use relative replace directives, CoreDNS is
# built with fewer plugins, kube-router gets fixed dependencies.
wrapper_build() {
  local name=$1 stamp=$2 pkg=$3 ldflags=$4 src=$5; shift 5
  local requirements=("$@")
  stamp_ok "$name" "$stamp" && return 0
  _wrapper_build() {
    local dir="$kc/work/$name" req
    rm -rf "$dir" && mkdir -p "$dir"
    [ "$src" = - ] || cp "$src"/*.go "$dir/"
    (
      cd "$dir"
      {
        printf 'module neurallog.local/%s\n\ngo 1.25\n\nrequire (\n' "$name"
        for req in "${requirements[@]}"; do printf '\t%s %s\n' "${req%@*}" "${req##*@}"; done
        printf ')\n'
      } >go.mod
      go mod tidy
      go build -trimpath -ldflags "-s -w $ldflags" -o "$bin/$name" "$pkg"
    )
  }
  timed "$name" "$stamp" _wrapper_build
  stamp "$name" "$stamp"
}

# etcd at the version kubeadm expects, through the same wrapper as the local
# cluster's etcd.
build_etcd() {
  wrapper_build etcd "$1" . "" "$root/hack/localcluster/etcd" "go.etcd.io/etcd/server/v3@$1"
}

# CoreDNS at the version kubeadm names, with only the plugins the node's
# Corefile uses (hack/kind/coredns/main.go): no forward plugin at all.
build_coredns() {
  local v=$1
  wrapper_build coredns "$v-min-$(sha256sum "$here/coredns/main.go" | cut -c1-12)" . \
    "-X github.com/coredns/coredns/coremain.GitCommit=neurallog-min" "$here/coredns" "github.com/coredns/coredns@$v"
}

# kube-router (KIND_KUBE_ROUTER_VERSION), the NetworkPolicy agent of the
# offline node (iptables and ipset; hack/kind/kube-router/): its command
# package through a wrapper module that raises the dependencies with
# published security fixes to fixed versions (raise.txt, with the reasons).
build_kube_router() {
  local v=$KIND_KUBE_ROUTER_VERSION raises
  raises=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/kube-router/raise.txt" | awk '{print $1 "@" $2}')
  # shellcheck disable=SC2086
  wrapper_build kube-router "$v-$(cat "$here"/kube-router/* | sha256sum | cut -c1-12)" \
    github.com/cloudnativelabs/kube-router/v2/cmd/kube-router \
    "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$v" "$here/kube-router" \
    "github.com/cloudnativelabs/kube-router/v2@$v" $raises
}

build_pause() {
  local v
  v=$(sha256sum "$here/pause/main.go" | cut -c1-12)
  stamp_ok pause "$v" && return 0
  _build_pause() {
    local dir="$kc/work/pause"
    rm -rf "$dir" && mkdir -p "$dir"
    cp "$here/pause/main.go" "$dir/"
    (cd "$dir" && printf 'module neurallog.local/pause\n\ngo 1.25\n' >go.mod && go build -trimpath -ldflags "-s -w" -o "$bin/pause" .)
  }
  timed pause "$v" _build_pause
  stamp pause "$v"
}

# The Debian mirror apt uses on this machine (first deb822 URIs or
# sources.list line with a /debian path), unless NEURALLOG_DEBIAN_MIRROR says.
debian_mirror() {
  [ -n "$mirror" ] && { echo "$mirror"; return; }
  local m
  m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
    sed -n -e 's#^URIs:[[:space:]]*\(http[^[:space:]]*/debian\)/*$#\1#p' \
      -e 's#^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]*\)\{0,1\}\(http[^[:space:]]*/debian\)/*[[:space:]].*#\2#p' | head -1)
  [ -n "$m" ] || die "no Debian mirror found in /etc/apt/sources.list*; set NEURALLOG_DEBIAN_MIRROR"
  echo "$m"
}

kind_src() { (cd "$kc/work" && go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'); }

# The packages of kind's own base image (images/base/Dockerfile), plus what
# replaces the parts kind builds from source: Debian's runc and CNI plugins.
# Not kept: nfs-common and open-iscsi (network storage clients; they enable
# services of their own and nothing here mounts NFS or iSCSI).
node_packages() {
  sed -n '/clean-install \\$/,/&& find/p' "$(kind_src)/images/base/Dockerfile" | sed -n '2,/&& find/p' |
    grep -v '&& find' | tr -d '\\' | tr -s ' \n' '\n' | grep -v -e '^$' -e '^nfs-common$' -e '^open-iscsi$'
  printf '%s\n' runc containernetworking-plugins busybox-static
}
# The small root of the images that need iptables (kube-proxy), iptables and
# ipset (kube-router) or a shell (local-path-provisioner's helper).
min_packages() { printf '%s\n' iptables ipset conntrack busybox-static ca-certificates; }

# rootfs NAME PACKAGES...: a Debian root from the mirror, imported as the
# image neurallog.local/kind-rootfs-NAME:<key>; cached by suite, mirror and
# package list.
rootfs_image() {
  local name=$1; shift
  local key pkgs
  pkgs=$(printf '%s\n' "$@" | sort -u | tr '\n' ' ')
  key=$(printf '%s %s %s' "$KIND_DEBIAN_SUITE" "$(debian_mirror)" "$pkgs" | sha256sum | cut -c1-12)
  local image="$registry_local/kind-rootfs-$name:$KIND_DEBIAN_SUITE-$key"
  if ! docker image inspect "$image" >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "building the Debian root needs root (debootstrap)"
    _rootfs() {
      local dir="$kc/rootfs/$name-$key"
      rm -rf "$dir"
      local tarball="$kc/rootfs/debootstrap-$KIND_DEBIAN_SUITE.tgz"
      # debootstrap's download is cached once per suite.
      if [ ! -f "$tarball" ]; then
        rm -rf "$kc/rootfs/tarball-work"
        debootstrap --variant=minbase --make-tarball="$tarball.part" \
          "$KIND_DEBIAN_SUITE" "$kc/rootfs/tarball-work" "$(debian_mirror)" >&2
        mv "$tarball.part" "$tarball"
        rm -rf "$kc/rootfs/tarball-work"
      fi
      debootstrap --variant=minbase --unpack-tarball="$tarball" "$KIND_DEBIAN_SUITE" "$dir" "$(debian_mirror)" >&2
      printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"; chmod +x "$dir/usr/sbin/policy-rc.d"
      mount -t proc proc "$dir/proc"
      # shellcheck disable=SC2086
      chroot "$dir" sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $pkgs && apt-get clean" >&2 \
        || { umount "$dir/proc"; return 1; }
      umount "$dir/proc"
      rm -rf "$dir/usr/sbin/policy-rc.d" "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin
      tar -C "$dir" --numeric-owner -c . | docker import - "$image" >/dev/null
      rm -rf "$dir"
    }
    timed "rootfs-$name" "$KIND_DEBIAN_SUITE-$key" _rootfs
  fi
  echo "$image"
}

build_rootfs_min() {
  lock rootfs 6
  # shellcheck disable=SC2046
  rootfs_image min $(min_packages)
}
build_rootfs_node() {
  lock rootfs 6
  # shellcheck disable=SC2046
  rootfs_image node $(node_packages)
}

# scratch_image NAME:TAG ENTRYPOINT-JSON FILE=PATH...: an image holding only
# the given static binaries (and the PATH kubeadm's commands rely on).
scratch_image() {
  local image=$1 entrypoint=$2; shift 2
  docker image inspect "$image" >/dev/null 2>&1 && [ "$(docker image inspect -f '{{index .Config.Labels "neurallog.key"}}' "$image")" = "$key" ] && return 0
  local dir="$kc/work/img" spec
  rm -rf "$dir" && mkdir -p "$dir/tmp" "$dir/etc" && chmod 1777 "$dir/tmp"
  printf 'root:x:0:0:root:/:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$dir/etc/group"
  for spec in "$@"; do
    install -D -m 0755 "${spec%%=*}" "$dir/${spec#*=}"
  done
  tar -C "$dir" --numeric-owner --owner=0 --group=0 -c . | docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change "ENTRYPOINT $entrypoint" \
    --change "LABEL neurallog.key=$key" - "$image" >/dev/null
  rm -rf "$dir"
}

# rootfs_based_image NAME:TAG BASE ENTRYPOINT-JSON FILE=PATH...
rootfs_based_image() {
  local image=$1 base=$2 entrypoint=$3 spec id; shift 3
  docker image inspect "$image" >/dev/null 2>&1 && [ "$(docker image inspect -f '{{index .Config.Labels "neurallog.key"}}' "$image")" = "$key" ] && return 0
  id=$(docker create --network none "$base" /bin/true)
  for spec in "$@"; do docker cp "${spec%%=*}" "$id:${spec#*=}"; done
  docker commit --change "ENTRYPOINT $entrypoint" --change "LABEL neurallog.key=$key" "$id" "$image" >/dev/null
  docker rm "$id" >/dev/null
}

# The component images under the names kubeadm and the node's manifests use,
# one per line on stdout.
build_images() {
  build_go >/dev/null
  local min
  min=$(build_rootfs_min)
  lock images 4
  local kv=$KUBERNETES_VERSION b="$cache/bin" key
  # An image is rebuilt when its inputs change: the version stamps of the
  # binaries and this script.
  key=$(cat "$bin"/.*.version "$cache"/bin/.*.version "$0" | sha256sum | cut -c1-12)
  local line name
  _images() {
    for name in kube-apiserver kube-controller-manager kube-scheduler; do
      scratch_image "registry.k8s.io/$name:$kv" "[\"/usr/local/bin/$name\"]" "$b/$name=/usr/local/bin/$name"
    done
    rootfs_based_image "registry.k8s.io/kube-proxy:$kv" "$min" '["/usr/local/bin/kube-proxy"]' "$b/kube-proxy=/usr/local/bin/kube-proxy"
    rootfs_based_image "$(kube_router_image)" "$min" '["/usr/local/bin/kube-router"]' "$bin/kube-router=/usr/local/bin/kube-router"
    while read -r line; do
      case "$line" in
        */etcd:*) scratch_image "$line" '["/usr/local/bin/etcd"]' "$bin/etcd=/usr/local/bin/etcd" ;;
        */coredns:*) scratch_image "$line" '["/coredns"]' "$bin/coredns=/coredns" ;;
        */pause:*) scratch_image "$line" '["/pause"]' "$bin/pause=/pause" ;;
      esac
    done < <(kubeadm_images)
    # kind's containerd configuration names its own pause tag.
    local sandbox
    sandbox=$(sed -n 's/^ *sandbox_image = "\(.*\)"/\1/p' "$(kind_src)/images/base/files/etc/containerd/config.toml")
    scratch_image "$sandbox" '["/pause"]' "$bin/pause=/pause"
    scratch_image "$registry_local/local-path-provisioner:$KIND_LOCAL_PATH_PROVISIONER_VERSION" \
      '["/usr/local/bin/local-path-provisioner"]' "$bin/local-path-provisioner=/usr/local/bin/local-path-provisioner"
    docker tag "$min" "$registry_local/local-path-helper:${min##*:}"
  }
  # Built when one is missing or was built from other inputs.
  local img current=1
  for img in $(image_list); do
    case "$img" in
      */local-path-helper:*) docker image inspect "$img" >/dev/null 2>&1 || current=0 ;;
      *) [ "$(docker image inspect -f '{{index .Config.Labels "neurallog.key"}}' "$img" 2>/dev/null)" = "$key" ] || current=0 ;;
    esac
  done
  [ "$current" = 1 ] || timed images "$key" _images
  image_list
}

image_list() {
  local min sandbox
  min=$(build_rootfs_min)
  kubeadm_images
  sandbox=$(sed -n 's/^ *sandbox_image = "\(.*\)"/\1/p' "$(kind_src)/images/base/files/etc/containerd/config.toml")
  echo "$sandbox"
  echo "$registry_local/local-path-provisioner:$KIND_LOCAL_PATH_PROVISIONER_VERSION"
  echo "$registry_local/local-path-helper:${min##*:}"
  kube_router_image
}

# The NetworkPolicy agent's image (hack/kind/cluster.sh installs it).
kube_router_image() { echo "$registry_local/kube-router:$KIND_KUBE_ROUTER_VERSION"; }

# kind's storage manifest (local-path-provisioner) with the images built here.
storage_manifest() {
  local min
  min=$(build_rootfs_min)
  awk '/^const defaultStorageManifest = `/{on=1; sub(/^.*= `/, ""); } on && /^`$/{exit} on{print}' \
    "$(kind_src)/pkg/build/nodeimage/const_storage.go" |
    sed -e "s#\` + storageProvisionerImage + \`#$registry_local/local-path-provisioner:$KIND_LOCAL_PATH_PROVISIONER_VERSION#" \
        -e "s#\` + storageHelperImage + \`#$registry_local/local-path-helper:${min##*:}#"
}

# The node image: kind's base image rebuilt from Debian packages (its files,
# systemd units and containerd configuration from kind's module source), the
# Go components, the component images preloaded into containerd, and the
# egress guard run by the entry point. Assembled in a container with no
# network at all, committed as neurallog.local/kind-node:<version>-<key>.
build_node() {
  local images
  images=$(build_images)
  local base
  base=$(build_rootfs_node)
  lock node 3
  local key src
  src=$(kind_src)
  key=$( {
    echo "$base"; docker image inspect -f '{{.Id}}' $images
    cat "$bin"/.*.version "$cache"/bin/.*.version "$0" "$here"/node/*
  } | sha256sum | cut -c1-12)
  local image="$registry_local/kind-node:$KUBERNETES_VERSION-$key"
  if docker image inspect "$image" >/dev/null 2>&1; then echo "$image"; return 0; fi
  _node() (
    id=$(docker run -d --network none --security-opt seccomp=unconfined --entrypoint sleep "$base" infinity)
    # shellcheck disable=SC2064
    trap "docker rm -f -v $id >/dev/null 2>&1 || true" EXIT
    x() { docker exec "$id" "$@"; }
    local f
    tar -C "$src/images/base/files" --owner=0 --group=0 -c usr/local/bin kind etc | docker exec -i "$id" tar -C / -x
    x sh -c 'chmod 0755 /usr/local/bin/* /kind /kind/bin /kind/bin/*; chmod -R go-w /etc/systemd /etc/containerd /etc/default /etc/sysctl.d'
    x sh -c 'find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
      rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
        /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
        /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
      echo ReadKMsg=no >>/etc/systemd/journald.conf
      ln -sf /usr/lib/systemd/systemd /sbin/init
      systemctl enable kubelet.service containerd.service undo-mount-hacks.service
      systemctl mask systemd-binfmt.service
      mkdir -p /etc/kubernetes/manifests /opt/cni/bin /kind/manifests /etc/neurallog'
    for f in containerd ctr containerd-shim-runc-v2 crictl; do docker cp "$bin/$f" "$id:/usr/local/bin/$f"; done
    for f in kubeadm kubelet kubectl; do docker cp "$cache/bin/$f" "$id:/usr/bin/$f"; done
    x sh -c 'ctr oci spec | jq ".hooks.createContainer[.hooks.createContainer| length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" | jq "del(.process.rlimits)" >/etc/containerd/cri-base.json
      for p in host-local loopback ptp portmap; do cp /usr/lib/cni/$p /opt/cni/bin/; done'
    printf '%s' "$KUBERNETES_VERSION" | docker exec -i "$id" sh -c 'cat >/kind/version'
    storage_manifest | docker exec -i "$id" sh -c 'cat >/kind/manifests/default-storage.yaml'
    docker cp "$here/node/egress-guard" "$id:/usr/local/bin/neurallog-egress-guard"
    docker cp "$here/node/entrypoint" "$id:/usr/local/bin/neurallog-entrypoint"
    docker cp "$here/node/10-neurallog-ptp.conflist" "$id:/kind/manifests/10-neurallog-ptp.conflist"
    x chmod 0755 /usr/local/bin/neurallog-egress-guard /usr/local/bin/neurallog-entrypoint
    # Preload the images, as kind's own node build does (content only,
    # pinned, unpacked by the CRI when first used).
    x bash -c 'nohup containerd >/tmp/containerd.log 2>&1 &
      for i in $(seq 30); do [ -S /run/containerd/containerd.sock ] && break; sleep 1; done; ctr info >/dev/null'
    local img
    for img in $images; do
      docker save "$img" | docker exec -i "$id" ctr --namespace=k8s.io images import \
        --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack - >/dev/null
    done
    x ctr --namespace=k8s.io images list -q >&2
    x sh -c 'pkill containerd; sleep 1; rm -rf /tmp/* /var/log/*.log'
    docker commit \
      --change 'ENTRYPOINT ["/usr/local/bin/neurallog-entrypoint", "/usr/local/bin/entrypoint", "/sbin/init"]' \
      --change 'CMD []' --change 'ENV container=docker' \
      --change "LABEL neurallog.kind-offline=$key" "$id" "$image" >/dev/null
  )
  timed node-image "$KUBERNETES_VERSION-$key" _node
  # Earlier node images (1.2 GB each) go, unless a node still runs on one.
  local other
  for other in $(docker images --format '{{.Repository}}:{{.Tag}}' "$registry_local/kind-node"); do
    [ "$other" = "$image" ] || docker rmi "$other" >/dev/null 2>&1 || true
  done
  echo "$image"
}

main() {
  case "${1:-all}" in
    kind) build_kind ;;
    go) build_go ;;
    rootfs) build_rootfs_min; build_rootfs_node ;;
    images) build_images ;;
    kube-router-image) kube_router_image ;;
    node | all) build_node ;;
    *) echo "usage: $0 [all|kind|go|rootfs|images|node|kube-router-image]" >&2; exit 2 ;;
  esac
}

# Parsed whole before it runs: editing this file during a build is safe.
main "$@"; exit $?
