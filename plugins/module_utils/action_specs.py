# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The argument specs of the collection's controller-side actions, in one
place: the action plugins (plugins/action/) validate their arguments with
them and the modules that document them (plugins/modules/) declare them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# The connection settings every action that talks to the cluster takes
# (given once through module_defaults for group/neurallog.platform.k8s).
CONNECTION = dict(
    kubeconfig=dict(type="str"),
    context=dict(type="str"),
)


def _with_connection(**spec):
    spec.update(CONNECTION)
    return spec


SPECS = dict(
    apply=_with_connection(
        definition=dict(type="list", elements="dict", required=True),
        field_manager=dict(type="str", default="neurallog.platform"),
        force_conflicts=dict(type="bool", default=True),
        hide_values=dict(type="bool", default=False),
        request_timeout=dict(type="float", default=20),
    ),
    plan=_with_connection(
        components=dict(type="list", elements="str", default=[]),
        run=dict(type="str", default="site.yml"),
        lock=dict(type="bool", default=True),
        timeout=dict(type="int", default=20),
        mode=dict(type="str", default="reconcile", choices=["reconcile", "kinds"]),
        rotate=dict(type="dict", default=None, options=dict(
            service=dict(type="str", required=True),
            key=dict(type="str", required=True, no_log=False),
            settings=dict(type="list", elements="str", default=[]))),
    ),
    run_lock=_with_connection(
        state=dict(type="str", default="present", choices=["present", "absent"]),
        name=dict(type="str", default="neurallog-lock"),
        namespace=dict(type="str", required=True),
        duration=dict(type="int", default=900),
        holder=dict(type="str", default=""),
        run=dict(type="str", default=""),
        break_lock=dict(type="bool", default=False),
        labels=dict(type="dict", default={}),
        request_timeout=dict(type="float", default=20),
    ),
    tenant_plan=dict(
        tenants=dict(type="list", elements="raw", required=True),
        undeclared=dict(type="bool", default=False),
        prune=dict(type="bool", default=False),
        prune_threshold=dict(type="int", default=1),
        prune_confirm=dict(type="str", default=""),
        compare=dict(type="bool", default=True),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
        timeout=dict(type="int", default=20),
        purge_credentials=dict(type="list", elements="str", default=[]),
    ),
    wait=_with_connection(
        workloads=dict(type="list", elements="dict", required=True),
        delay=dict(type="float", default=2.0),
    ),
)


def controller_only(name):
    """main() of a module that only documents a controller-side action."""
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(argument_spec=SPECS[name], supports_check_mode=True)
    module.fail_json(msg="neurallog.platform.%s runs on the controller as an action plugin" % name)
