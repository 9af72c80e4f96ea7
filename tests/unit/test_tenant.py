# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tenant onboarding logic (plugins/module_utils/tenant.py): every object
kind, every validation error, ids at the length limits, many organizations,
strict schema validation of everything generated."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import copy
import json
import os
import re
import sys

import kubernetes_validate
import pytest
from kubernetes_validate import utils as kv_utils

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "collections"))

from ansible_collections.neurallog.platform.plugins.module_utils import tenant as t  # noqa: E402

IMAGE = "docker.io/library/redis:7.0.15-alpine"
SETTINGS = {"redis_image": IMAGE}
PASSWORD = "p" * 32


def build(tenants, settings=None, passwords=None, **kwargs):
    merged = dict(SETTINGS)
    merged.update(settings or {})
    if passwords is None:
        passwords = dict((tenant["id"], PASSWORD) for tenant in tenants if isinstance(tenant, dict)
                         and isinstance(tenant.get("id"), str))
    return t.build_resources(tenants, merged, passwords=passwords, **kwargs)


def objects(tenant, **kwargs):
    return build([tenant], **kwargs)["resources"]


def find(resources, kind, namespace=None, name=None):
    found = [o for o in resources if o["kind"] == kind
             and (namespace is None or o["metadata"].get("namespace") == namespace)
             and (name is None or o["metadata"]["name"] == name)]
    return found


def one(resources, kind, namespace=None, name=None):
    found = find(resources, kind, namespace, name)
    assert len(found) == 1, "%s %s/%s: %d found" % (kind, namespace, name, len(found))
    return found[0]


def errors_of(tenants, settings=None):
    with pytest.raises(t.TenantError) as info:
        build(tenants, settings)
    return info.value.errors


ACME = {
    "id": "acme",
    "name": "ACME Corp",
    "organizations": [{"id": "ops", "mcp": True}, "dev"],
    "admin_groups": ["acme-admins"],
    "member_groups": ["acme-devs", "acme-ops"],
    "labels": {"cost-centre": "42"},
}


@pytest.mark.parametrize("given, size", [("1gb", 1024 ** 3), ("1g", 10 ** 9), ("512mb", 512 * 1024 ** 2), ("100", 100)])
def test_redis_sizes(given, size):
    assert t.redis_size_bytes(given) == size


# --- generated objects -----------------------------------------------------

def test_namespaces_follow_the_spec_layout_and_labels():
    resources = objects(ACME)
    namespaces = find(resources, "Namespace")
    assert [n["metadata"]["name"] for n in namespaces] == [
        "tenant-acme", "tenant-acme-org-ops", "tenant-acme-org-ops-mcp", "tenant-acme-org-dev"]
    assert [n["metadata"]["labels"]["type"] for n in namespaces] == ["tenant-root", "organization", "mcp", "organization"]
    for ns in namespaces:
        labels = ns["metadata"]["labels"]
        assert labels["tenant"] == "acme"
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        assert labels["pod-security.kubernetes.io/warn"] == "restricted"
        assert labels["cost-centre"] == "42"
        assert labels["app.kubernetes.io/managed-by"] == "neurallog.platform"
        assert ns["metadata"]["annotations"]["neurallog.io/tenant-name"] == "ACME Corp"
    assert namespaces[1]["metadata"]["labels"]["organization"] == "ops"
    # Namespaces lead the list so that everything inside them can be applied.
    kinds = [o["kind"] for o in resources]
    assert kinds[:4] == ["Namespace"] * 4 and "Namespace" not in kinds[4:]


def test_numeric_tenant_id_of_the_spec_example():
    resources = objects({"id": 123})
    ns = one(resources, "Namespace")
    assert ns["metadata"]["name"] == "tenant-123"
    assert ns["metadata"]["labels"]["tenant"] == "123"


def test_resource_quota_defaults_to_the_spec():
    resources = objects(ACME)
    hard = one(resources, "ResourceQuota", "tenant-acme")["spec"]["hard"]
    assert hard["pods"] == "50"
    assert hard["requests.cpu"] == "10"
    assert hard["requests.memory"] == "20Gi"
    assert hard["limits.cpu"] == "20"
    assert hard["limits.memory"] == "40Gi"
    assert hard["requests.storage"] == "100Gi"
    assert all(isinstance(v, str) for v in hard.values())
    org_hard = one(resources, "ResourceQuota", "tenant-acme-org-dev")["spec"]["hard"]
    assert org_hard["pods"] == "20" and org_hard["requests.cpu"] == "4"


def test_tier_and_tenant_quota_overrides():
    tenant = dict(ACME, tier="large", quota={"limits.cpu": "100", "requests.memory": "81920Mi"},
                  organization_quota={"pods": 5})
    resources = objects(tenant)
    hard = one(resources, "ResourceQuota", "tenant-acme")["spec"]["hard"]
    assert hard["pods"] == "200"            # from the tier
    assert hard["limits.cpu"] == "100"      # tenant override
    assert hard["requests.memory"] == "80Gi"  # normalised as the API server stores it
    assert one(resources, "ResourceQuota", "tenant-acme-org-ops")["spec"]["hard"]["pods"] == "5"


