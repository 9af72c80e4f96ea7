# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tenant isolation and data-loss rules of plugins/module_utils/tenant.py:
unambiguous namespace names, full-match validation, no system: groups,
no adoption or deletion of another tenant's namespace, prune plans."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "collections"))

from ansible_collections.neurallog.platform.plugins.module_utils import tenant as t  # noqa: E402

IMAGE = "docker.io/library/redis:7.0.15-alpine"
MANAGED = {"app.kubernetes.io/managed-by": "neurallog.platform"}


def errors_of(tenants, settings=None):
    merged = {"redis_image": IMAGE}
    merged.update(settings or {})
    with pytest.raises(t.TenantError) as info:
        t.build_resources(tenants, merged, passwords={"acme": "p" * 32})
    return info.value.errors


def build(tenants, **kwargs):
    return t.build_resources(tenants, {"redis_image": IMAGE}, passwords={}, **kwargs)


def tenant_offboard_plan(live, tenant_ids):
    from ansible_collections.neurallog.platform.plugins.filter.tenant import tenant_offboard_plan as plan
    return plan(live, tenant_ids)


def tenant_prune_plan(live, declared):
    from ansible_collections.neurallog.platform.plugins.filter.tenant import tenant_prune_plan as plan
    return plan(live, declared)


def namespace(name, tenant=None, ns_type=None, managed=True):
    labels = dict(MANAGED) if managed else {}
    if tenant is not None:
        labels["tenant"] = tenant
    if ns_type is not None:
        labels["type"] = ns_type
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


# --- 1. namespace names are unambiguous -------------------------------------

@pytest.mark.parametrize("tenant, expected", [
    ({"id": "acme-org-ops"}, "tenants[acme-org-ops].id: 'acme-org-ops' contains 'org' as a dash-separated word; "
                             "'org' and 'mcp' separate the parts of namespace names (tenant-<id>-org-<org>-mcp), "
                             "so such an id could name another tenant's or organization's namespace"),
    ({"id": "a-org"}, "tenants[a-org].id: 'a-org' contains 'org'"),
    ({"id": "org-mcp-x"}, "tenants[org-mcp-x].id: 'org-mcp-x' contains 'org' and 'mcp'"),
    ({"id": "acme", "organizations": ["ops-mcp"]}, "tenants[acme].organizations[0].id: 'ops-mcp' contains 'mcp'"),
    ({"id": "acme", "organizations": [{"id": "org-b"}]}, "tenants[acme].organizations[0].id: 'org-b' contains 'org'"),
])
def test_ids_with_separator_words_are_refused(tenant, expected):
    errors = errors_of([tenant])
    assert any(e.startswith(expected) for e in errors), errors


@pytest.mark.parametrize("tenant_id", ["organic", "acme-orgs", "mcpx", "borg-1", "123"])
def test_ids_merely_containing_the_letters_are_accepted(tenant_id):
    assert build([{"id": tenant_id, "organizations": ["corg", "mcp2"]}])["tenants"][0]["id"] == tenant_id


def test_the_reported_collisions_are_refused_together():
    # Tenant acme-org-ops = acme's organization ops; org ops-mcp = ops' MCP namespace.
    errors = errors_of([{"id": "acme", "organizations": [{"id": "ops", "mcp": True}, "ops-mcp"]},
                        {"id": "acme-org-ops"}])
    assert [e.split(":")[0] for e in errors] == ["tenants[acme].organizations[1].id", "tenants[acme-org-ops].id"]


def test_a_namespace_shared_by_two_tenants_is_refused():
    # The naming rules make this impossible from input; the check itself:
    first = {"id": "a", "namespaces": [("tenant-a", "tenant-root", None), ("tenant-a-org-x", "organization", "x")]}
    second = {"id": "b", "namespaces": [("tenant-a-org-x", "tenant-root", None)]}
    assert t.namespace_collisions([first, second]) == [
        "tenants[b]: namespace 'tenant-a-org-x' (tenant-root) is also namespace 'organization' of tenant 'a'; "
        "every namespace must belong to one tenant"]
    assert t.namespace_collisions([first]) == []


# --- 2. full matches ------------------------------------------------------------

@pytest.mark.parametrize("tenant, field", [
    ({"id": "acme\n"}, "tenants[acme\\n].id"),
    ({"id": "acme", "organizations": ["ops\n"]}, "tenants[acme].organizations[0].id"),
    ({"id": "acme", "labels": {"team": "core\n"}}, "tenants[acme].labels.team"),
    ({"id": "acme", "labels": {"team\n": "core"}}, "tenants[acme].labels.team\n"),
    ({"id": "acme", "quota": {"count/pods\n": 5}}, "tenants[acme].quota.count/pods\n"),
])
def test_a_trailing_newline_is_refused(tenant, field):
    errors = errors_of([tenant])
    assert any(e.startswith(field + ":") for e in errors), errors


def test_trailing_newline_messages():
    assert errors_of([{"id": "acme\n"}]) == [
        "tenants[acme\\n].id: 'acme\\n' is not a DNS-1123 label (lower-case letters, digits and '-', "
        "starting and ending with a letter or digit)"]
    assert errors_of([{"id": "acme", "labels": {"team": "core\n"}}]) == [
        "tenants[acme].labels.team: 'core\\n' is not a valid label value"]


# --- 3. system: groups ------------------------------------------------------------

@pytest.mark.parametrize("key, group", [
    ("admin_groups", "system:authenticated"), ("member_groups", "system:serviceaccounts"),
    ("admin_groups", "system:masters"), ("admin_groups", "System:Authenticated"),
])
def test_system_groups_are_refused(key, group):
    errors = errors_of([{"id": "acme", key: ["acme-admins", group]}])
    assert errors == ["tenants[acme].%s[1]: %r is a Kubernetes system group (prefix 'system:'); binding it would "
                      "give every member of it (e.g. every logged-in user) the tenant's rights; name the tenant's "
                      "own OIDC groups" % (key, group)]


