#!/usr/bin/env bash
# Builds the platform's container images on this machine, offline apart from
# the Debian mirror (and Maven Central / the Go proxy through their clients):
#
#   hack/images/build.sh [all|base|redis|postgres|elasticsearch|standin|clean]...
#
# - base: `debootstrap --variant=minbase bookworm` from the machine's Debian
#   mirror, `docker import`ed as neurallog-build/base:<key>;
# - every other image: the Debian packages it needs are downloaded on the host
#   (apt inside the base root file system, so dependencies resolve exactly as
#   in the image), then `DOCKER_BUILDKIT=0 docker build --network none` on the
#   base installs them from the build context: no build step has a network.
#   Tags: the references the inventory deploys (hack/images/refs.py;
#   NEURALLOG_IMAGES_INVENTORY, default inventories/local) — the stand-in
#   under each of the eight services' references.
#
# Each image is keyed by its inputs (build files, package versions, the base's
# key); an image whose key label matches is not rebuilt, so a second call
# rebuilds nothing. One build at a time (flock). Caches live under
# ${NEURALLOG_CACHE_DIR:-~/.cache/neurallog}/images. Prints each image's size
# and build time. docs/testing.md#real-container-images.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cache.sh"
cache="$neurallog_cache/images"
suite=bookworm
mkdir -p "$cache"

log() { echo "build.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# The Debian mirror and security mirror the machine's apt uses (deb822 or
# one-line format), unless NEURALLOG_DEBIAN_MIRROR / _SECURITY_MIRROR say.
apt_uri() {
  local pattern=$1 files=() file
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] && files+=("$file")
  done
  [ ${#files[@]} -gt 0 ] || return 0
  cat "${files[@]}" | sed -n -E 's#^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)([a-z]+://[^[:space:]]+).*#\3#p' \
    | { grep -E "$pattern" || true; } | head -n1
}
mirror=${NEURALLOG_DEBIAN_MIRROR:-$(apt_uri '/debian/?$')}
security_mirror=${NEURALLOG_DEBIAN_SECURITY_MIRROR:-$(apt_uri '/debian-security/?$')}
[ -n "$mirror" ] || die "no Debian mirror in /etc/apt/sources.list*: set NEURALLOG_DEBIAN_MIRROR"

sha() { sha256sum | cut -c1-16; }

base_key=$(printf '%s\n' "$suite" minbase "$mirror" "$(debootstrap --version 2>/dev/null || true)" | sha)
base_image="neurallog-build/base:$suite-$base_key"
base_dir="$cache/base-$base_key"

build_base() {
  if docker image inspect "$base_image" >/dev/null 2>&1; then
    [ "${1:-}" != report ] || report "$base_image" cached
    return 0
  fi
  command -v debootstrap >/dev/null || {
    apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends debootstrap >&2; }
  local start=$SECONDS
  if [ ! -s "$base_dir/rootfs.tar" ]; then
    rm -rf "$base_dir.tmp" && mkdir -p "$base_dir.tmp"
    log "debootstrap --variant=minbase $suite $mirror"
    debootstrap --variant=minbase "$suite" "$base_dir.tmp/rootfs" "$mirror" >"$base_dir.tmp/debootstrap.log" 2>&1 \
      || die "debootstrap failed, see $base_dir.tmp/debootstrap.log"
    rm -rf "$base_dir.tmp/rootfs/var/cache/apt/archives/"*.deb "$base_dir.tmp/rootfs/var/lib/apt/lists/"*
    tar -C "$base_dir.tmp/rootfs" --numeric-owner -cf "$base_dir.tmp/rootfs.tar" .
    rm -rf "$base_dir" && mv "$base_dir.tmp" "$base_dir"
  fi
  docker import --change 'CMD ["/bin/bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$base_dir/rootfs.tar" "$base_image" >/dev/null
  report "$base_image" "$((SECONDS - start)) s"
}

report() {
  local size
  size=$(docker image inspect --format '{{.Size}}' "$1")
  printf '%-60s %6s MB  %s\n' "$1" $((size / 1000000)) "$2"
}

# Debian packages of each image (dependencies resolved by apt in the base).
declare -A packages=(
  [redis]="redis-server"
  [postgres]="postgresql-15 libnss-wrapper"
  [elasticsearch]="openjdk-17-jre-headless tini curl ca-certificates"
  [standin]="python3 python3-psycopg python3-redis ca-certificates"
)
inventory=${NEURALLOG_IMAGES_INVENTORY:-$root/inventories/local}
python=python3
[ -x "$root/.venv/bin/python" ] && python="$root/.venv/bin/python"

# The references an image is tagged with.
image_refs() {
  case "$1" in
    redis) "$python" "$here/refs.py" "$inventory" | awk '$1 == "redis" {print $2}' ;;
    postgres) "$python" "$here/refs.py" "$inventory" | awk '$1 == "postgresql" {print $2}' ;;
    elasticsearch) "$python" "$here/refs.py" "$inventory" | awk '$1 == "elasticsearch" {print $2}' ;;
    standin) "$python" "$here/refs.py" --core-services "$inventory" | awk '{print $2}' ;;
  esac
}

