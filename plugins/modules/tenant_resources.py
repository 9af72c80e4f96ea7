#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: tenant_resources
short_description: Build the Kubernetes objects of NeuralLog tenants
version_added: 0.1.0
author: NeuralLog platform engineering (@neurallog)
description:
  - Validates one tenant (O(tenant)) or several (O(tenants)) and returns the complete,
    ordered list of Kubernetes objects they need, without contacting any cluster.
    Apply the list with the C(neurallog.platform.k8s_apply) role (or render it).
  - Per tenant it generates the namespaces C(tenant-{id}), C(tenant-{id}-org-{org}) and
    C(tenant-{id}-org-{org}-mcp) with the C(tenant) and C(type) labels and Pod Security
    Admission labels; in each namespace a ResourceQuota, a LimitRange, the
    C(tenant-isolation) NetworkPolicy (same tenant and platform namespaces, plus DNS),
    and the C(tenant-admin)/C(tenant-member) Roles and RoleBindings for the tenant's
    groups; in the root namespace a Redis StatefulSet with its Service, ConfigMap and
    C(redis-credentials) Secret.
  - Besides, in RV(admission_resources), the cluster-wide ValidatingAdmissionPolicies and
    bindings that guard every tenant namespace (label C(tenant)), the same for every
    tenant; apply them before the tenants. They refuse Service C(externalIPs) and type
    C(ExternalName), and Ingresses with a host outside the tenant's own
    (C(<id>.api.<ingress_domain>) and names under it, plus the tenant's C(ingress_hosts)),
    without a host, with C(defaultBackend), or with an annotation matching
    O(ingress_denied_annotations).
  - Every input is validated before any object is generated; all problems are reported
    at once, each naming its field. Nothing is returned for invalid input.
  - Ids may not contain the words C(org) or C(mcp) between dashes (they separate the parts
    of namespace names), every namespace must belong to one tenant, and C(system:) groups
    cannot be bound.
  - Redis passwords are taken from O(redis_passwords); a tenant without one gets a newly
    generated one (listed in RV(generated_passwords)), so passing the passwords stored in
    the cluster keeps them stable across runs.
  - The result contains the Redis passwords (in the Secrets); use C(no_log) on the task.
  - Every setting not given takes the tenant role's default (C(roles/tenant/defaults/main.yml),
    the platform-wide ones C(roles/globals/defaults/main.yml)), filled in on the controller
    by the module's action plugin; the role's variable names are given with each option.
requirements:
  - kubernetes (the Python client, for reading Kubernetes quantities)