def test_custom_tiers_from_settings():
    tiers = {"tiny": {"pods": 10, "requests.cpu": "2", "requests.memory": "4Gi", "limits.cpu": "2",
                      "limits.memory": "4Gi", "requests.storage": "20Gi"}}
    resources = objects({"id": "small-co", "tier": "tiny"}, settings={"tiers": tiers})
    assert one(resources, "ResourceQuota", "tenant-small-co")["spec"]["hard"]["pods"] == "10"


def test_limit_range_gives_defaults_to_pods_without_requests():
    limit = one(objects(ACME), "LimitRange", "tenant-acme-org-ops")["spec"]["limits"][0]
    assert limit == {"type": "Container", "default": {"cpu": "500m", "memory": "512Mi"},
                     "defaultRequest": {"cpu": "100m", "memory": "128Mi"}}


def test_network_policy_is_the_spec_plus_dns():
    resources = objects(ACME)
    policies = find(resources, "NetworkPolicy")
    assert len(policies) == 4
    spec = one(resources, "NetworkPolicy", "tenant-acme")["spec"]
    assert spec["podSelector"] == {}
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == [{"from": [
        {"namespaceSelector": {"matchLabels": {"tenant": "acme"}}},
        {"namespaceSelector": {"matchLabels": {"neurallog-system": "true"}}}]}]
    # The spec also allows egress to neurallog-data; that needs data_access.
    assert spec["egress"][0] == {"to": [
        {"namespaceSelector": {"matchLabels": {"tenant": "acme"}}},
        {"namespaceSelector": {"matchLabels": {"neurallog-system": "true"}}}]}
    dns = spec["egress"][1]
    assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    assert dns["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                          "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]
    # An empty rule would allow everything and never compares equal on re-apply.
    for rule in spec["egress"] + spec["ingress"]:
        assert rule and (rule.get("to") or rule.get("from"))


def test_data_access_adds_egress_to_the_data_namespaces():
    spec = one(objects(ACME, settings={"data_access": True}), "NetworkPolicy", "tenant-acme")["spec"]
    assert spec["egress"][0]["to"][-1] == {"namespaceSelector": {"matchLabels": {"neurallog-data": "true"}}}
    assert len(spec["egress"][0]["to"]) == 3


def test_data_access_must_be_a_bool():
    with pytest.raises(t.TenantError, match="data_access: must be true or false"):
        objects(ACME, settings={"data_access": "yes"})


def test_dns_egress_can_be_turned_off():
    spec = one(objects(ACME, settings={"dns": {"enabled": False}}), "NetworkPolicy", "tenant-acme")["spec"]
    assert len(spec["egress"]) == 1


def test_rbac_is_namespaced_and_bound_to_the_tenant_groups():
    resources = objects(ACME)
    assert not [o for o in resources if o["kind"].startswith("Cluster")]
    for ns in ("tenant-acme", "tenant-acme-org-ops", "tenant-acme-org-ops-mcp", "tenant-acme-org-dev"):
        admin = one(resources, "RoleBinding", ns, "tenant-admin")
        assert admin["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant-admin"}
        assert [s["name"] for s in admin["subjects"]] == ["acme-admins"]
        assert all(s["kind"] == "Group" for s in admin["subjects"])
        member = one(resources, "RoleBinding", ns, "tenant-member")
        assert [s["name"] for s in member["subjects"]] == ["acme-devs", "acme-ops"]
    admin_rules = one(resources, "Role", "tenant-acme", "tenant-admin")["rules"]
    member_rules = one(resources, "Role", "tenant-acme", "tenant-member")["rules"]
    writable = set(r for rule in admin_rules if "create" in rule["verbs"] for r in rule["resources"])
    assert "secrets" in writable
    assert not writable & {"resourcequotas", "limitranges", "networkpolicies"}
    assert "secrets" not in set(r for rule in member_rules for r in rule["resources"])
    assert all(set(rule["verbs"]) <= {"get", "list", "watch"} for rule in member_rules)


def test_default_groups_and_no_binding_for_empty_groups():
    resources = objects({"id": "solo", "member_groups": []})
    admin = one(resources, "RoleBinding", "tenant-solo", "tenant-admin")
    assert admin["subjects"][0]["name"] == "tenant-solo-admins"
    assert not find(resources, "RoleBinding", "tenant-solo", "tenant-member")
    assert one(resources, "Role", "tenant-solo", "tenant-member")


