# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of fleet runs (many clusters, one inventory): module_utils/fleet.py.

Resolving any neurallog.platform filter loads every filter file of the
collection, so this file imports its module_utils only when a filter is
first called."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _lazy(name):
    def _filter(*args, **kwargs):
        from ansible.errors import AnsibleFilterError
        from ansible_collections.neurallog.platform.plugins.module_utils import fleet
        try:
            return getattr(fleet, name)(*args, **kwargs)
        except ValueError as exc:
            raise AnsibleFilterError(str(exc))

    _filter.__name__ = name
    return _filter


class FilterModule(object):
    """Fleet runs."""

    def filters(self):
        return {
            "fleet_failure_result": _lazy("failure_result"),
            "fleet_summary_table": _lazy("summary_table"),
            "fleet_serial": _lazy("serial_batches"),
            "fleet_max_fail_percentage": _lazy("max_fail_percentage"),
        }
