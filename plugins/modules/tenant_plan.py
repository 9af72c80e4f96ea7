#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: tenant_plan
short_description: Plan the reconcile of NeuralLog tenants in one process
version_added: 0.1.0
author: NeuralLog Platform Engineering (@neurallog)
description:
  - Runs on the controller (an action plugin; the C(neurallog.platform.tenant) role calls it). For any
    number of tenants, in one process, it validates and normalises them (every problem at once, each
    naming its field), refuses namespaces that belong to someone else, reads the cluster once (one list
    per kind, by label), keeps the stored Redis passwords and generates only the missing ones, builds
    every object (as P(neurallog.platform.tenant_resources#module) does), stamps each with the
    annotation C(neurallog.io/applied-hash) and compares them all with the cluster once.
  - Returns what is pending in RV(phases) - C(namespaces) (the admission policies, then the
    Namespaces), then C(tenants) (every other object; the Secrets apart, to be applied with C(no_log))
    - and, in each phase's C(wait), the Redis StatefulSets that are applied, for
    P(neurallog.platform.wait#module). A run where nothing changed returns no phase.
  - The settings are the task's variables of the tenant role (C(tenant_tiers), C(tenant_redis), ...,
    and C(neurallog_image_refs), C(neurallog_common_labels) ... of the globals role); connection
    settings C(neurallog_kubeconfig) and C(neurallog_context).
  - Render mode (C(neurallog_render_dir)) reads no cluster and writes C(tenant-admission.yaml),
    C(tenants.yaml), C(tenant-redis.yaml) and the Secrets to C(secrets/tenant-secrets.yaml) (or, with
    C(neurallog_render_secrets=none), their names to C(required-secrets/tenant-secrets.txt)), keeping the
    passwords an earlier render wrote. With C(neurallog_gitops) C(argocd) or C(flux) it writes, per tenant,
    C(tenants/<id>/tenant.yaml) and C(tenants/<id>/manifests/), the shared policies in C(tenants/admission/),
    the Secrets only listed (C(required-secrets/tenant-<id>.txt)) and C(gitops/apps/tenants.yaml) (docs/gitops.md).
  - The Redis password follows C(neurallog_secrets_backend) (docs/secrets.md) as the platform's credentials
    do - C(vault) reads the KV entry C(<path_prefix>/tenant-<id>/redis-credentials) (one login), generates a
    missing password once and writes it back with check-and-set before anything is applied;
    C(external-secrets) replaces the Secret with an ExternalSecret of the same name, no value passing through
    Ansible (render and GitOps output too, so C(required-secrets/) lists no tenant Secret).
  - The result holds the Redis passwords (in the Secrets), so use C(no_log) on the task and report
    its C(msg) in a task of its own; invalid input and an unsafe prune give C(failed) with a message that
    names the setting and holds no secret.
options:
  tenants:
    description: The tenants (C(tenant_list)), as for P(neurallog.platform.tenant_resources#module).
    type: list
    elements: raw
    required: true
  undeclared:
    description:
      - Also report the tenants in the cluster that O(tenants) does not declare (RV(prune)), and refuse
        an unsafe O(prune) before anything else.
    type: bool
    default: false
  prune:
    description: The undeclared tenants are to be removed (C(tenant_prune)); checked when O(undeclared).
    type: bool
    default: false
  prune_threshold:
    description: A prune of more tenants than this needs O(prune_confirm) equal to their number.
    type: int
    default: 1
  prune_confirm:
    description: The number of tenants the prune removes (C(tenant_prune_confirm)).
    type: str
    default: ""
  compare:
    description: Compare with the cluster (C(tenant_skip_unchanged)); false returns every object as pending.
    type: bool
    default: true
  wait:
    description: List the applied Redis StatefulSets in the phases' C(wait) (C(tenant_wait)).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for each of them (C(tenant_wait_timeout)).
    type: int
    default: 300
  timeout:
    description: Seconds for each request to the API server.
    type: int
    default: 20
  purge_credentials:
    description:
      - Tenant ids, offboarded with C(tenant_offboard_purge), whose credentials are deleted from the secrets
        backend instead of planning tenants. With C(neurallog_secrets_backend=vault) the KV entry
        C(<path_prefix>/tenant-<id>/redis-credentials) is deleted, metadata and every version (one login);
        with the other backends there is nothing to delete (the Secret went with the namespace; the
        external store is yours). Without purging, offboarding keeps the entry, like the Redis volume.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Nothing is written; objects of namespaces that do not exist yet are left out and named in RV(new_namespaces).
  diff_mode:
    support: none
    description: The apply of the phases shows the changes.
notes:
  - Runs on the controller only; needs the C(kubernetes) Python package there.
seealso:
  - name: Tenant onboarding
    description: docs/tenants.md in the collection.
    link: https://github.com/neurallog/neurallog.platform/blob/main/docs/tenants.md
"""

EXAMPLES = r"""
- name: Plan the tenants
  neurallog.platform.tenant_plan:
    tenants: "{{ tenant_list }}"
    wait: "{{ tenant_wait }}"
  register: __tenant_plan
  failed_when: false
  no_log: true

- name: Report a refusal
  when: __tenant_plan.phases is not defined
  ansible.builtin.fail:
    msg: "{{ __tenant_plan.msg }}"

- name: Apply what is pending, phase by phase
  ansible.builtin.include_role:
    name: neurallog.platform.reconcile
    tasks_from: phase
  vars:
    neurallog_plan: {lock: null, phases: "{{ __tenant_plan.phases }}"}
  loop: "{{ __tenant_plan.phases | map(attribute='name') | list }}"
  loop_control:
    loop_var: reconcile_phase_name
"""

RETURN = r"""
phases:
  description:
    - The phases with something to apply, in order, each with C(name), C(objects), C(secrets) and
      C(wait) (the applied Redis StatefulSets, for P(neurallog.platform.wait#module)).
  returned: success, not in render mode
  type: list
  elements: dict
pending:
  description: The number of objects to apply.
  returned: success
  type: int
objects:
  description: The number of objects the tenants declare.
  returned: success
  type: int
tenants:
  description: Per tenant its id, name, tier, namespaces, organizations, quota and whether it has Redis.
  returned: success
  type: list
  elements: dict
namespaces:
  description: Every namespace of every tenant.
  returned: success
  type: list
  elements: str
generated_passwords:
  description: Ids of the tenants whose Redis password was generated (none was stored).
  returned: success
  type: list
  elements: str
new_namespaces:
  description: Check mode, the namespaces that do not exist yet (their objects are left out).
  returned: success
  type: list
  elements: str
prune:
  description:
    - With O(undeclared), the undeclared tenants (C(undeclared), C(tenants), C(namespaces), C(conflicts),
      C(summary)), C(report) (the line naming them) and C(refusal) (why the prune must not run, or empty).
  returned: with undeclared, not in render mode
  type: dict
rendered:
  description: Render mode, the files written or removed.
  returned: success
  type: list
  elements: str
secrets_backend:
  description: C(neurallog_secrets_backend) (C(kubernetes), C(vault) or C(external-secrets)).
  returned: success
  type: str
vault_written:
  description: With the vault backend, the KV entries written back (generated once or adopted from a Secret).
  returned: success
  type: list
  elements: str
vault_deleted:
  description: With O(purge_credentials) and the vault backend, the KV entries deleted.
  returned: with purge_credentials
  type: list
  elements: str
external_secrets:
  description: With the external-secrets backend, each remote key the store must hold and its properties.
  returned: success
  type: dict
requests:
  description: The number of requests made to the API server.
  returned: always
  type: int
"""
