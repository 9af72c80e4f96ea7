# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.neurallog.platform.plugins.module_utils import data_services, quantity, tls


def _wrap(function, what):
    def _filter(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except ValueError as exc:
            raise AnsibleFilterError("%s: %s" % (what, exc))

    _filter.__name__ = function.__name__
    return _filter


class FilterModule(object):
    """Helpers of the data service roles (postgresql, redis, elasticsearch)."""

    def filters(self):
        return {
            "data_quantity": _wrap(quantity.canonical_quantity, "data_quantity"),
            "data_quantity_bytes": _wrap(lambda q: int(quantity.parse_quantity(q)), "data_quantity_bytes"),
            "data_resources": _wrap(quantity.canonical_resources, "data_resources"),
            "data_heap_mb": _wrap(data_services.heap_size_mb, "data_heap_mb"),
            "data_url": _wrap(data_services.connection_url, "data_url"),
            "data_url_with_credentials": _wrap(data_services.url_with_credentials, "data_url_with_credentials"),
            "data_redis_bytes": _wrap(data_services.redis_memory_bytes, "data_redis_bytes"),
            "data_redis_acl_config": _wrap(data_services.redis_acl_config, "data_redis_acl_config"),
            "data_redis_acl_rules": _wrap(data_services.redis_acl_rules, "data_redis_acl_rules"),
            "data_secret_data": data_services.secret_data,
            "data_sts_immutable_changes": _wrap(data_services.statefulset_immutable_changes, "data_sts_immutable_changes"),
            "data_elasticsearch_tls": _wrap(tls.elasticsearch_tls, "data_elasticsearch_tls"),
            "data_lost_credentials": data_services.lost_credentials,
        }
