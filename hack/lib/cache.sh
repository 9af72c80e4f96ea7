# shellcheck shell=bash
# The cache folder every hack/ script shares (Go binaries, images, kind node
# images, downloads, virtualenvs): NEURALLOG_CACHE_DIR, else
# $XDG_CACHE_HOME/neurallog, else ~/.cache/neurallog. Source it and use
# $neurallog_cache. The same rule for Python is
# plugins/plugin_utils/cache_dir.py; tests/unit/test_cache_dir.py checks
# that both agree.
# shellcheck disable=SC2034
neurallog_cache=${NEURALLOG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/neurallog}
