#!/usr/bin/env bash
# Creates (once, and again when requirements.txt changes) the virtualenv
# that holds checkov, and prints the path of its checkov command.
#   <cache>/venvs/checkov (hack/lib/cache.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cache.sh"
venv=${CHECKOV_VENV:-$neurallog_cache/venvs/checkov}
python=${PYTHON:-python3}
stamp="$venv/.requirements"
if ! cmp -s "$here/requirements.txt" "$stamp" || [ ! -x "$venv/bin/checkov" ]; then
  echo "installing checkov into $venv" >&2
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade 'pip>=24' >&2
  "$venv/bin/pip" install --quiet -r "$here/requirements.txt" >&2
  cp "$here/requirements.txt" "$stamp"
fi
echo "$venv/bin/checkov"
