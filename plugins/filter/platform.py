# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.neurallog.platform.plugins.module_utils.network_policy import network_policies
from ansible_collections.neurallog.platform.plugins.module_utils.rollout import (
    pending_workloads,
    rollout_report,
)
from ansible_collections.neurallog.platform.plugins.module_utils.services import resolve_services
from ansible_collections.neurallog.platform.plugins.module_utils.tls import tls_secret_values


def _core_services(services, defaults=None, overrides=None, image_keys=None, credentials=None):
    try:
        return resolve_services(services, defaults, overrides,
                                list(image_keys) if image_keys is not None else None, credentials)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def _network_policies(descriptions, labels=None, setting="network_policies"):
    try:
        return network_policies(descriptions, labels, setting)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def _tls_secret_values(existing, hosts, days=825):
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
            "pending_workloads": pending_workloads,
            "rollout_report": rollout_report,
            "tls_secret_values": _tls_secret_values,
        }
