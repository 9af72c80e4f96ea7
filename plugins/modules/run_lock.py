#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: run_lock
short_description: Take, renew or release the NeuralLog run lock (a Lease)
version_added: 0.1.0
author: NeuralLog Platform Engineering (@neurallog)
description:
  - Keeps two playbook runs from writing to one cluster at once. The lock is a
    C(coordination.k8s.io/v1) Lease with the holder
    (C(user@host pid <ansible-playbook pid> <run> on <inventory host>), so each cluster of a fleet run has
    its own), C(leaseDurationSeconds) and C(renewTime).
  - O(state=present) creates the Lease if absent, renews it if this run holds it, takes it over with a
    warning if it expired, and fails naming the holder if another run holds it. Every write is optimistic
    (create-if-absent, replace at the resourceVersion read), so of two runs started at the same moment
    exactly one wins.
  - O(state=absent) deletes the Lease if this run still holds it; a Lease held by someone else is left alone.
  - Creates the namespace if it does not exist yet (first install).
  - Runs on the controller (action plugin). The Lease is bookkeeping of the run, so the task never reports
    a change.
options:
  state:
    description: V(present) takes or renews the lock, V(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  name:
    description: Name of the Lease.
    type: str
    default: neurallog-lock
  namespace:
    description: Namespace of the Lease.
    type: str
    required: true
  duration:
    description: Seconds the lock stays valid after each renewal (at least 30).
    type: int
    default: 900
  holder:
    description: Identity of this run; empty builds C(user@host pid <ansible-playbook pid> <run>).
    type: str
    default: ""
  run:
    description: What runs (the playbook), appended to the generated holder identity.
    type: str
    default: ""
  break_lock:
    description: Take the lock even from a live holder (a warning names it). Only when that run is known to be gone.
    type: bool
    default: false
  labels:
    description: Labels of the Lease (and of the namespace if it is created).
    type: dict
    default: {}
extends_documentation_fragment:
  - neurallog.platform.cluster
attributes:
  check_mode:
    description: In check mode nothing is written; the task fails if another live run holds the lock.
    support: full
  diff_mode:
    description: No diff is shown.
    support: none
  action:
    description: Runs on the controller as an action plugin.
    support: full
requirements:
  - kubernetes (Python)
  - kubernetes.core
"""

EXAMPLES = r"""
- name: Take the run lock
  neurallog.platform.run_lock:
    namespace: neurallog-system
    run: site.yml
    duration: 900

- name: Release it
  neurallog.platform.run_lock:
    state: absent
    namespace: neurallog-system
    run: site.yml
"""

RETURN = r"""
action:
  description: What was done (created, renewed, took_over, broke, free, held, released, absent, not_held).
  type: str
  returned: success
holder:
  description: The identity of this run.
  type: str
  returned: always
previous_holder:
  description: The holder whose expired (or broken) lock was taken over.
  type: str
  returned: success
renewed_at:
  description: When the lock was written (seconds since the epoch, controller clock).
  type: float
  returned: success
lock_holder:
  description: The holder that keeps this run out.
  type: str
  returned: failure
"""

from ansible_collections.neurallog.platform.plugins.module_utils.action_specs import controller_only


def main():
    controller_only("run_lock")


if __name__ == "__main__":
    main()
