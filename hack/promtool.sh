#!/usr/bin/env bash
# Prints the path of promtool, taken from Debian's `prometheus` package
# (PROMTOOL_DEB_VERSION) without installing it: installing would start a
# Prometheus server. `apt-get download` fetches the .deb from the machine's
# apt mirror into a temporary folder, `dpkg-deb -x` unpacks it there and only
# usr/bin/promtool is kept, under
# ${NEURALLOG_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/neurallog}/promtool/<version>/.
# Re-runs only check that file; one download at a time (flock).
set -euo pipefail
version=${PROMTOOL_DEB_VERSION:-2.42.0+ds-5+deb12u1}
cache=${NEURALLOG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/neurallog}
dir="$cache/promtool/$version"
bin="$dir/promtool"
if [ ! -x "$bin" ]; then
  mkdir -p "$cache/promtool"
  exec 9>"$cache/promtool/.lock"
  flock 9
  if [ ! -x "$bin" ]; then
    tmp=$(mktemp -d "$cache/promtool/.download.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    fetch() { (cd "$tmp" && apt-get download -qq "prometheus=$version") >&2; }
    if ! fetch; then
      # a new machine: no package lists yet, or older ones
      sudo=""
      [ "$(id -u)" = 0 ] || sudo="sudo"
      $sudo apt-get update -qq >&2
      fetch
    fi
    dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/root"
    "$tmp/root/usr/bin/promtool" --version >/dev/null
    mkdir -p "$dir"
    install -m 0755 "$tmp/root/usr/bin/promtool" "$bin.new"
    mv "$bin.new" "$bin"
  fi
fi
echo "$bin"
