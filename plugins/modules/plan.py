#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: plan
short_description: Plan the NeuralLog platform in one process, reading the cluster once
version_added: 0.2.0
author: NeuralLog Platform Engineering (@neurallog)
description:
  - Runs on the controller (action plugin). Validates every platform role's settings against its
    argument spec, takes the run lock (a Lease, see M(neurallog.platform.run_lock)), reads the cluster
    once (version, optional APIs, StorageClasses, the credential Secrets, the StatefulSets, the platform's
    objects, one list per kind), keeps or generates credentials, renders the selected components' objects
    from the roles' own defaults, vars and templates (each role's C(meta/plan.yml)), refuses immutable
    StatefulSet changes, and compares the objects with the cluster.
  - Returns what is pending per phase; nothing is applied here (roles/reconcile applies the phases with
    kubernetes.core.k8s). When nothing is pending the lock is released at once.
  - The components follow the play's C(--tags)/C(--skip-tags) (C(ansible_run_tags), C(ansible_skip_tags)).
  - Render mode (C(neurallog_render_dir)) contacts no cluster and writes the files; check mode takes no lock.
  - With C(neurallog_oidc) enabled, before the lock and any change, the identity provider's discovery
    document is fetched through the setting's CA bundle and checked (issuer byte for byte, a JSON Web Key
    Set at C(jwks_uri), the scopes, S256 with PKCE), and the client Secret is looked for; a failure names
    the setting (docs/oidc.md). C(mode=kinds) never asks the identity provider.
  - With C(neurallog_gitops) C(argocd) or C(flux) render mode writes the layer folders, no Secret (their list in
    C(required-secrets/)) and the Argo CD or Flux objects that apply the layers in order (docs/gitops.md); the
    C(neurallog_gitops_*) settings are checked before anything is written.
  - The result holds Secrets and is never shown (no_log).
  - Every request to the API server has a timeout; a failure names the server URL and the cause.
options:
  components:
    description: Only these components (role names); empty means every component the tags select.
    type: list
    elements: str
    default: []
  run:
    description: Name of the run in the run lock's holder.
    type: str
    default: site.yml
  lock:
    description: Take the run lock.
    type: bool
    default: true
  timeout:
    description: Seconds one request to the API server may take.
    type: int
    default: 20
  kubeconfig:
    description: Path of the kubeconfig; else C(neurallog_kubeconfig), else kubernetes.core's defaults
      (C(K8S_AUTH_KUBECONFIG), C(~/.kube/config), in-cluster). Usually given once for the group
      C(neurallog.platform.k8s) through C(module_defaults).
    type: str
  context:
    description: Context of the kubeconfig; else C(neurallog_context).
    type: str
  rotate:
    description:
      - Rotation (playbooks/rotate_secrets.yml) of one credential, the key O(rotate.key) of the credentials of
        O(rotate.service) (a role's C(meta/plan.yml) C(credentials) entry), which gets a new value; everything
        made from it (Secrets, the consumers' C(neurallog.io/credentials-hash)) is planned with it.
      - Nothing is written to Vault for it. The result's C(rotation) holds the old and the new value (no_log).
    type: dict
    suboptions:
      service:
        description: The service of the credentials entry (C(postgresql), C(redis), C(elasticsearch)).
        type: str
        required: true
      key:
        description: The key of the credential in its Secret.
        type: str
        required: true
      settings:
        description: Settings (variable names) whose values the result's C(rotation.settings) returns, as the roles
          resolve them (defaults, inventory, vars), for the server side of the rotation.
        type: list
        elements: str
        default: []
  mode:
    description:
      - V(reconcile) plans the run. V(kinds) only returns C(kinds), every namespaced kind the platform's
        objects can have (what the roles render with these settings and every optional API on, and the
        kinds the search for undeclared objects knows), keeping only those the cluster serves (none is
        left out in render mode); no lock is taken.
      - playbooks/uninstall.yml and playbooks/diagnostics.yml use V(kinds).
    type: str
    choices: [reconcile, kinds]
    default: reconcile
notes:
  - See docs/development.md, "The reconcile engine and the plan of a role".
"""

EXAMPLES = r"""
- name: Plan the platform
  neurallog.platform.plan:
  register: neurallog_plan
"""

RETURN = r"""
phases:
  description: The pending objects, per phase (namespaces, policies, data, core, edge), each with
    C(objects), C(secrets), C(wait) (workloads to wait for) and, in check mode, C(deferred).
  type: list
  elements: dict
  returned: always
pending:
  description: Number of pending objects.
  type: int
  returned: always
selected:
  description: The components planned.
  type: list
  elements: str
  returned: always
undeclared:
  description: Platform objects in the cluster that nothing declares (C(remove), C(keep)).
  type: dict
  returned: always
prune:
  description: Whether the undeclared objects are to be removed (C(neurallog_prune)).
  type: bool
  returned: always
lock:
  description: The run lock held (holder, name, namespace, duration, renewed_at), or null.
  type: dict
  returned: always
capabilities:
  description:
    - The optional APIs, detected or forced (C(cert_manager), C(vpa), C(gateway_api), C(prometheus_operator)),
      and C(openshift) (C(neurallog_openshift), docs/openshift.md).
  type: dict
  returned: always
kubernetes_version:
  description: major.minor of the cluster; empty in render mode.
  type: str
  returned: always
facts:
  description: The public facts the roles derived (names without a leading underscore).
  type: dict
  returned: always
plan_warnings:
  description:
    - The C(warnings) of the planned roles (their C(meta/plan.yml)), also shown as warnings, e.g. a
      Prometheus resource whose selectors miss the monitoring objects' labels.
  type: list
  elements: str
  returned: always
rendered:
  description: The files render mode wrote or removed.
  type: list
  elements: str
  returned: always
kinds:
  description: With O(mode=kinds), the kinds (C(api_version), C(kind)).
  type: list
  elements: dict
  returned: when O(mode=kinds)
requests:
  description: Requests made to the API server.
  type: int
  returned: always
secrets_backend:
  description: C(neurallog_secrets_backend) (C(kubernetes), C(vault), C(external-secrets)).
  type: str
  returned: always
vault_written:
  description: The Vault KV paths this run wrote (credentials generated now, or adopted from a Secret).
  type: list
  elements: str
  returned: always
vault_versions:
  description: The version of each credential's Vault KV entry (0 when it had none) after the run.
  type: dict
  returned: always
rotation:
  description: With O(rotate), the credential rotated (service, key, namespace, name, old, new, values, and with
    Vault path and version); the result is then never shown.
  type: dict
  returned: always
vault:
  description: With O(rotate) and the vault backend, the address, token and engine of this run's login.
  type: dict
  returned: always
external_secrets:
  description: With the external-secrets backend, every remote key the store must hold and its properties
    (C(*) for every key of the Secret).
  type: dict
  returned: always
"""

from ansible_collections.neurallog.platform.plugins.module_utils.action_specs import controller_only


def main():
    controller_only("plan")


if __name__ == "__main__":
    main()
