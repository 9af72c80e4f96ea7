# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.neurallog.platform.plugins.module_utils.manifests import (
    pending_objects,
    rendered_secrets,
    secret_values,
    split_for_check_mode,
    stamp_applied_hash,
    to_manifest_stream,
)


class FilterModule(object):
    """Manifest helpers."""

    def filters(self):
        return {
            "to_manifest_stream": to_manifest_stream,
            "secret_values": secret_values,
            "split_for_check_mode": split_for_check_mode,
            "stamp_applied_hash": stamp_applied_hash,
            "pending_objects": pending_objects,
            "rendered_secrets": rendered_secrets,
        }
