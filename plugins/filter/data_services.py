# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the data service roles (postgresql, redis, elasticsearch).

Resolving any neurallog.platform filter loads every filter file of the
collection, so this file imports nothing at module level beyond Ansible's
errors: each filter imports its module_utils when it is first called."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError


def _data_services():
    from ansible_collections.neurallog.platform.plugins.module_utils import data_services
    return data_services


def _quantity():
    from ansible_collections.neurallog.platform.plugins.module_utils import quantity
    return quantity


def _tls():
    from ansible_collections.neurallog.platform.plugins.module_utils import tls
    return tls


def _wrap(module, name, what=None):
    """The function ``name`` of ``module()``, imported at the first call; with
    ``what``, its ValueError becomes an AnsibleFilterError naming ``what``."""
    def _filter(*args, **kwargs):
        function = getattr(module(), name)
        if what is None:
            return function(*args, **kwargs)
        try:
            return function(*args, **kwargs)
        except ValueError as exc:
            raise AnsibleFilterError("%s: %s" % (what, exc))

    _filter.__name__ = name
    return _filter


def _quantity_bytes(value):
    try:
        return int(_quantity().parse_quantity(value))
    except ValueError as exc:
        raise AnsibleFilterError("data_quantity_bytes: %s" % exc)


class FilterModule(object):
    """Helpers of the data service roles (postgresql, redis, elasticsearch)."""

    def filters(self):
        return {
            "data_quantity": _wrap(_quantity, "canonical_quantity", "data_quantity"),
            "data_quantity_bytes": _quantity_bytes,
            "data_resources": _wrap(_quantity, "canonical_resources", "data_resources"),
            "data_heap_mb": _wrap(_data_services, "heap_size_mb", "data_heap_mb"),
            "data_url": _wrap(_data_services, "connection_url", "data_url"),
            "data_url_with_credentials": _wrap(_data_services, "url_with_credentials", "data_url_with_credentials"),
            "data_redis_bytes": _wrap(_data_services, "redis_memory_bytes", "data_redis_bytes"),
            "data_redis_acl_config": _wrap(_data_services, "redis_acl_config", "data_redis_acl_config"),
            "data_redis_acl_rules": _wrap(_data_services, "redis_acl_rules", "data_redis_acl_rules"),
            "data_secret_data": _wrap(_data_services, "secret_data"),
            "data_sts_immutable_changes": _wrap(_data_services, "statefulset_immutable_changes",
                                                "data_sts_immutable_changes"),
            "data_elasticsearch_tls": _wrap(_tls, "elasticsearch_tls", "data_elasticsearch_tls"),
            "data_lost_credentials": _wrap(_data_services, "lost_credentials"),
            "data_elasticsearch_bootstrap_nodes": _wrap(_data_services, "elasticsearch_bootstrap_nodes"),
        }
