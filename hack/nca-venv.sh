#!/usr/bin/env bash
# A virtualenv of its own for the NetworkPolicy analyser network-config-analyzer
# (its dependency pins clash with the project's virtualenv). Prints the path
# of its `nca`. Re-runs only check the version stamp.
set -euo pipefail
version=2.1.0
. "$(dirname "${BASH_SOURCE[0]}")/lib/cache.sh"
cache=$neurallog_cache
venv=$cache/venvs/nca
python=${PYTHON:-python3}
if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$version" ]; then
  mkdir -p "$cache/venvs"
  exec 9>"$cache/venvs/.nca.lock"
  flock 9
  if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$version" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "network-config-analyzer==$version" >&2
    echo "$version" >"$venv/.installed"
  fi
fi
echo "$venv/bin/nca"
