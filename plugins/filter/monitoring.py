# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the monitoring role: Grafana dashboards' ConfigMaps and the
check of the Prometheus resources' selectors (module_utils/monitoring.py).

Resolving any neurallog.platform filter loads every filter file of the
collection, so this file imports nothing at module level beyond Ansible's
errors: each filter imports its module_utils when it is first called."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError


def _grafana_dashboard_configmap(dashboard, name, namespace, labels=None, annotations=None, constants=None):
    from ansible_collections.neurallog.platform.plugins.module_utils.monitoring import dashboard_configmap

    try:
        return dashboard_configmap(dashboard, name, namespace, labels, annotations, constants)
    except ValueError as exc:
        raise AnsibleFilterError("monitoring dashboards: %s" % exc)


def _prometheus_selection_warnings(prometheuses, kinds, object_labels, namespace, namespace_labels=None):
    from ansible_collections.neurallog.platform.plugins.module_utils.monitoring import selection_warnings

    return selection_warnings(prometheuses, list(kinds or []), dict(object_labels or {}), namespace,
                              dict(namespace_labels or {}))


class FilterModule(object):
    """Monitoring helpers: dashboards' ConfigMaps, Prometheus selector warnings."""

    def filters(self):
        return {
            "grafana_dashboard_configmap": _grafana_dashboard_configmap,
            "prometheus_selection_warnings": _prometheus_selection_warnings,
        }