def test_redis_objects():
    resources = objects(ACME)
    config = one(resources, "ConfigMap", "tenant-acme", "redis-config")
    assert config["data"]["redis.conf"] == (
        "appendonly yes\nappendfsync everysec\nmaxmemory 1gb\nmaxmemory-policy allkeys-lru\n"
        "include /etc/redis/auth/auth.conf\n")
    assert PASSWORD not in json.dumps(config)
    secret = one(resources, "Secret", "tenant-acme", "redis-credentials")
    assert "stringData" not in secret
    assert base64.b64decode(secret["data"]["password"]).decode() == PASSWORD
    assert base64.b64decode(secret["data"]["username"]).decode() == "neurallog"
    assert base64.b64decode(secret["data"]["url"]).decode() == (
        "redis://neurallog:%s@redis.tenant-acme.svc.cluster.local:6379" % PASSWORD)
    assert base64.b64decode(secret["data"]["auth.conf"]).decode() == (
        "user default off resetchannels -@all\n"
        "user neurallog reset on >%s ~* &* +@all -@admin -@dangerous +info\n" % PASSWORD)
    service = one(resources, "Service", "tenant-acme", "redis")
    assert service["spec"]["ports"] == [{"name": "redis", "port": 6379, "targetPort": "redis", "protocol": "TCP"}]
    sts = one(resources, "StatefulSet", "tenant-acme", "redis")
    spec = sts["spec"]
    assert spec["replicas"] == 1 and spec["serviceName"] == "redis"
    assert spec["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "10Gi"
    container = spec["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE
    # The password is in no argument and no environment variable.
    assert container["args"] == ["/usr/local/etc/redis/redis.conf"]
    assert "env" not in container and PASSWORD not in json.dumps(sts)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert sorted(m["mountPath"] for m in container["volumeMounts"]) == [
        "/data", "/etc/redis/auth", "/usr/local/etc/redis"]
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    assert {"name": "redis-auth", "secret": {"secretName": "redis-credentials", "defaultMode": 0o440,
                                             "items": [{"key": "auth.conf", "path": "auth.conf"}]}} in pod["volumes"]
    assert container["resources"] == {"requests": {"cpu": "100m", "memory": "1280Mi"},
                                      "limits": {"cpu": "1", "memory": "1536Mi"}}
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    # Redis comes after the namespaces and its Secret before the StatefulSet.
    kinds = [o["kind"] for o in resources]
    assert kinds.index("Secret") < kinds.index("StatefulSet")


def test_redis_settings_per_tenant_and_storage_class():
    tenant = dict(ACME, redis={"storage_size": "20Gi", "maxmemory": "512mb", "storage_class": "fast"})
    resources = objects(tenant, settings={"storage_class": "standard", "image_pull_secrets": ["regcred"]})
    sts = one(resources, "StatefulSet")
    claim = sts["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "20Gi"
    assert claim["storageClassName"] == "fast"
    assert sts["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert "maxmemory 512mb\n" in one(resources, "ConfigMap")["data"]["redis.conf"]


def test_redis_can_be_disabled():
    resources = objects(dict(ACME, redis={"enabled": False}))
    assert not find(resources, "StatefulSet") and not find(resources, "Secret")
    assert build([dict(ACME, redis={"enabled": False})], passwords={})["generated_passwords"] == []


def test_redis_config_change_rolls_the_pod():
    first = one(objects(ACME), "StatefulSet")["spec"]["template"]["metadata"]["annotations"]
    second = one(objects(dict(ACME, redis={"maxmemory": "512mb"})), "StatefulSet")["spec"]["template"]["metadata"]["annotations"]
    assert first["neurallog.io/config-hash"] != second["neurallog.io/config-hash"]


# --- passwords -------------------------------------------------------------

def test_passwords_are_generated_once_and_kept():
    first = build([ACME], passwords={})
    assert first["generated_passwords"] == ["acme"]
    secret = one(first["resources"], "Secret")
    password = base64.b64decode(secret["data"]["password"]).decode()
    assert len(password) == 32 and password.isalnum()
    # The Secret as the cluster returns it keeps the password.
    again = build([ACME], passwords={}, existing_secrets=[dict(secret, kind="Secret")])
    assert again["generated_passwords"] == []
    assert one(again["resources"], "Secret")["data"] == secret["data"]
    explicit = build([ACME], passwords={"acme": password})
    assert explicit["resources"] == first["resources"]


def test_two_tenants_get_different_passwords():
    result = build([ACME, {"id": "beta"}], passwords={})
    values = set(s["data"]["password"] for s in find(result["resources"], "Secret"))
    assert len(values) == 2


def test_generation_is_deterministic():
    assert objects(ACME) == objects(copy.deepcopy(ACME))


def test_summary_has_no_secret():
    result = build([ACME])
    assert result["tenants"][0]["namespaces"][0] == "tenant-acme"
    assert PASSWORD not in json.dumps(result["tenants"])


# --- namespace support -----------------------------------------------------

def test_namespace_support_disabled_keeps_everything_in_the_root():
    resources = objects(ACME, settings={"namespace_support": {"enabled": False}})
    assert [n["metadata"]["name"] for n in find(resources, "Namespace")] == ["tenant-acme"]


def test_namespace_support_default_gives_every_org_an_mcp_namespace_unless_it_says_no():
    tenant = dict(ACME, organizations=["a", {"id": "b", "mcp": False}],
                  namespace_support={"default": True})
    names = [n["metadata"]["name"] for n in find(objects(tenant), "Namespace")]
    assert names == ["tenant-acme", "tenant-acme-org-a", "tenant-acme-org-a-mcp", "tenant-acme-org-b"]


# --- length limits and many organizations ---------------------------------

def test_ids_at_the_namespace_length_limit():
    # tenant-{id}-org-{org}-mcp: 7 + len(id) + 5 + len(org) + 4 = 63
    tenant_id, org_id = "t" * 30, "o" * 17
    resources = objects({"id": tenant_id, "organizations": [{"id": org_id, "mcp": True}]})
    longest = max(len(n["metadata"]["name"]) for n in find(resources, "Namespace"))
    assert longest == 63
    errors = errors_of([{"id": tenant_id, "organizations": [{"id": org_id + "x", "mcp": True}]}])
    assert errors == ["tenants[%s]: namespace 'tenant-%s-org-%sx-mcp' is 64 characters, the limit is 63; "
                      "shorten the tenant or organization id" % (tenant_id, tenant_id, org_id)]
    # Without the MCP namespace the same ids fit.
    assert objects({"id": tenant_id, "organizations": [org_id + "xxxx"]})


def test_longest_tenant_id_without_organizations():
    assert one(objects({"id": "a" * 56}), "Namespace")["metadata"]["name"] == "tenant-" + "a" * 56
    assert "is 64 characters" in errors_of([{"id": "a" * 57}])[0]


def test_many_organizations():
    orgs = [{"id": "org%d" % i, "mcp": i % 2 == 0} for i in range(60)]
    resources = objects({"id": "big", "organizations": orgs})
    namespaces = find(resources, "Namespace")
    assert len(namespaces) == 1 + 60 + 30
    assert len(set(n["metadata"]["name"] for n in namespaces)) == len(namespaces)
    for kind in ("ResourceQuota", "LimitRange", "NetworkPolicy"):
        assert len(find(resources, kind)) == len(namespaces)
    assert len(find(resources, "StatefulSet")) == 1


# --- validation errors -----------------------------------------------------

@pytest.mark.parametrize("tenant, expected", [
    ({"id": "Acme_1"}, "tenants[Acme_1].id: 'Acme_1' is not a DNS-1123 label"),
    ({"id": "-acme"}, "tenants[-acme].id: '-acme' is not a DNS-1123 label"),
    ({"name": "no id"}, "tenants[?].id: None is not a DNS-1123 label"),
    ({"id": "acme", "colour": "red"}, "tenants[acme]: unknown keys colour; allowed: id, name, organizations"),
    ({"id": "acme", "organizations": ["ops", "ops"]}, "tenants[acme].organizations[1].id: duplicate organization id 'ops'"),
    ({"id": "acme", "organizations": [{"id": "Ops"}]}, "tenants[acme].organizations[0].id: 'Ops' is not a DNS-1123 label"),
    ({"id": "acme", "organizations": [{"id": "ops", "mpc": True}]}, "tenants[acme].organizations[0]: unknown keys mpc"),
    ({"id": "acme", "organizations": [{"id": "ops", "mcp": "yes"}]}, "tenants[acme].organizations[0].mcp: must be true or false"),
    ({"id": "acme", "organizations": "ops"}, "tenants[acme].organizations: must be a list"),
    ({"id": "acme", "tier": "gold"}, "tenants[acme].tier: 'gold' is not one of large, small, standard"),
    ({"id": "acme", "quota": {"requests.cpu": "lots"}}, "tenants[acme].quota.requests.cpu: 'lots' is not a Kubernetes quantity"),
    ({"id": "acme", "quota": {"limits.cpu": "5"}}, "tenants[acme].quota.limits.cpu: 5 is less than requests.cpu 10"),
    ({"id": "acme", "quota": {"limits.memory": "10Gi"}}, "tenants[acme].quota.limits.memory: 10Gi is less than requests.memory 20Gi"),
    ({"id": "acme", "quota": {"cpus": "5"}}, "tenants[acme].quota.cpus: unknown quota name"),
    ({"id": "acme", "quota": {"pods": "-1"}}, "tenants[acme].quota.pods: must not be negative"),
    ({"id": "acme", "organization_quota": {"requests.memory": "1Gi", "limits.memory": "512Mi"}},
     "tenants[acme].organization_quota.limits.memory: 512Mi is less than requests.memory 1Gi"),
    ({"id": "acme", "quota": {"requests.storage": "5Gi"}},
     "tenants[acme].redis: needs requests.storage 10Gi but tenants[acme].quota allows 5Gi"),
    ({"id": "acme", "quota": {"requests.memory": "1Gi", "limits.memory": "1Gi"}},
     "tenants[acme].redis: needs requests.memory 1280Mi but tenants[acme].quota allows 1Gi"),
    ({"id": "acme", "redis": {"maxmemory": "2gb"}},
     "tenants[acme].redis.resources.limits.memory: 1536Mi leaves no room above maxmemory 2gb"),
    ({"id": "acme", "redis": {"maxmemory_policy": "lru"}}, "tenants[acme].redis.maxmemory_policy: 'lru' is not one of"),
    ({"id": "acme", "redis": {"appendfsync": "sometimes"}}, "tenants[acme].redis.appendfsync: 'sometimes' is not one of"),
    ({"id": "acme", "redis": {"size": "1Gi"}}, "tenants[acme].redis: unknown keys size"),
    ({"id": "acme", "redis": {"storage_size": "ten"}}, "tenants[acme].redis.storage_size: 'ten' is not a Kubernetes quantity"),
    ({"id": "acme", "redis": {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}},
     "tenants[acme].redis.resources.limits.cpu: 1 is less than requests.cpu 2"),
    ({"id": "acme", "admin_groups": "admins"}, "tenants[acme].admin_groups: must be a list of group names"),
    ({"id": "acme", "labels": {"tenant": "other"}}, "tenants[acme].labels.tenant: 'tenant' is set by the collection"),
    ({"id": "acme", "labels": {"pod-security.kubernetes.io/enforce": "privileged"}},
     "tenants[acme].labels.pod-security.kubernetes.io/enforce: 'pod-security.kubernetes.io/enforce' is set by the collection"),
    ({"id": "acme", "labels": {"team": 42}}, "tenants[acme].labels.team: label values must be strings"),
    ({"id": "acme", "labels": {"bad key!": "x"}}, "tenants[acme].labels.bad key!: 'bad key!' is not a valid label key"),
    ({"id": "acme", "namespace_support": {"enabled": "yes"}}, "tenants[acme].namespace_support: must be a mapping"),
])
def test_validation_errors_name_the_field(tenant, expected):
    errors = errors_of([tenant])
    assert any(e.startswith(expected) for e in errors), errors


def test_all_errors_are_reported_together():
    errors = errors_of([{"id": "ok"}, {"id": "Bad"}, {"id": "two", "tier": "x", "organizations": ["a", "a"]}])
    assert len(errors) == 3
    assert "Bad" in errors[0] and "duplicate" in errors[1] and "tier" in errors[2]


def test_duplicate_tenants_are_refused():
    assert errors_of([{"id": "acme"}, {"id": "acme"}]) == ["tenants[acme].id: declared twice (entries 0 and 1)"]


@pytest.mark.parametrize("settings, expected", [
    ({"redis_image": ""}, "redis_image: required"),
    ({"redis_image": "redis:latest"}, "redis_image: 'redis:latest' must be pinned"),
    ({"redis_image": "redis"}, "redis_image: 'redis' must be pinned"),
    ({"default_tier": "gold"}, "default_tier: 'gold' is not one of the tiers"),
    ({"pod_security_level": "strict"}, "pod_security_level: 'strict' is not one of"),
    ({"tiers": {"standard": {"pods": "many"}}}, "tiers.standard.pods: 'many' is not a Kubernetes quantity"),
    ({"limit_range": {"default": {"cpu": "50m"}}}, "limit_range.limits.cpu: 50m is less than requests.cpu 100m"),
    ({"limit_range": {"extra": {}}}, "limit_range: unknown keys extra"),
    ({"admin_group_format": "admins"}, "admin_group_format: must be a string containing '{tenant}'"),
])
def test_invalid_settings(settings, expected):
    errors = errors_of([{"id": "acme"}], settings)
    assert any(e.startswith(expected) for e in errors), errors


def test_limit_range_must_fit_the_quota():
    errors = errors_of([{"id": "acme", "organization_quota": {"limits.cpu": "100m", "requests.cpu": "100m"}}])
    assert errors == ["limit_range.default.cpu: needs limits.cpu 500m but tenants[acme].organization_quota allows 100m"]


def test_a_rejected_tenant_produces_no_objects():
    with pytest.raises(t.TenantError):
        build([ACME, {"id": "Bad"}])


# --- schemas ----------------------------------------------------------------

def _versions():
    def key(version):
        return tuple(int(part) for part in re.findall(r"\d+", version)[:3])
    return [v for v in sorted(set(kv_utils.all_versions()), key=key) if key(v) >= (1, 30, 0)]


@pytest.mark.parametrize("version", [_versions()[0], _versions()[-1]])
def test_every_object_validates_strictly(version):
    tenants = [
        ACME,
        {"id": "beta", "tier": "small", "organizations": ["a", "b", "c"], "redis": {"storage_size": "20Gi"},
         "quota": {"count/deployments.apps": 10, "standard.storageclass.storage.k8s.io/requests.storage": "40Gi"}},
        {"id": "gamma", "redis": {"enabled": False}, "admin_groups": []},
    ]
    settings = {"image_pull_secrets": ["regcred"], "limit_range": {"max": {"cpu": "4", "memory": "8Gi"}}}
    resources = build(tenants, settings)["resources"]
    assert len(resources) > 60
    for obj in resources:
        kubernetes_validate.validate(obj, version, strict=True)


def test_strict_validation_catches_a_broken_object():
    broken = copy.deepcopy(one(objects(ACME), "NetworkPolicy", "tenant-acme"))
    broken["spec"]["egress"][1]["ports"][0]["protocl"] = "UDP"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, _versions()[-1], strict=True)


# --- what tenant admins may do (security review, defect 4) -----------------

def _rules(resources, namespace="tenant-acme", role="tenant-admin"):
    return one(resources, "Role", namespace, role)["rules"]


def _verbs(rules, group, resource):
    return set(v for rule in rules if group in rule["apiGroups"] and resource in rule["resources"]
               for v in rule["verbs"])


def test_admin_rules_list_their_verbs():
    for rules in (_rules(objects(ACME)), _rules(objects(ACME), role="tenant-member")):
        for rule in rules:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"], rule
            assert not set(rule["verbs"]) & {"impersonate", "deletecollection", "escalate", "bind",
                                             "approve", "sign"}, rule
    rules = _rules(objects(ACME))
    assert _verbs(rules, "", "secrets") == {"get", "list", "watch", "create", "update", "patch", "delete"}
    assert _verbs(rules, "", "serviceaccounts") == {"get", "list", "watch", "create", "update", "patch", "delete"}
    assert _verbs(rules, "", "pods/exec") == {"get", "create"}
    assert _verbs(rules, "apps", "deployments/scale") == {"get", "update", "patch"}
    assert _verbs(rules, "networking.k8s.io", "ingresses") >= {"create", "update", "patch", "delete"}


def test_admins_read_but_do_not_write_endpoints_and_boundaries():
    rules = _rules(objects(ACME))
    for group, resource in (("", "endpoints"), ("", "resourcequotas"), ("", "limitranges"),
                            ("networking.k8s.io", "networkpolicies")):
        assert _verbs(rules, group, resource) == {"get", "list", "watch"}, resource
    granted = set(r for rule in rules for r in rule["resources"])
    # Subresources that would bypass the boundary are not granted.
    assert not granted & {"services/status", "serviceaccounts/token", "endpointslices", "namespaces",
                          "roles", "rolebindings"}


def test_no_loadbalancer_or_nodeport_services_by_default():
    resources = objects(ACME)
    quotas = find(resources, "ResourceQuota")
    assert len(quotas) == 4
    for quota in quotas:
        assert quota["spec"]["hard"]["services.loadbalancers"] == "0"
        assert quota["spec"]["hard"]["services.nodeports"] == "0"


def test_a_tenant_or_tier_may_allow_loadbalancers():
    tenant = dict(ACME, quota={"services.loadbalancers": 1, "services.nodeports": 2},
                  organization_quota={"services.nodeports": 1})
    resources = objects(tenant)
    root = one(resources, "ResourceQuota", "tenant-acme")["spec"]["hard"]
    assert (root["services.loadbalancers"], root["services.nodeports"]) == ("1", "2")
    org = one(resources, "ResourceQuota", "tenant-acme-org-dev")["spec"]["hard"]
    assert (org["services.loadbalancers"], org["services.nodeports"]) == ("0", "1")
    tiers = dict(t.DEFAULT_TIERS, standard=dict(t.DEFAULT_TIERS["standard"], **{"services.nodeports": 3}))
    hard = one(objects({"id": "acme"}, settings={"tiers": tiers}), "ResourceQuota", "tenant-acme")["spec"]["hard"]
    assert hard["services.nodeports"] == "3" and hard["services.loadbalancers"] == "0"


@pytest.mark.parametrize("settings, expected", [
    ({"quota_defaults": {"services.lb": 0}}, "quota_defaults.services.lb: unknown quota name"),
    ({"quota_defaults": {"services.nodeports": -1}}, "quota_defaults.services.nodeports: must not be negative"),
    ({"ingress_domain": "Neurallog.COM"}, "ingress_domain: 'Neurallog.COM' is not a DNS name"),
    ({"ingress_domain": "localhost"}, "ingress_domain: 'localhost' is not a DNS name"),
    ({"ingress_denied_annotations": ["a(b"]}, "ingress_denied_annotations[0]: 'a(b' is not a regular expression"),
    ({"ingress_denied_annotations": "snippet"}, "ingress_denied_annotations: must be a list"),
])
def test_invalid_admission_settings(settings, expected):
    errors = errors_of([{"id": "acme"}], settings)
    assert any(e.startswith(expected) for e in errors), errors


def test_tenant_ingress_hosts_are_written_on_every_namespace():
    tenant = dict(ACME, ingress_hosts=["logs.acme.example", "*.acme.example"])
    result = build([tenant], {"ingress_domain": "neurallog.test"})
    for ns in find(result["resources"], "Namespace"):
        assert ns["metadata"]["annotations"][t.INGRESS_HOSTS_ANNOTATION] == "logs.acme.example,*.acme.example"
    assert result["tenants"][0]["ingress_hosts"] == ["logs.acme.example", "*.acme.example"]
    # Without extra hosts there is no annotation (the policy then allows only the tenant's own).
    plain = build([{"id": "beta"}])["resources"]
    assert t.INGRESS_HOSTS_ANNOTATION not in one(plain, "Namespace")["metadata"]["annotations"]


@pytest.mark.parametrize("hosts, expected", [
    ("logs.acme.example", "tenants[acme].ingress_hosts: must be a list of host names"),
    (["Logs.Acme.example"], "tenants[acme].ingress_hosts[0]: 'Logs.Acme.example' is not a host name"),
    (["localhost"], "tenants[acme].ingress_hosts[0]: 'localhost' is not a host name with a domain"),
    (["*.*.acme.example"], "tenants[acme].ingress_hosts[0]: '*.*.acme.example' is not a host name"),
    (["api.neurallog.com"], "tenants[acme].ingress_hosts[0]: 'api.neurallog.com' is in the platform domain "
                            "neurallog.com; tenant acme already has acme.api.neurallog.com and "
                            "*.acme.api.neurallog.com"),
    (["beta.api.neurallog.com"], "tenants[acme].ingress_hosts[0]: 'beta.api.neurallog.com' is in the platform"),
    (["*.neurallog.com"], "tenants[acme].ingress_hosts[0]: '*.neurallog.com' is in the platform domain"),
    (["a.example.org", "a.example.org"], "tenants[acme].ingress_hosts[1]: 'a.example.org' is listed twice"),
])
def test_invalid_ingress_hosts(hosts, expected):
    errors = errors_of([dict(ACME, ingress_hosts=hosts)])
    assert any(e.startswith(expected) for e in errors), errors


def test_an_ingress_host_wildcard_may_not_cover_the_platform_domain():
    errors = errors_of([dict(ACME, ingress_hosts=["*.example.org"])], {"ingress_domain": "logs.example.org"})
    assert errors[0].startswith("tenants[acme].ingress_hosts[0]: '*.example.org' is in the platform domain "
                                "logs.example.org"), errors


def test_two_tenants_cannot_claim_the_same_ingress_host():
    errors = errors_of([dict(ACME, ingress_hosts=["*.shared.example"]),
                        {"id": "beta", "ingress_hosts": ["logs.shared.example"]}])
    assert errors == ["tenants[beta].ingress_hosts: 'logs.shared.example' overlaps '*.shared.example' of "
                      "tenant acme; an Ingress host belongs to one tenant"]
    build([dict(ACME, ingress_hosts=["*.a.example"]), {"id": "beta", "ingress_hosts": ["a.example"]}])


@pytest.mark.parametrize("pattern, host, covered", [
    ("acme.api.x.test", "acme.api.x.test", True),
    ("*.acme.api.x.test", "www.acme.api.x.test", True),
    ("*.acme.api.x.test", "*.acme.api.x.test", True),
    ("*.acme.api.x.test", "acme.api.x.test", False),
    ("*.acme.api.x.test", "evilacme.api.x.test", False),
    ("acme.api.x.test", "beta.api.x.test", False),
    ("*.acme.api.x.test", "*.api.x.test", False),
])
def test_host_cover_rule(pattern, host, covered):
    assert t._host_covers(pattern, host) is covered


def _policy(result, name):
    return one(result["admission_resources"], "ValidatingAdmissionPolicy", None, name)


def test_admission_policies_guard_every_tenant_namespace_once():
    result = build([ACME, {"id": "beta"}], {"ingress_domain": "neurallog.test"})
    admission = result["admission_resources"]
    # One policy and one binding per kind for every tenant, not one per tenant;
    # cluster-wide objects stay out of the tenant list.
    assert [(o["kind"], o["metadata"]["name"]) for o in admission] == [
        ("ValidatingAdmissionPolicy", "neurallog-tenant-services"),
        ("ValidatingAdmissionPolicyBinding", "neurallog-tenant-services"),
        ("ValidatingAdmissionPolicy", "neurallog-tenant-ingresses"),
        ("ValidatingAdmissionPolicyBinding", "neurallog-tenant-ingresses"),
    ]
    assert admission == build([{"id": "other"}], {"ingress_domain": "neurallog.test"})["admission_resources"]
    assert not [o for o in result["resources"] if o["kind"].startswith("ValidatingAdmission")]
    selector = {"matchExpressions": [{"key": "tenant", "operator": "Exists"}]}
    for obj in admission:
        assert "namespace" not in obj["metadata"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/component"] == "tenant-admission"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "neurallog.platform"
        if obj["kind"] == "ValidatingAdmissionPolicyBinding":
            assert obj["spec"]["validationActions"] == ["Deny"]
            assert obj["spec"]["policyName"] == obj["metadata"]["name"]
            assert obj["spec"]["matchResources"]["namespaceSelector"] == selector
        else:
            assert obj["spec"]["failurePolicy"] == "Fail"
            assert obj["spec"]["matchConstraints"]["namespaceSelector"] == selector
            assert obj["spec"]["matchConstraints"]["resourceRules"][0]["operations"] == ["CREATE", "UPDATE"]


def test_ingress_policy_uses_the_platform_domain_and_the_namespace_allow_list():
    result = build([ACME], {"ingress_domain": "logs.example.org"})
    variables = dict((v["name"], v["expression"]) for v in _policy(result, "neurallog-tenant-ingresses")["spec"]["variables"])
    assert variables["tenant"] == "namespaceObject.metadata.labels['tenant']"
    assert variables["ownHost"] == "variables.tenant + '.api.' + 'logs.example.org'"
    assert "namespaceObject.metadata.annotations['neurallog.io/ingress-hosts'].split(',')" in variables["allowedHosts"]


def test_denied_annotation_expression_is_one_anchored_regex():
    result = build([ACME], {"ingress_denied_annotations": [r"example\.com/it's"]})
    variables = dict((v["name"], v["expression"]) for v in _policy(result, "neurallog-tenant-ingresses")["spec"]["variables"])
    # Backslashes and quotes are escaped for CEL: the CEL string holds the regex itself.
    assert variables["deniedAnnotations"].endswith(r"k.matches('^((?:example\\.com/it\'s))$')) : []")


def test_default_denied_annotations_match_the_dangerous_ones():
    pattern = re.compile("^(%s)$" % "|".join("(?:%s)" % p for p in t.DEFAULT_DENIED_ANNOTATIONS))
    for key in ("nginx.ingress.kubernetes.io/configuration-snippet", "nginx.ingress.kubernetes.io/server-snippet",
                "nginx.ingress.kubernetes.io/auth-snippet", "nginx.ingress.kubernetes.io/stream-snippet",
                "nginx.ingress.kubernetes.io/modsecurity-snippet", "nginx.org/server-snippets",
                "nginx.org/location-snippets", "nginx.ingress.kubernetes.io/server-alias",
                "nginx.ingress.kubernetes.io/auth-url", "nginx.ingress.kubernetes.io/auth-tls-match-cn",
                "nginx.ingress.kubernetes.io/mirror-target", "nginx.ingress.kubernetes.io/auth-tls-secret",
                "nginx.ingress.kubernetes.io/proxy-ssl-secret"):
        assert pattern.match(key), key
    for key in ("nginx.ingress.kubernetes.io/proxy-body-size", "nginx.ingress.kubernetes.io/rewrite-target",
                "cert-manager.io/cluster-issuer", "nginx.ingress.kubernetes.io/ssl-redirect"):
        assert not pattern.match(key), key


def test_role_defaults_match_the_module_defaults():
    import yaml
    path = os.path.join(os.path.dirname(__file__), "..", "..", "roles", "tenant", "defaults", "main.yml")
    with open(path) as handle:
        defaults = yaml.safe_load(handle)
    assert defaults["tenant_quota_defaults"] == t.DEFAULT_SETTINGS["quota_defaults"]
    assert defaults["tenant_ingress_denied_annotations"] == t.DEFAULT_DENIED_ANNOTATIONS


@pytest.mark.parametrize("version", [_versions()[0], _versions()[-1]])
def test_admission_objects_validate_strictly(version):
    for obj in build([ACME])["admission_resources"]:
        kubernetes_validate.validate(obj, version, strict=True)


def test_admission_objects_have_no_empty_fields():
    """The API server drops empty lists and mappings: a declared one never
    compares equal, so every reconcile would re-apply the object."""
    def empties(value, path=""):
        if isinstance(value, dict):
            found = [path] if not value and path else []
            return found + [e for k, v in value.items() for e in empties(v, "%s.%s" % (path, k))]
        if isinstance(value, list):
            found = [path] if not value else []
            return found + [e for i, v in enumerate(value) for e in empties(v, "%s[%d]" % (path, i))]
        return []
    for obj in build([ACME])["admission_resources"]:
        assert empties(obj) == [], obj["metadata"]["name"]
