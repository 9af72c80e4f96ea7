# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one recursive merge of settings (defaults, tiers, overrides)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.six.moves.collections_abc import Mapping


def _plain(value):
    """``value`` with every mapping and list rebuilt as a new dict or list.

    Not copy.deepcopy: inside Ansible the settings arrive as lazily templated
    containers, and deep-copying those is slow (it made a render of the core
    services six times slower); rebuilding them reads each value once."""
    if isinstance(value, Mapping):
        return dict((key, _plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def merge(base, override):
    """``base`` with ``override`` merged in, recursively for mappings
    (override wins; lists and scalars are replaced). Neither input is
    modified and the result shares no dict or list with them."""
    out = _plain(base or {})
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = _plain(value)
    return out