# apt inside the base root file system, with the machine's suites (updates
# and security too): lists fetched once per base.
apt_root() {
  local rootfs="$base_dir/rootfs"
  if [ ! -e "$base_dir/apt-lists.done" ]; then
    {
      echo "deb $mirror $suite main"
      echo "deb $mirror $suite-updates main"
      [ -z "$security_mirror" ] || echo "deb $security_mirror $suite-security main"
    } > "$rootfs/etc/apt/sources.list"
    cp -L /etc/resolv.conf "$rootfs/etc/resolv.conf"
    chroot "$rootfs" apt-get update -q >"$base_dir/apt-update.log" 2>&1 \
      || die "apt-get update in $rootfs failed, see $base_dir/apt-update.log"
    touch "$base_dir/apt-lists.done"
  fi
  echo "$rootfs"
}

# The .deb files an image needs, downloaded once into $cache/debs/<name>-<key>.
download_debs() {
  local name=$1 key=$2 dest="$cache/debs/$1-$2" rootfs
  if [ ! -e "$dest/.done" ]; then
    rootfs=$(apt_root)
    rm -rf "$rootfs/var/cache/neurallog-debs" && mkdir -p "$rootfs/var/cache/neurallog-debs/partial"
    # shellcheck disable=SC2086 # a list of package names
    chroot "$rootfs" apt-get install -q -y --download-only --no-install-recommends \
      -o Dir::Cache::archives=/var/cache/neurallog-debs ${packages[$name]} >"$cache/debs-$name.log" 2>&1 \
      || die "downloading the packages of $name failed, see $cache/debs-$name.log"
    rm -rf "$dest" && mkdir -p "$(dirname "$dest")"
    mv "$rootfs/var/cache/neurallog-debs" "$dest" && rmdir "$dest/partial" && rm -f "$dest/lock"
    touch "$dest/.done"
  fi
  echo "$dest"
}

# Elasticsearch's distribution (Maven Central, cached by hack/es-dist.sh).
es_zip() {
  "$root/hack/es-dist.sh" 2>"$cache/es-dist.log" || die "hack/es-dist.sh failed, see $cache/es-dist.log"
}