options:
  tenant:
    description:
      - One tenant. Mutually exclusive with O(tenants).
      - 'Keys: C(id) (DNS-1123 label, required), C(name) (display name), C(organizations)
        (list of ids or of mappings with C(id), C(name), C(mcp)), C(tier), C(quota)
        (ResourceQuota C(hard) entries merged over the tier''s), C(organization_quota),
        C(redis) (merged over O(redis)), C(admin_groups), C(member_groups) (OIDC group
        names), C(labels) (extra labels on every object), C(namespace_support)
        (overrides O(namespace_support)), C(ingress_hosts) (extra Ingress hosts of the tenant,
        names or C(*.<domain>), outside O(ingress_domain)). Any other key is an error.'
    type: dict
  tenants:
    description:
      - Several tenants, each as in O(tenant). Ids must be unique.
    type: list
    elements: dict
  tiers:
    description:
      - Tier name to ResourceQuota C(hard) entries of a tenant's root namespace.
      - The default has C(small), C(standard) (the spec's 50 pods, 10/20 CPU, 20Gi/40Gi
        memory) and C(large).
    type: dict
  default_tier:
    description: Tier of tenants that name none (default C(tenant_default_tier) of the tenant role, C(standard)).
    type: str
  organization_quota:
    description:
      - ResourceQuota C(hard) entries of each organization and MCP namespace (Kubernetes
        quotas are per namespace). A tenant's C(organization_quota) is merged over it.
    type: dict
  limit_range:
    description:
      - Container defaults of the LimitRange in every tenant namespace, so pods without
        requests are admitted under the quota.
      - Keys C(default) (limits), C(default_request) and C(max), each a mapping of
        C(cpu)/C(memory) to quantities.
    type: dict
  redis:
    description:
      - Defaults of every tenant's Redis; a tenant's C(redis) is merged over them.
      - Keys C(enabled), C(storage_size), C(storage_class), C(maxmemory),
        C(maxmemory_policy), C(appendonly), C(appendfsync), C(resources).
    type: dict
  namespace_support:
    description:
      - The spec's C(tenant.namespaceSupport). C(enabled) gives each organization a
        namespace of its own (otherwise a tenant has only its root namespace);
        C(default) is whether an organization gets an MCP namespace when it does not say.
    type: dict
  dns:
    description:
      - DNS egress added to the tenant NetworkPolicy (UDP and TCP 53).
      - Keys C(enabled), C(namespace_labels), C(pod_labels) selecting the cluster DNS pods.
    type: dict
  system_namespace_labels:
    description: Labels of the platform's system namespaces (allowed in and out).
    type: dict
  data_namespace_labels:
    description: Labels of the platform's data namespaces (allowed out when O(data_access) is set).
    type: dict
  data_access:
    description:
      - Let tenant pods open connections to the data namespaces (egress in the tenant
        NetworkPolicy). The spec allows it; off by default, so the shared stores are reached
        only through the platform services.
      - Default C(neurallog_tenant_data_access) of the globals role (false).
    type: bool
  openshift:
    description:
      - OpenShift (OKD) objects - the tenant Redis without a fixed runAsUser, runAsGroup or fsGroup
        (the restricted-v2 SecurityContextConstraints assign them).
      - The action resolves C(neurallog_openshift) of the globals role (C(auto) is false here, no
        cluster is asked); C(neurallog.platform.tenant_plan) detects the cluster.
    type: bool
  oidc:
    description:
      - The OpenID Connect setting (C(neurallog_oidc) of the globals role). When it is enabled, every group of the
        tenants' RoleBindings is prefixed with its C(groups_prefix), the prefix of kube-apiserver's
        C(--oidc-groups-prefix) (docs/oidc.md); a group that already starts with it is refused.
    type: dict
  admin_group_format:
    description: Admin group of tenants that list no C(admin_groups); C({tenant}) is replaced by the id.
    type: str
  member_group_format:
    description: Member group of tenants that list no C(member_groups); C({tenant}) is replaced by the id.
    type: str
  redis_image:
    description: Full, pinned reference of the Redis image (C(neurallog_image_refs['redis'])).
    type: str
    required: true
  image_pull_policy:
    description: imagePullPolicy of the Redis container (default C(neurallog_image_pull_policy), C(IfNotPresent)).
    type: str
    choices: [Always, IfNotPresent, Never]
  image_pull_secrets:
    description: imagePullSecrets of the Redis pods (default C(neurallog_image_pull_secrets), none).
    type: list
    elements: str
  storage_class:
    description: StorageClass of the Redis volumes when the tenant names none; empty uses the cluster default.
    type: str
  pod_security_level:
    description: Pod Security Admission level enforced, warned and audited in tenant namespaces (default C(restricted)).
    type: str
    choices: [privileged, baseline, restricted]
  common_labels:
    description: Labels put on every object (default C(neurallog_common_labels) of the globals role).
    type: dict
  cluster_domain:
    description: Cluster DNS domain, used in the Redis URL.
    type: str
  quota_defaults:
    description:
      - ResourceQuota C(hard) entries of every tenant namespace, under the tier's, the
        tenant's and the organization quota (which may override them).
      - The default allows no Services of type LoadBalancer or NodePort.
    type: dict
  ingress_domain:
    description:
      - The platform's DNS domain (C(ingress_domain) of the ingress role). Tenant C(id) may
        use the Ingress host C(<id>.api.<ingress_domain>) and names under it.
      - Default C(neurallog.com).
    type: str
  ingress_denied_annotations:
    description:
      - Regular expressions (whole key) of the Ingress annotations refused in tenant
        namespaces. The default refuses ingress-nginx snippets, C(server-alias),
        C(auth-url), C(auth-tls-match-cn), C(mirror-target)/C(mirror-host) and the
        annotations that reference Secrets or ConfigMaps of other namespaces.
    type: list
    elements: str
  redis_passwords:
    description:
      - Tenant id to the Redis password to keep (e.g. decoded from the C(redis-credentials)
        Secrets read from the cluster).
      - Pass passwords only, not whole Secrets - every value of this option is masked in
        the module's output.
    type: dict
    default: {}
  password_length:
    description: Length of generated passwords.
    type: int
    default: 32
  cluster_namespaces:
    description:
      - Namespaces read from the cluster (as C(kubernetes.core.k8s_info) returns them; only
        their names and labels are used).
      - A tenant namespace that exists labelled for another tenant (label C(tenant)) or as
        another type (label C(type)) is refused, naming it, instead of being adopted.
    type: list
    elements: dict
    default: []
attributes:
  check_mode:
    support: full
    description: The module never changes anything; it behaves the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff; apply the result to see one.
notes:
  - The module does not contact the cluster, so it serves render mode and check mode.
seealso:
  - name: Tenant onboarding
    description: docs/tenants.md in the collection.
    link: https://github.com/neurallog/neurallog.platform/blob/main/docs/tenants.md
