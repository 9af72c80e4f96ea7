# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Platform filters: service descriptions, NetworkPolicies, rollout state, TLS.

Resolving any neurallog.platform filter loads every filter file of the
collection, so this file imports nothing at module level beyond Ansible's
errors: each filter imports its module_utils when it is first called."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError


def _core_services(services, defaults=None, overrides=None, image_keys=None, credentials=None, extras=None):
    from ansible_collections.neurallog.platform.plugins.module_utils.services import resolve_services

    try:
        return resolve_services(services, defaults, overrides,
                                list(image_keys) if image_keys is not None else None, credentials, extras)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def _network_policies(descriptions, labels=None, setting="network_policies"):
    from ansible_collections.neurallog.platform.plugins.module_utils.network_policy import network_policies

    try:
        return network_policies(descriptions, labels, setting)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def _pending_workloads(objects):
    from ansible_collections.neurallog.platform.plugins.module_utils.rollout import pending_workloads

    return pending_workloads(objects)


def _rollout_report(pending, pods=None, events=None, max_events=5):
    from ansible_collections.neurallog.platform.plugins.module_utils.rollout import rollout_report

    return rollout_report(pending, pods, events, max_events)


def _tls_secret_values(existing, hosts, days=825):
    from ansible_collections.neurallog.platform.plugins.module_utils.tls import tls_secret_values

    try:
        return tls_secret_values(existing, list(hosts), int(days))
    except ValueError as exc:
        raise AnsibleFilterError("ingress TLS: %s" % exc)


class FilterModule(object):
    """Platform helpers: service descriptions, NetworkPolicies, rollout state, TLS."""

    def filters(self):
        return {
            "core_services": _core_services,
            "network_policies": _network_policies,
            "pending_workloads": _pending_workloads,
            "rollout_report": _rollout_report,
            "tls_secret_values": _tls_secret_values,
        }
