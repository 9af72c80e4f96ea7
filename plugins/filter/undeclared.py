# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for objects no longer declared by a run.

Resolving any neurallog.platform filter loads every filter file of the
collection, so this file imports nothing at module level beyond Ansible's
errors: each filter imports its module_utils when it is first called."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _undeclared():
    from ansible_collections.neurallog.platform.plugins.module_utils import undeclared
    return undeclared


def _lazy(name):
    def _filter(*args, **kwargs):
        return getattr(_undeclared(), name)(*args, **kwargs)

    _filter.__name__ = name
    return _filter


class FilterModule(object):
    """Objects no longer declared by a run."""

    def filters(self):
        return {
            "object_keys": _lazy("object_keys"),
            "undeclared_objects": _lazy("undeclared_objects"),
            "describe_objects": _lazy("describe"),
        }
