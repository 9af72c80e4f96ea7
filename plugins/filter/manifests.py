# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.neurallog.platform.plugins.module_utils.manifests import (
    secret_values,
    to_manifest_stream,
)


class FilterModule(object):
    """Manifest helpers."""

    def filters(self):
        return {
            "to_manifest_stream": to_manifest_stream,
            "secret_values": secret_values,
        }