@pytest.mark.parametrize("group", ["", " ", " acme", "acme\n", 42])
def test_blank_or_padded_groups_are_refused(group):
    errors = errors_of([{"id": "acme", "admin_groups": [group]}])
    assert len(errors) == 1 and errors[0].startswith("tenants[acme].admin_groups[0]: "), errors


def test_system_group_formats_are_refused():
    errors = errors_of([{"id": "acme"}], {"member_group_format": "system:{tenant}"})
    assert errors[0].startswith("member_group_format: 'system:{tenant}' is a Kubernetes system group")


def test_ordinary_groups_are_bound():
    resources = build([{"id": "acme", "admin_groups": ["acme-admins", "oidc:system-team"]}])["resources"]
    binding = [o for o in resources if o["kind"] == "RoleBinding" and o["metadata"]["name"] == "tenant-admin"][0]
    assert [s["name"] for s in binding["subjects"]] == ["acme-admins", "oidc:system-team"]


# --- 1. ownership of existing namespaces ----------------------------------------

def test_a_namespace_labelled_for_another_tenant_is_not_adopted():
    live = [namespace("tenant-acme-org-ops", "acme-org-ops", "tenant-root")]
    with pytest.raises(t.TenantError) as info:
        build([{"id": "acme", "organizations": ["ops"]}], live_namespaces=live)
    assert info.value.errors == [
        "tenants[acme]: namespace 'tenant-acme-org-ops' exists labelled tenant=acme-org-ops, type=tenant-root: "
        "it belongs to someone else and is not adopted as organization of tenant 'acme'"]


@pytest.mark.parametrize("labels", [("acme", "organization"), (None, "database"), ("beta", None)])
def test_a_namespace_of_another_type_or_owner_is_not_adopted(labels):
    live = [namespace("tenant-acme", labels[0], labels[1], managed=False)]
    with pytest.raises(t.TenantError):
        build([{"id": "acme"}], live_namespaces=live)


def test_own_and_unlabelled_namespaces_are_kept():
    live = [namespace("tenant-acme", "acme", "tenant-root"), namespace("tenant-acme-org-ops", "acme", "organization"),
            namespace("tenant-acme-org-dev", managed=False), namespace("tenant-other", "other", "tenant-root")]
    result = build([{"id": "acme", "organizations": ["ops", "dev"]}], live_namespaces=live)
    assert result["tenants"][0]["namespaces"] == ["tenant-acme", "tenant-acme-org-ops", "tenant-acme-org-dev"]


# --- offboard and prune plans -------------------------------------------------------

CLUSTER = [
    namespace("tenant-acme", "acme", "tenant-root"),
    namespace("tenant-acme-org-dev", "acme", "organization"),
    # acme's organization ops, taken over by a tenant acme-org-ops onboarded
    # before the naming rules (its labels were overwritten)
    namespace("tenant-acme-org-ops", "acme-org-ops", "tenant-root"),
    namespace("tenant-beta", "beta", "tenant-root"),
    namespace("tenant-beta-org-x-mcp", "beta", "mcp"),
    namespace("kube-system", managed=False),
    namespace("tenant-gamma", "gamma", "tenant-root", managed=False),  # not ours: ignored
]


def test_offboard_plan_lists_the_tenant_namespaces():
    plan = tenant_offboard_plan(CLUSTER, "beta")
    assert plan == {"tenants": {"beta": ["tenant-beta", "tenant-beta-org-x-mcp"]},
                    "namespaces": ["tenant-beta", "tenant-beta-org-x-mcp"], "conflicts": [],
                    "summary": "beta (tenant-beta, tenant-beta-org-x-mcp)"}
    assert tenant_offboard_plan(CLUSTER, ["nobody"])["summary"] == "nobody (no namespaces)"


def test_offboard_refuses_a_namespace_named_as_another_tenants():
    plan = tenant_offboard_plan(CLUSTER, ["acme-org-ops"])
    assert plan["conflicts"] == [
        "namespace 'tenant-acme-org-ops' is labelled tenant=acme-org-ops, but its name makes it a namespace of "
        "tenant 'acme' (whose root namespace 'tenant-acme' exists); it is not deleted"]


@pytest.mark.parametrize("name, ns_type", [("kube-system", "tenant-root"), ("tenant-beta-org-y", "tenant-root"),
                                           ("tenant-beta", "organization"), ("tenant-beta-org-y", None)])
def test_offboard_refuses_a_namespace_named_or_typed_otherwise(name, ns_type):
    live = [namespace("tenant-beta", "beta", "tenant-root")] if name != "tenant-beta" else []
    live.append(namespace(name, "beta", ns_type))
    plan = tenant_offboard_plan(live, ["beta"])
    assert len(plan["conflicts"]) == 1 and plan["conflicts"][0].startswith("namespace %r is labelled tenant=beta" % name)


def test_prune_plan_names_the_undeclared_tenants():
    plan = tenant_prune_plan(CLUSTER, ["beta"])
    assert plan["undeclared"] == ["acme", "acme-org-ops"]
    assert plan["tenants"]["acme"] == ["tenant-acme", "tenant-acme-org-dev"]
    assert len(plan["conflicts"]) == 1
    assert tenant_prune_plan(CLUSTER, ["acme", "acme-org-ops", "beta"])["undeclared"] == []
    assert tenant_prune_plan(CLUSTER, [])["undeclared"] == ["acme", "acme-org-ops", "beta"]
