# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Base of the collection's controller-side actions: no connection, no file
transfer, arguments validated against the action's spec in
module_utils/action_specs.py."""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.neurallog.platform.plugins.module_utils.action_specs import SPECS


class ControllerAction(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    NAME = ""  # the key of the action's spec in SPECS

    def validated_args(self):
        """The task's arguments with defaults; AnsibleError naming the action
        and every invalid argument."""
        validation = ArgumentSpecValidator(SPECS[self.NAME]).validate(self._task.args)
        if validation.error_messages:
            raise AnsibleError("%s: %s" % (self.NAME, "; ".join(validation.error_messages)))
        return validation.validated_parameters
