#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: apply
short_description: Server-side apply of a list of Kubernetes objects, on the controller
version_added: 0.2.0
author: NeuralLog Platform Engineering (@neurallog)
description:
  - Runs on the controller (action plugin), in the process of the task; no module process is started
    and the kubernetes client is not imported again for each task.
  - Applies each object with server-side apply (C(PATCH application/apply-patch+yaml)) under the given
    field manager, conflicts forced unless asked otherwise; objects are applied in the order given, so a
    Namespace listed first exists for the objects after it.
  - Reads each object first (one C(GET)) and reports it as created, changed or unchanged; in check mode
    the apply is a server-side dry run (C(dryRun=All)) and nothing is written.
  - With C(--diff) it returns the object before and after for each created or changed object, unless
    O(hide_values) is set (Secrets); then only the names are returned, never a value.
  - Every request has a connect and a read timeout and is not retried; a failure names the object, the
    API server and its answer.
options:
  definition:
    description:
      - The objects, each with C(apiVersion), C(kind), C(metadata.name), and C(metadata.namespace) when
        namespaced.
    type: list
    elements: dict
    required: true
  field_manager:
    description: The field manager of the apply.
    type: str
    default: neurallog.platform
  force_conflicts:
    description: Take over fields another manager owns.
    type: bool
    default: true
  hide_values:
    description: Never return the objects, also not with C(--diff) (use for Secrets, with C(no_log)).
    type: bool
    default: false
extends_documentation_fragment:
  - neurallog.platform.cluster
"""

EXAMPLES = r"""
- name: Apply the objects of a phase
  neurallog.platform.apply:
    definition: "{{ phase.objects }}"
"""

RETURN = r"""
objects:
  description: Number of objects given.
  type: int
  returned: always
created:
  description: The objects created (C(Kind namespace/name)).
  type: list
  elements: str
  returned: always
updated:
  description: The objects changed (C(Kind namespace/name)).
  type: list
  elements: str
  returned: always
"""

from ansible_collections.neurallog.platform.plugins.module_utils.action_specs import controller_only


def main():
    controller_only("apply")


if __name__ == "__main__":
    main()
