# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cache folder shared by the controller-side code and the scripts in hack/.

NEURALLOG_CACHE_DIR, else $XDG_CACHE_HOME/neurallog, else ~/.cache/neurallog.
The shell scripts use the same rule from hack/lib/cache.sh. This file imports
nothing but the standard library, so hack/ and tests/ load it by its path.
"""

from __future__ import annotations

import os


def cache_dir(environ=None):
    """The cache folder for the environment `environ` (default: os.environ)."""
    env = os.environ if environ is None else environ
    if env.get("NEURALLOG_CACHE_DIR"):
        return env["NEURALLOG_CACHE_DIR"]
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".cache")
    return os.path.join(base, "neurallog")
