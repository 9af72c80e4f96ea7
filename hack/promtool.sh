#!/usr/bin/env bash
# Prints the path of promtool, taken from Debian's `prometheus` package
# (upstream PROMTOOL_VERSION, 2.42.0 in bookworm) without installing it:
# installing would start a Prometheus server. `apt-get download` fetches the
# .deb of that version from the machine's apt mirror into a temporary folder,
# `dpkg-deb -x` unpacks it there and only usr/bin/promtool is kept, under
# <cache>/promtool/<Debian version>/ (the cache folder of hack/lib/cache.sh).
# Re-runs only look for that file; one download at a time (flock).
set -euo pipefail
upstream=${PROMTOOL_VERSION:-2.42.0}
. "$(dirname "${BASH_SOURCE[0]}")/lib/cache.sh"
cache=$neurallog_cache

cached() {
  local found
  for found in "$cache/promtool/$upstream"+*/promtool; do
    if [ -x "$found" ]; then echo "$found"; return 0; fi
  done
  return 1
}
# the Debian version of that upstream version the apt lists know (the mirror
# keeps only the newest point release)
debian_version() {
  apt-cache madison prometheus 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}' \
    | grep -m1 "^$upstream+" || true
}

cached && exit 0
mkdir -p "$cache/promtool"
exec 9>"$cache/promtool/.lock"
flock 9
cached && exit 0
version=$(debian_version)
if [ -z "$version" ]; then
  # a new machine: no package lists yet, or older ones
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  version=$(debian_version)
fi
if [ -z "$version" ]; then
  echo "promtool.sh: the apt sources offer no prometheus $upstream (apt-cache madison prometheus)" >&2
  exit 1
fi
tmp=$(mktemp -d "$cache/promtool/.download.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -qq "prometheus=$version") >&2
dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/root"
"$tmp/root/usr/bin/promtool" --version >/dev/null
mkdir -p "$cache/promtool/$version"
install -m 0755 "$tmp/root/usr/bin/promtool" "$cache/promtool/$version/promtool.new"
mv "$cache/promtool/$version/promtool.new" "$cache/promtool/$version/promtool"
echo "$cache/promtool/$version/promtool"