"""

EXAMPLES = r"""
- name: Build the objects of one tenant
  neurallog.platform.tenant_resources:
    tenant:
      id: acme
      name: ACME Corp
      tier: standard
      quota: {limits.cpu: "24"}
      organizations:
        - {id: ops, mcp: true}
        - dev
      admin_groups: [acme-admins]
      member_groups: [acme-devs]
    redis_image: "{{ neurallog_image_refs['redis'] }}"
    redis_passwords: {acme: "{{ acme_redis_password }}"}
  register: __tenant_objects
  no_log: true

- name: Apply them
  ansible.builtin.include_role:
    name: neurallog.platform.k8s_apply
  vars:
    k8s_apply_name: tenant-acme
    k8s_apply_manifests: "{{ __tenant_objects.resources }}"
    k8s_apply_no_log: true
"""

RETURN = r"""
resources:
  description: Every object, in apply order (namespaces first). Contains the Redis Secrets.
  returned: success
  type: list
  elements: dict
tenants:
  description: Per tenant its id, name, tier, namespaces, root namespace, organizations, quota and whether it has Redis.
  returned: success
  type: list
  elements: dict
  sample:
    - id: acme
      name: ACME Corp
      tier: standard
      namespaces: [tenant-acme, tenant-acme-org-ops, tenant-acme-org-ops-mcp, tenant-acme-org-dev]
      root_namespace: tenant-acme
      organizations: [ops, dev]
      quota: {pods: "50", requests.cpu: "10"}
      redis: true
      ingress_hosts: [logs.acme.example]
namespaces:
  description: Every namespace of every tenant.
  returned: success
  type: list
  elements: str
generated_passwords:
  description: Ids of the tenants whose Redis password was generated in this call (no stored one was given).
  returned: success
  type: list
  elements: str
admission_resources:
  description:
    - The cluster-wide ValidatingAdmissionPolicies C(neurallog-tenant-services) and
      C(neurallog-tenant-ingresses) with their bindings, guarding every namespace labelled
      C(tenant). Apply them before the tenants.
  returned: success
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.neurallog.platform.plugins.module_utils.quantity import kubernetes_client_error
from ansible_collections.neurallog.platform.plugins.module_utils.tenant import (
    ROLE_SETTINGS,
    TenantError,
    build_resources,
)

SETTING_KEYS = tuple(ROLE_SETTINGS) + ("redis_image",)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            tenant=dict(type="dict"),
            tenants=dict(type="list", elements="dict"),
            tiers=dict(type="dict"),
            default_tier=dict(type="str"),
            organization_quota=dict(type="dict"),
            limit_range=dict(type="dict"),
            redis=dict(type="dict"),
            namespace_support=dict(type="dict"),
            dns=dict(type="dict"),
            system_namespace_labels=dict(type="dict"),
            data_namespace_labels=dict(type="dict"),
            data_access=dict(type="bool"),
            openshift=dict(type="bool"),
            oidc=dict(type="dict"),
            admin_group_format=dict(type="str"),
            member_group_format=dict(type="str"),
            redis_image=dict(type="str", required=True),
            image_pull_policy=dict(type="str",
                                   choices=["Always", "IfNotPresent", "Never"]),
            image_pull_secrets=dict(type="list", elements="str", no_log=False),
            storage_class=dict(type="str"),
            pod_security_level=dict(type="str",
                                    choices=["privileged", "baseline", "restricted"]),
            common_labels=dict(type="dict"),
            cluster_domain=dict(type="str"),
            quota_defaults=dict(type="dict"),
            ingress_domain=dict(type="str"),
            ingress_denied_annotations=dict(type="list", elements="str"),
            redis_passwords=dict(type="dict", default={}, no_log=True),
            password_length=dict(type="int", default=32, no_log=False),
            cluster_namespaces=dict(type="list", elements="dict", default=[]),
        ),
        mutually_exclusive=[("tenant", "tenants")],
        required_one_of=[("tenant", "tenants")],
        supports_check_mode=True,
    )
    missing = kubernetes_client_error()
    if missing:
        module.fail_json(msg=missing)
    params = module.params
    tenants = [params["tenant"]] if params["tenant"] is not None else params["tenants"]
    settings = dict((key, params[key]) for key in SETTING_KEYS if params[key] is not None)
    if params["password_length"] < 16:
        module.fail_json(msg="password_length: must be at least 16, got %d" % params["password_length"])
    try:
        result = build_resources(
            tenants, settings,
            passwords=params["redis_passwords"],
            password_length=params["password_length"],
            live_namespaces=params["cluster_namespaces"],
        )
    except TenantError as exc:
        module.fail_json(msg="Invalid tenant settings: %s" % exc, errors=exc.errors)
    namespaces = [ns for tenant in result["tenants"] for ns in tenant["namespaces"]]
    module.exit_json(changed=False, namespaces=namespaces, **result)


if __name__ == "__main__":
    main()
