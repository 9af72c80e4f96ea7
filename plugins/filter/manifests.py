# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Manifest filters.

Resolving any neurallog.platform filter loads every filter file of the
collection, so this file imports nothing at module level beyond Ansible's
errors: each filter imports its module_utils when it is first called."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _manifests():
    from ansible_collections.neurallog.platform.plugins.module_utils import manifests
    return manifests


def _lazy(name):
    def _filter(*args, **kwargs):
        return getattr(_manifests(), name)(*args, **kwargs)

    _filter.__name__ = name
    return _filter


class FilterModule(object):
    """Manifest helpers."""

    def filters(self):
        return dict((name, _lazy(name)) for name in (
            "to_manifest_stream", "secret_values", "split_for_check_mode", "stamp_applied_hash",
            "pending_objects", "rendered_secrets"))
