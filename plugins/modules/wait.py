#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: wait
short_description: Wait, bounded, until Deployments and StatefulSets are rolled out
version_added: 0.2.0
author: NeuralLog Platform Engineering (@neurallog)
description:
  - Runs on the controller (action plugin). Polls each workload until it is rolled out or its own
    timeout passes; then fails naming each workload that is not ready, with its pods' phases and
    conditions and the recent events of its namespace.
  - Does nothing in check mode.
options:
  workloads:
    description:
      - The workloads, as returned in C(phases[].wait) by M(neurallog.platform.plan).
      - Each has C(api_version), C(kind) (Deployment, StatefulSet, DaemonSet), C(namespace), C(name),
        C(timeout) (seconds) and C(role) (named in the failure with its C(<role>_wait_timeout)).
    type: list
    elements: dict
    required: true
  kubeconfig:
    description: Path of the kubeconfig; else kubernetes.core's defaults (C(K8S_AUTH_KUBECONFIG) …).
    type: str
  context:
    description: Context of the kubeconfig.
    type: str
  delay:
    description: Seconds between two polls, after the first polls (0.1 s, then doubling up to this).
    type: float
    default: 2.0
"""

EXAMPLES = r"""
- name: Wait for what was applied
  neurallog.platform.wait:
    workloads: "{{ phase.wait }}"
"""

RETURN = r"""
workloads:
  description: Number of workloads waited for.
  type: int
  returned: always
seconds:
  description: Seconds waited.
  type: float
  returned: success
"""

from ansible_collections.neurallog.platform.plugins.module_utils.action_specs import controller_only


def main():
    controller_only("wait")


if __name__ == "__main__":
    main()
