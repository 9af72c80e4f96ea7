# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of neurallog.platform.tenant_resources: the settings the
task does not give take the roles' defaults (read here, on the controller,
from roles/tenant and roles/globals: the one place they are written), then
the module runs as before."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.neurallog.platform.plugins.module_utils import openshift as openshift_utils
from ansible_collections.neurallog.platform.plugins.module_utils.tenant import DEFAULT_SETTINGS, ROLE_SETTINGS


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = dict(self._task.args)
        for setting in ROLE_SETTINGS:
            if args.get(setting) is None and setting in DEFAULT_SETTINGS:
                args[setting] = DEFAULT_SETTINGS[setting]
        # auto | true | false: no cluster is asked here, so auto is false
        try:
            args["openshift"] = openshift_utils.resolve(args.get("openshift"))[0]
        except openshift_utils.OpenShiftSettingError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        result.update(self._execute_module(module_name="neurallog.platform.tenant_resources", module_args=args,
                                           task_vars=task_vars))
        return result
