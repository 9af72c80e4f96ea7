# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the secrets backends and of credential rotation
(module_utils/secrets_backend.py).

Resolving any neurallog.platform filter loads every filter file of the
collection, so this file imports its module_utils inside the filters."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _backend():
    from ansible_collections.neurallog.platform.plugins.module_utils import secrets_backend
    return secrets_backend


def credentials_hash(values):
    return _backend().credentials_hash(values)


def secret_scram_verifier(password):
    return _backend().scram_sha256_verifier(str(password))


def secret_redis_hash(password):
    return _backend().redis_password_hash(str(password))


def secret_elasticsearch_hash(password):
    return _backend().elasticsearch_password_hash(str(password))


class FilterModule(object):
    """Secrets backends and rotation."""

    def filters(self):
        return {
            "credentials_hash": credentials_hash,
            "secret_scram_verifier": secret_scram_verifier,
            "secret_redis_hash": secret_redis_hash,
            "secret_elasticsearch_hash": secret_elasticsearch_hash,
        }