# What an image is made of: the base, its packages, its build files as
# copied into the build context (and for Elasticsearch the distribution's
# checksum). The key is taken from the copy, so it is what gets built.
image_key() {
  local name=$1 context=$2
  {
    echo "$base_key ${packages[$name]}"
    (cd "$context" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    [ "$name" != elasticsearch ] || sha256sum < "$(es_zip)"
  } | sha
}

built() {
  local key=$1 ref; shift
  for ref in "$@"; do
    [ "$(docker image inspect --format '{{index .Config.Labels "org.neurallog.build-key"}}' "$ref" 2>/dev/null)" = "$key" ] \
      || return 1
  done
}

build_image() {
  local name=$1 key refs=() start=$SECONDS context debs
  mapfile -t refs < <(image_refs "$name")
  [ ${#refs[@]} -gt 0 ] || die "$name: no image reference found in $inventory"
  context="$cache/context-$name"
  rm -rf "$context" && mkdir -p "$context"
  tar -C "$here/$name" --exclude=__pycache__ --exclude='test_*' -cf - . | tar -C "$context" -xf -
  key=$(image_key "$name" "$context")
  if built "$key" "${refs[@]}"; then
    rm -rf "$context"
    report "${refs[0]}" "cached"
    return 0
  fi
  build_base
  debs=$(download_debs "$name" "$key")
  cp -a "$debs" "$context/debs"
  if [ "$name" = elasticsearch ]; then
    mkdir "$context/unzip" && unzip -q "$(es_zip)" -d "$context/unzip"
    mv "$context/unzip/"elasticsearch-* "$context/elasticsearch" && rmdir "$context/unzip"
  fi
  log "building $name (${refs[*]})"
  DOCKER_BUILDKIT=0 docker build --network none --force-rm -q --build-arg "BASE=$base_image" \
    --label "org.neurallog.build-key=$key" -t "${refs[0]}" "$context" >"$cache/build-$name.log" 2>&1 \
    || { tail -n 30 "$cache/build-$name.log" >&2; die "building $name failed, see $cache/build-$name.log"; }
  local ref
  for ref in "${refs[@]:1}"; do docker tag "${refs[0]}" "$ref"; done
  rm -rf "$context"
  report "${refs[0]}" "$((SECONDS - start)) s"
  [ ${#refs[@]} -eq 1 ] || printf '  also tagged %s\n' "${refs[@]:1}"
}

# The legacy builder keeps every step's image: drop the untagged ones this
# script made (first-stage steps below the base, which hold the .deb layers,
# and earlier builds of an image), never anything else.
prune() {
  local base_id id parent tags key
  base_id=$(docker image inspect --format '{{.Id}}' "$base_image" 2>/dev/null) || return 0
  declare -A parent_of=() untagged=() has_child=() ours=()
  while IFS='|' read -r id parent tags key; do
    parent_of[$id]=$parent
    [ "$tags" != 0 ] || untagged[$id]=1
    [ -z "$parent" ] || has_child[$parent]=1
    case "$key" in key- | "key-<no value>") ;; *) [ "$tags" != 0 ] || ours[$id]=1 ;; esac
  done < <(docker image inspect --format '{{.Id}}|{{.Parent}}|{{len .RepoTags}}|key-{{with .Config.Labels}}{{index . "org.neurallog.build-key"}}{{end}}' \
             $(docker images -aq | sort -u) 2>/dev/null)
  for id in "${!untagged[@]}"; do
    [ -z "${has_child[$id]:-}" ] || continue
    local walk=$id
    while [ -n "$walk" ] && [ "$walk" != "$base_id" ]; do walk=${parent_of[$walk]:-}; done
    if [ "$walk" = "$base_id" ] || [ -n "${ours[$id]:-}" ]; then
      docker rmi "$id" >/dev/null 2>&1 || true
    fi
  done
}

# Removes the images this script built (only those carrying its build key),
# the base and the image cache: the next build is a cold one.
clean() {
  local name ref
  for name in redis postgres elasticsearch standin; do
    while read -r ref; do
      if docker image inspect --format '{{with .Config.Labels}}{{index . "org.neurallog.build-key"}}{{end}}' "$ref" 2>/dev/null \
          | grep -q .; then
        docker rmi "$ref" >/dev/null
      fi
    done < <(image_refs "$name")
  done
  prune
  docker rmi "$base_image" >/dev/null 2>&1 || true
  rm -rf "$cache"
  log "removed the images and $cache"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(all)
for target in "${targets[@]}"; do
  case "$target" in
    all | base | redis | postgres | elasticsearch | standin | clean) ;;
    *) die "unknown image '$target'; allowed: all, base, redis, postgres, elasticsearch, standin, clean" ;;
  esac
done
"$here/../engine.sh"
exec 9>"$cache/.lock"
flock 9
printf '%-60s %9s  %s\n' image size "build time"
for target in "${targets[@]}"; do
  case "$target" in
    all) for name in redis postgres elasticsearch standin; do build_image "$name"; done ;;
    base) build_base report ;;
    clean) clean ;;
    *) build_image "$target" ;;
  esac
done
prune
