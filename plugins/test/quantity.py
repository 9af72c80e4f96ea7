# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.neurallog.platform.plugins.module_utils.quantity import is_quantity


class TestModule(object):
    """Jinja2 tests of the collection."""

    def tests(self):
        return {"quantity": is_quantity}
