# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one recursive merge of settings (defaults, tiers, overrides)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy


def merge(base, override):
    """``base`` with ``override`` merged in, recursively for dicts (override
    wins; lists and scalars are replaced). Neither input is modified and the
    result shares nothing with them."""
    out = copy.deepcopy(dict(base or {}))
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
