# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.neurallog.platform.plugins.module_utils.undeclared import (
    describe, object_keys, undeclared_objects)


class FilterModule(object):
    """Objects no longer declared by a run."""

    def filters(self):
        return {
            "object_keys": object_keys,
            "undeclared_objects": undeclared_objects,
            "describe_objects": describe,
        }
