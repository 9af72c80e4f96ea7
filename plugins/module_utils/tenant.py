# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tenant onboarding: validate tenant descriptions and build their objects.

Pure Python (no cluster access), shared by the ``tenant_resources`` module
and its unit tests. ``build_resources`` is the entry point: it validates
every tenant first (all errors at once, each naming its field) and only then
generates the ordered list of Kubernetes objects.

Generated objects are written the way the API server stores them (canonical
quantities, Secret ``data`` in base64, explicit ports and protocols, no
empty rules) so that applying them again changes nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import copy
import json
import os
import re

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML comes with ansible-core
    yaml = None

try:
    import jinja2
except ImportError:  # pragma: no cover - Jinja2 comes with ansible-core
    jinja2 = None

from ansible_collections.neurallog.platform.plugins.module_utils.data_services import (
    REDIS_SERVICES_RULES,
    REDIS_SERVICES_USER,
    redis_acl_config,
)
from ansible_collections.neurallog.platform.plugins.module_utils.manifests import (
    generate_password,
    pending_objects,
    stamp_applied_hash,
)
from ansible_collections.neurallog.platform.plugins.module_utils.merge import merge
from ansible_collections.neurallog.platform.plugins.module_utils import oidc as oidc_utils
from ansible_collections.neurallog.platform.plugins.module_utils.openshift import restricted_pod_security
from ansible_collections.neurallog.platform.plugins.module_utils.quantity import (
    canonical_quantity,
    canonical_resources,
    parse_quantity,
)
from ansible_collections.neurallog.platform.plugins.module_utils.undeclared import object_key

# ---------------------------------------------------------------------------
# Constants and defaults
# ---------------------------------------------------------------------------

# Every pattern is used with fullmatch: with match, '$' also matches before a
# trailing newline, so "acme\n" would pass and reach namespace names.

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
REDIS_SIZE = re.compile(r"^([0-9]+)(b|k|kb|m|mb|g|gb)?$", re.IGNORECASE)

NAMESPACE_MAX = 63
STATEFULSET_NAME_MAX = 52

REDIS_NAME = "redis"
REDIS_SECRET = "redis-credentials"
REDIS_CONFIGMAP = "redis-config"
REDIS_PORT = 6379
REDIS_UID = 999  # the "redis" user of the official image
REDIS_CONFIG_DIR = "/usr/local/etc/redis"
# The Secret's auth.conf (ACL users) is mounted here and included by redis.conf.
REDIS_AUTH_DIR = "/etc/redis/auth"

# Words that separate the parts of a namespace name (tenant-{id}-org-{org}
# and ...-mcp). An id containing one could name another tenant's namespace
# (tenant "acme-org-ops" = tenant "acme", organization "ops"), so ids may not.
NAME_SEPARATOR_WORDS = ("org", "mcp")
# Kubernetes' own groups (system:authenticated, system:serviceaccounts, ...):
# binding one would give every member of it the tenant's rights.
SYSTEM_GROUP_PREFIX = "system:"
NAMESPACE_TYPES = ("tenant-root", "organization", "mcp")
MANAGED_BY = ("app.kubernetes.io/managed-by", "neurallog.platform")

TENANT_KEYS = (
    "id", "name", "organizations", "tier", "quota", "organization_quota",
    "redis", "admin_groups", "member_groups", "labels", "namespace_support",
    "ingress_hosts",
)
ORGANIZATION_KEYS = ("id", "name", "mcp")
REDIS_KEYS = (
    "enabled", "storage_size", "storage_class", "maxmemory", "maxmemory_policy",
    "appendonly", "appendfsync", "resources",
)
NAMESPACE_SUPPORT_KEYS = ("enabled", "default")
MAXMEMORY_POLICIES = (
    "noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
    "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
)
APPENDFSYNC = ("always", "everysec", "no")
POD_SECURITY_LEVELS = ("privileged", "baseline", "restricted")

# Quota keys a tenant may set: the ResourceQuota names Kubernetes knows,
# plus the object-count and per-StorageClass forms.
QUOTA_KEYS = (
    "pods", "cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu",
    "limits.memory", "requests.storage", "persistentvolumeclaims",
    "requests.ephemeral-storage", "limits.ephemeral-storage", "ephemeral-storage",
    "services", "services.loadbalancers", "services.nodeports", "secrets",
    "configmaps", "replicationcontrollers", "resourcequotas",
)
QUOTA_KEY_PATTERNS = (
    re.compile(r"^count/[a-z0-9.-]+$"),
    re.compile(r"^[a-z0-9.-]+\.storageclass\.storage\.k8s\.io/(requests\.storage|persistentvolumeclaims)$"),
)

# Tenant Ingresses, checked by the admission policy (admission_resources):
# the extra hosts of a tenant (besides <id>.api.<domain>) are written on its
# namespaces, which tenant admins cannot change.
INGRESS_HOSTS_ANNOTATION = "neurallog.io/ingress-hosts"
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
ADMISSION_COMPONENT = "tenant-admission"
SERVICE_POLICY = "neurallog-tenant-services"
INGRESS_POLICY = "neurallog-tenant-ingresses"
# Labels the generated objects rely on; a tenant's extra labels may not set them.
RESERVED_LABEL_PREFIXES = ("pod-security.kubernetes.io/", "kubernetes.io/", "k8s.io/")
RESERVED_LABELS = ("tenant", "type", "organization", "neurallog-system", "neurallog-data")

# Where every setting's default lives: the tenant role's defaults (or, for
# the platform-wide ones, the globals role's), the one place. The module
# (through its action plugin) and the role pass settings under these names;
# DEFAULT_SETTINGS is read from those files on the controller.
ROLE_SETTINGS = {
    "tiers": ("tenant", "tenant_tiers"),
    "default_tier": ("tenant", "tenant_default_tier"),
    "organization_quota": ("tenant", "tenant_organization_quota"),
    "limit_range": ("tenant", "tenant_limit_range"),
    "redis": ("tenant", "tenant_redis"),
    "namespace_support": ("tenant", "tenant_namespace_support"),
    "dns": ("tenant", "tenant_dns"),
    "system_namespace_labels": ("tenant", "tenant_system_namespace_labels"),
    "data_namespace_labels": ("tenant", "tenant_data_namespace_labels"),
    "admin_group_format": ("tenant", "tenant_admin_group_format"),
    "member_group_format": ("tenant", "tenant_member_group_format"),
    "cluster_domain": ("tenant", "tenant_cluster_domain"),
    "quota_defaults": ("tenant", "tenant_quota_defaults"),
    "ingress_domain": ("tenant", "tenant_ingress_domain"),
    "ingress_denied_annotations": ("tenant", "tenant_ingress_denied_annotations"),
    "data_access": ("globals", "neurallog_tenant_data_access"),
    "openshift": ("globals", "neurallog_openshift"),
    "oidc": ("globals", "neurallog_oidc"),
    "image_pull_policy": ("globals", "neurallog_image_pull_policy"),
    "image_pull_secrets": ("globals", "neurallog_image_pull_secrets"),
    "storage_class": ("globals", "neurallog_storage_class"),
    "pod_security_level": ("globals", "neurallog_pod_security_level"),
    "common_labels": ("globals", "neurallog_common_labels"),
}
# The roles, next to plugins/ in the collection (absent where a module runs
# remotely: there its action plugin passes every setting).
ROLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "roles")


def _render_default(value):
    """A role default as it is with no other variable set: a template such
    as "{{ ingress_domain | default('neurallog.com') }}" gives its
    fallback. None when it cannot be rendered here."""
    if not isinstance(value, str) or "{{" not in value:
        return value
    if jinja2 is None:
        return None
    try:
        return jinja2.Environment(undefined=jinja2.Undefined).from_string(value).render()
    except Exception:  # pylint: disable=broad-exception-caught  # any template error: no default here
        return None


def role_defaults(roles_dir=None):
    """Setting -> default, read from the roles' defaults/main.yml; {} when
    the roles are not next to this file (a module run remotely)."""
    roles_dir = roles_dir or ROLES_DIR
    if yaml is None:
        return {}
    files = {}
    out = {}
    for setting, (role, variable) in ROLE_SETTINGS.items():
        if role not in files:
            path = os.path.join(roles_dir, role, "defaults", "main.yml")
            files[role] = {}
            if os.path.exists(path):
                with open(path) as handle:
                    files[role] = yaml.safe_load(handle) or {}
        if variable in files[role]:
            value = _render_default(files[role][variable])
            if value is not None:
                out[setting] = value
    return out


DEFAULT_SETTINGS = role_defaults()
DEFAULT_SETTINGS.setdefault("redis_image", "")
DEFAULT_TIERS = DEFAULT_SETTINGS.get("tiers", {})
# Ingress annotations a tenant may not set on the shared ingress class
# (tenant_ingress_denied_annotations: snippets, server-alias, the 2025
# ingress-nginx injection CVEs, references to other namespaces).
DEFAULT_DENIED_ANNOTATIONS = DEFAULT_SETTINGS.get("ingress_denied_annotations", [])

# What tenant admins may do inside their namespaces. Verbs are listed: "*"
# would include impersonate (on serviceaccounts) and deletecollection (one
# request wiping every Secret or volume claim). Endpoints are read-only (a
# hand-written Endpoints object can point a Service at any address,
# CVE-2021-25740). Quotas, LimitRanges and NetworkPolicies are read-only:
# they are the isolation boundary. Services and Ingresses are further
# limited by the quota (no LoadBalancer/NodePort) and by the admission
# policies of ``admission_resources``.
READ_VERBS = ["get", "list", "watch"]
WRITE_VERBS = READ_VERBS + ["create", "update", "patch", "delete"]
ADMIN_RULES = [
    {"apiGroups": [""], "resources": [
        "configmaps", "persistentvolumeclaims", "pods", "secrets", "serviceaccounts",
        "services"], "verbs": list(WRITE_VERBS)},
    {"apiGroups": [""], "resources": ["pods/attach", "pods/exec", "pods/portforward"],
     "verbs": ["get", "create"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets", "statefulsets"],
     "verbs": list(WRITE_VERBS)},
    {"apiGroups": ["apps"], "resources": ["deployments/scale", "statefulsets/scale"],
     "verbs": ["get", "update", "patch"]},
    {"apiGroups": ["batch"], "resources": ["cronjobs", "jobs"], "verbs": list(WRITE_VERBS)},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": list(WRITE_VERBS)},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": list(WRITE_VERBS)},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": list(WRITE_VERBS)},
    {"apiGroups": [""], "resources": ["endpoints", "events", "limitranges", "resourcequotas"],
     "verbs": list(READ_VERBS)},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
     "verbs": list(READ_VERBS)},
]
# Members read everything but Secrets and cannot exec into pods.
MEMBER_RULES = [
    {"apiGroups": [""], "resources": [
        "configmaps", "endpoints", "events", "limitranges", "persistentvolumeclaims",
        "pods", "pods/log", "resourcequotas", "serviceaccounts", "services"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets", "statefulsets"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["batch"], "resources": ["cronjobs", "jobs"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "networkpolicies"],
     "verbs": ["get", "list", "watch"]},
]


class TenantError(ValueError):
    """Invalid tenant input; ``errors`` lists every problem, each naming its field."""

    def __init__(self, errors):
        self.errors = list(errors)
        super(TenantError, self).__init__("; ".join(self.errors))


def redis_size_bytes(value):
    """Bytes of a redis.conf memory size (``1gb`` = 1024^3, ``1g`` = 10^9)."""
    match = REDIS_SIZE.fullmatch(str(value).strip())
    if not match:
        raise ValueError("%r is not a Redis memory size (e.g. 512mb, 1gb)" % (value,))
    unit = (match.group(2) or "b").lower()
    factor = {"b": 1, "k": 1000, "kb": 1024, "m": 1000 ** 2, "mb": 1024 ** 2,
              "g": 1000 ** 3, "gb": 1024 ** 3}[unit]
    return int(match.group(1)) * factor


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def _b64(text):
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _is_dns_label(value, max_length=63):
    return isinstance(value, str) and len(value) <= max_length and bool(DNS1123_LABEL.fullmatch(value))


def _label_key_error(key):
    if not isinstance(key, str) or not key:
        return "label keys must be non-empty strings"
    prefix, name = key.rpartition("/")[::2]
    if len(name) > 63 or not LABEL_NAME.fullmatch(name):
        return "%r is not a valid label key" % key
    if prefix and (len(prefix) > 253 or not LABEL_PREFIX.fullmatch(prefix)):
        return "%r has an invalid prefix" % key
    return None


def _label_value_error(value):
    if not isinstance(value, str):
        return "label values must be strings, got %r (quote it)" % (value,)
    if len(value) > 63 or not LABEL_VALUE.fullmatch(value):
        return "%r is not a valid label value" % value
    return None


def _is_dns_subdomain(value):
    return isinstance(value, str) and len(value) <= 253 and bool(DNS1123_SUBDOMAIN.match(value))


def _host_covers(pattern, host):
    """Whether the allow-list entry ``pattern`` (a host, or ``*.<domain>`` for
    every name under it) covers ``host`` (an Ingress host, possibly a
    wildcard). The admission policy applies the same rule."""
    return pattern == host or (pattern.startswith("*.") and host.endswith(pattern[1:]))


def own_ingress_hosts(tenant_id, ingress_domain):
    """The hosts every tenant may use: ``<id>.api.<domain>`` and names under it."""
    own = "%s.api.%s" % (tenant_id, ingress_domain)
    return [own, "*." + own]


def _truthy_bool(value):
    return isinstance(value, bool)


def _separator_word_error(value):
    """Why ``value`` (a tenant or organization id) may not be used, or None."""
    words = [w for w in NAME_SEPARATOR_WORDS if w in value.split("-")]
    if not words:
        return None
    return ("%r contains %s as a dash-separated word; 'org' and 'mcp' separate the parts of "
            "namespace names (tenant-<id>-org-<org>-mcp), so such an id could name another "
            "tenant's or organization's namespace" % (value, " and ".join("'%s'" % w for w in words)))


def _group_error(group, prefix=""):
    """Why ``group`` may not be bound to a tenant Role, or None. ``prefix``:
    neurallog_oidc.groups_prefix when OIDC is on, added to every group once."""
    if not isinstance(group, str) or not group.strip() or group != group.strip():
        return "%r is not a group name (a non-empty string without surrounding spaces)" % (group,)
    if prefix and group.startswith(prefix):
        return ("%r already starts with neurallog_oidc.groups_prefix %r: give the identity provider's group "
                "name, the prefix is added once (as kube-apiserver's --oidc-groups-prefix does)" % (group, prefix))
    if group.lower().startswith(SYSTEM_GROUP_PREFIX):
        return ("%r is a Kubernetes system group (prefix 'system:'); binding it would give every "
                "member of it (e.g. every logged-in user) the tenant's rights; name the tenant's own "
                "OIDC groups" % group)
    return None


def namespace_names(tenant_id, organizations, namespace_support=None):
    """Namespaces of a tenant, root first: ``tenant-{id}``, then per org
    ``tenant-{id}-org-{org}`` and, when it asks for one, ``...-mcp``."""
    support = merge(DEFAULT_SETTINGS.get("namespace_support"), namespace_support)
    root = "tenant-%s" % tenant_id
    names = [(root, "tenant-root", None)]
    if support["enabled"]:
        for org in organizations:
            org_ns = "%s-org-%s" % (root, org["id"])
            names.append((org_ns, "organization", org["id"]))
            if org.get("mcp", support["default"]):
                names.append(("%s-mcp" % org_ns, "mcp", org["id"]))
    return names


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------

def _check_quota(path, quota, errors):
    """Quota keys known, values quantities >= 0, limits >= requests."""
    if not isinstance(quota, dict):
        errors.append("%s: must be a mapping of quota names to quantities" % path)
        return {}
    parsed = {}
    for key, value in quota.items():
        if key not in QUOTA_KEYS and not any(p.fullmatch(str(key)) for p in QUOTA_KEY_PATTERNS):
            errors.append("%s.%s: unknown quota name; allowed: %s, count/<resource>, "
                          "<class>.storageclass.storage.k8s.io/requests.storage"
                          % (path, key, ", ".join(QUOTA_KEYS)))
            continue
        try:
            parsed[key] = parse_quantity(value)
        except ValueError as exc:
            errors.append("%s.%s: %s" % (path, key, exc))
            continue
        if parsed[key] < 0:
            errors.append("%s.%s: must not be negative, got %r" % (path, key, value))
    for resource in ("cpu", "memory"):
        request = parsed.get("requests." + resource, parsed.get(resource))
        limit = parsed.get("limits." + resource)
        if request is not None and limit is not None and limit < request:
            errors.append("%s.limits.%s: %s is less than requests.%s %s" % (
                path, resource, quota["limits." + resource], resource,
                quota.get("requests." + resource, quota.get(resource))))
    return parsed


def _check_resources(path, resources, errors):
    """A container's requests/limits: cpu and memory quantities, limits >= requests."""
    parsed = {"requests": {}, "limits": {}}
    if not isinstance(resources, dict) or set(resources) - {"requests", "limits"}:
        errors.append("%s: must be a mapping with 'requests' and/or 'limits'" % path)
        return parsed
    for section in ("requests", "limits"):
        values = resources.get(section) or {}
        if not isinstance(values, dict):
            errors.append("%s.%s: must be a mapping" % (path, section))
            continue
        for key, value in values.items():
            if key not in ("cpu", "memory", "ephemeral-storage"):
                errors.append("%s.%s.%s: unknown resource; allowed: cpu, memory, ephemeral-storage"
                              % (path, section, key))
                continue
            try:
                parsed[section][key] = parse_quantity(value)
            except ValueError as exc:
                errors.append("%s.%s.%s: %s" % (path, section, key, exc))
    for key, limit in parsed["limits"].items():
        request = parsed["requests"].get(key)
        if request is not None and limit < request:
            errors.append("%s.limits.%s: %s is less than requests.%s %s" % (
                path, key, resources["limits"][key], key, resources["requests"][key]))
    return parsed


def _check_fits(path, needed, quota_path, quota, errors, raw_quota=None):
    """``needed`` (quota name -> (Decimal, as written)) fits in ``quota``
    (quota name -> Decimal; ``raw_quota`` holds the values as written)."""
    raw_quota = raw_quota or {}
    for key, (amount, shown) in needed.items():
        alias = key.split(".", 1)[1] if key.startswith("requests.") else None
        used = key if key in quota else alias
        limit = quota.get(used) if used else None
        if limit is not None and amount > limit:
            errors.append("%s: needs %s %s but %s allows %s" % (
                path, key, shown, quota_path, raw_quota.get(used, canonical_quantity(limit))))


def _check_settings(settings, errors):
    if not settings.get("redis_image"):
        errors.append("redis_image: required (set it from neurallog_image_refs['redis'])")
    elif str(settings["redis_image"]).rsplit("/", 1)[-1].split("@")[0].endswith(":latest") \
            or ":" not in str(settings["redis_image"]).rsplit("/", 1)[-1]:
        errors.append("redis_image: %r must be pinned to a tag other than 'latest'" % settings["redis_image"])
    if settings.get("pod_security_level") not in POD_SECURITY_LEVELS:
        errors.append("pod_security_level: %r is not one of %s" % (
            settings.get("pod_security_level"), ", ".join(POD_SECURITY_LEVELS)))
    tiers = settings.get("tiers") or {}
    if not isinstance(tiers, dict) or not tiers:
        errors.append("tiers: must be a non-empty mapping of tier name to quota")
    else:
        for name, quota in tiers.items():
            _check_quota("tiers.%s" % name, quota, errors)
        if settings.get("default_tier") not in tiers:
            errors.append("default_tier: %r is not one of the tiers (%s)" % (
                settings.get("default_tier"), ", ".join(sorted(tiers))))
    limit_range = settings.get("limit_range") or {}
    unknown = set(limit_range) - {"default", "default_request", "max"}
    if unknown:
        errors.append("limit_range: unknown keys %s; allowed: default, default_request, max"
                      % ", ".join(sorted(unknown)))
    defaults = _check_resources("limit_range", {
        "requests": limit_range.get("default_request") or {},
        "limits": limit_range.get("default") or {}}, errors)
    maxima = _check_resources("limit_range.max", {"limits": limit_range.get("max") or {}}, errors)
    for key, value in defaults["limits"].items():
        if key in maxima["limits"] and value > maxima["limits"][key]:
            errors.append("limit_range.default.%s: exceeds limit_range.max.%s" % (key, key))
    try:
        prefix = oidc_utils.groups_prefix(settings.get("oidc"))
    except oidc_utils.OidcError as exc:
        errors.append(str(exc))
        prefix = ""
    for key in ("admin_group_format", "member_group_format"):
        fmt = settings.get(key)
        if not isinstance(fmt, str) or "{tenant}" not in fmt:
            errors.append("%s: must be a string containing '{tenant}', got %r" % (key, fmt))
        elif _group_error(fmt, prefix):
            errors.append("%s: %s" % (key, _group_error(fmt, prefix)))
    for key in ("system_namespace_labels", "data_namespace_labels", "common_labels"):
        for label_key, label_value in (settings.get(key) or {}).items():
            problem = _label_key_error(label_key) or _label_value_error(label_value)
            if problem:
                errors.append("%s.%s: %s" % (key, label_key, problem))
    if not isinstance(settings.get("data_access"), bool):
        errors.append("data_access: must be true or false, got %r" % (settings.get("data_access"),))
    _check_quota("quota_defaults", settings.get("quota_defaults") or {}, errors)
    _check_admission_settings(settings, errors)


def _check_admission_settings(settings, errors):
    domain = settings.get("ingress_domain")
    if not _is_dns_subdomain(domain) or "." not in domain:
        errors.append("ingress_domain: %r is not a DNS name such as neurallog.com (lower-case "
                      "labels separated by dots)" % (domain,))
    patterns = settings.get("ingress_denied_annotations")
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
        errors.append("ingress_denied_annotations: must be a list of regular expressions "
                      "matching annotation keys")
        return
    for index, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            errors.append("ingress_denied_annotations[%d]: %r is not a regular expression (%s)"
                          % (index, pattern, exc))


def _check_organizations(path, organizations, errors):
    """Normalised list of organization dicts."""
    if organizations is None:
        return []
    if not isinstance(organizations, list):
        errors.append("%s: must be a list of organizations" % path)
        return []
    normalised, seen = [], set()
    for index, org in enumerate(organizations):
        where = "%s[%d]" % (path, index)
        if isinstance(org, str):
            org = {"id": org}
        if not isinstance(org, dict):
            errors.append("%s: must be an org id or a mapping with 'id'" % where)
            continue
        unknown = sorted(set(org) - set(ORGANIZATION_KEYS))
        if unknown:
            errors.append("%s: unknown keys %s; allowed: %s" % (
                where, ", ".join(unknown), ", ".join(ORGANIZATION_KEYS)))
        org_id = org.get("id")
        if isinstance(org_id, int) and not isinstance(org_id, bool):
            org_id = str(org_id)
        if not _is_dns_label(org_id):
            errors.append("%s.id: %r is not a DNS-1123 label (lower-case letters, digits and '-', "
                          "starting and ending with a letter or digit, at most 63 characters)"
                          % (where, org.get("id")))
            continue
        if _separator_word_error(org_id):
            errors.append("%s.id: %s" % (where, _separator_word_error(org_id)))
            continue
        if org_id in seen:
            errors.append("%s.id: duplicate organization id %r" % (where, org_id))
            continue
        seen.add(org_id)
        if "mcp" in org and not _truthy_bool(org["mcp"]):
            errors.append("%s.mcp: must be true or false, got %r" % (where, org["mcp"]))
        item = {"id": org_id, "name": str(org.get("name") or org_id)}
        if isinstance(org.get("mcp"), bool):
            item["mcp"] = org["mcp"]
        normalised.append(item)
    return normalised


def normalise_tenant(tenant, settings, errors):
    """Validate one tenant against ``settings``; return its normalised form
    (with tier quota, redis settings and groups resolved) or None."""
    start = len(errors)
    if not isinstance(tenant, dict):
        errors.append("tenant: must be a mapping with at least 'id', got %r" % (type(tenant).__name__,))
        return None
    tenant_id = tenant.get("id")
    if isinstance(tenant_id, int) and not isinstance(tenant_id, bool):
        tenant_id = str(tenant_id)
    # escaped: an id with a newline must not break the message in two
    path = "tenants[%s]" % (tenant_id.encode("unicode_escape").decode("ascii")
                            if isinstance(tenant_id, str) and tenant_id else "?")
    unknown = sorted(set(tenant) - set(TENANT_KEYS))
    if unknown:
        errors.append("%s: unknown keys %s; allowed: %s"
                      % (path, ", ".join(map(str, unknown)), ", ".join(TENANT_KEYS)))
    if not _is_dns_label(tenant_id):
        errors.append("%s.id: %r is not a DNS-1123 label (lower-case letters, digits and '-', "
                      "starting and ending with a letter or digit)" % (path, tenant.get("id")))
        return None
    if _separator_word_error(tenant_id):
        errors.append("%s.id: %s" % (path, _separator_word_error(tenant_id)))
        return None

    name = tenant.get("name", tenant_id)
    if not isinstance(name, (str, int)) or isinstance(name, bool) or not str(name).strip():
        errors.append("%s.name: must be a non-empty string" % path)
    organizations = _check_organizations(path + ".organizations", tenant.get("organizations"), errors)

    support = tenant.get("namespace_support") or {}
    if not isinstance(support, dict) or set(support) - set(NAMESPACE_SUPPORT_KEYS) \
            or not all(isinstance(v, bool) for v in support.values()):
        errors.append("%s.namespace_support: must be a mapping of enabled/default to true/false" % path)
        support = {}
    support = merge(settings["namespace_support"], support)

    namespaces = namespace_names(tenant_id, organizations, support)
    for ns, dummy_kind, dummy_org in namespaces:
        if len(ns) > NAMESPACE_MAX:
            errors.append("%s: namespace %r is %d characters, the limit is %d; shorten the tenant "
                          "or organization id" % (path, ns, len(ns), NAMESPACE_MAX))

    tiers = settings["tiers"]
    tier = tenant.get("tier", settings["default_tier"])
    if tier not in tiers:
        errors.append("%s.tier: %r is not one of %s" % (path, tier, ", ".join(sorted(tiers))))
        tier_quota = {}
    else:
        tier_quota = tiers[tier]
    quota = merge(merge(settings["quota_defaults"], tier_quota),
                  tenant.get("quota") if isinstance(tenant.get("quota"), dict) else {})
    if "quota" in tenant and not isinstance(tenant["quota"], dict):
        errors.append("%s.quota: must be a mapping of quota names to quantities" % path)
    parsed_quota = _check_quota(path + ".quota", quota, errors)
    org_quota = merge(merge(settings["quota_defaults"], settings["organization_quota"]),
                      tenant.get("organization_quota")
                      if isinstance(tenant.get("organization_quota"), dict) else {})
    if "organization_quota" in tenant and not isinstance(tenant["organization_quota"], dict):
        errors.append("%s.organization_quota: must be a mapping" % path)
    parsed_org_quota = _check_quota(path + ".organization_quota", org_quota, errors)

    # LimitRange defaults apply to pods in every namespace: they must fit.
    limit_range = settings["limit_range"]
    for quota_path, parsed in ((path + ".quota", parsed_quota),
                               (path + ".organization_quota", parsed_org_quota)):
        raw = quota if parsed is parsed_quota else org_quota
        for key, value in (limit_range.get("default_request") or {}).items():
            _check_fits("limit_range.default_request.%s" % key, {"requests." + key: (parse_quantity(value), value)},
                        quota_path, parsed, errors, raw)
        for key, value in (limit_range.get("default") or {}).items():
            _check_fits("limit_range.default.%s" % key, {"limits." + key: (parse_quantity(value), value)},
                        quota_path, parsed, errors, raw)

    redis = tenant.get("redis") or {}
    if not isinstance(redis, dict):
        errors.append("%s.redis: must be a mapping" % path)
        redis = {}
    unknown = sorted(set(redis) - set(REDIS_KEYS))
    if unknown:
        errors.append("%s.redis: unknown keys %s; allowed: %s" % (path, ", ".join(unknown), ", ".join(REDIS_KEYS)))
    redis = merge(settings["redis"], dict((k, v) for k, v in redis.items() if k in REDIS_KEYS))
    if not isinstance(redis.get("enabled"), bool):
        errors.append("%s.redis.enabled: must be true or false" % path)
    if redis.get("enabled"):
        _check_redis(path + ".redis", redis, parsed_quota, path + ".quota", errors, quota)

    groups = {}
    prefix = oidc_utils.groups_prefix(settings.get("oidc"))
    for key, fmt in (("admin_groups", "admin_group_format"), ("member_groups", "member_group_format")):
        value = tenant.get(key)
        if value is None:
            value = [settings[fmt].replace("{tenant}", tenant_id)]
        if not isinstance(value, list):
            errors.append("%s.%s: must be a list of group names (may be empty)" % (path, key))
            value = []
        for index, group in enumerate(value):
            problem = _group_error(group, prefix)
            if problem:
                errors.append("%s.%s[%d]: %s" % (path, key, index, problem))
        groups[key] = value

    labels = tenant.get("labels") or {}
    if not isinstance(labels, dict):
        errors.append("%s.labels: must be a mapping" % path)
        labels = {}
    for key, value in labels.items():
        problem = _label_key_error(key) or _label_value_error(value)
        if not problem and (key in RESERVED_LABELS or key.startswith(RESERVED_LABEL_PREFIXES)
                            or key in settings["common_labels"]):
            problem = "%r is set by the collection and cannot be overridden" % key
        if problem:
            errors.append("%s.labels.%s: %s" % (path, key, problem))

    ingress_hosts = _check_ingress_hosts(path + ".ingress_hosts", tenant.get("ingress_hosts"),
                                         tenant_id, settings["ingress_domain"], errors)

    if len(errors) > start:
        return None
    return {
        "id": tenant_id,
        "name": str(name),
        "organizations": organizations,
        "namespace_support": support,
        "namespaces": namespaces,
        "tier": tier,
        "quota": quota,
        "organization_quota": org_quota,
        "redis": redis,
        "admin_groups": groups["admin_groups"],
        "member_groups": groups["member_groups"],
        "groups_prefix": prefix,
        "labels": dict(labels),
        "ingress_hosts": ingress_hosts,
    }


def _check_ingress_hosts(path, hosts, tenant_id, ingress_domain, errors):
    """Extra Ingress hosts of a tenant: DNS names or ``*.<domain>``, none
    under the platform domain (``api.<domain>`` and the other tenants'
    ``<id>.api.<domain>``) and none covering it."""
    if hosts is None:
        return []
    if not isinstance(hosts, list):
        errors.append("%s: must be a list of host names (e.g. logs.acme.example or *.acme.example)" % path)
        return []
    checked = []
    for index, host in enumerate(hosts):
        where = "%s[%d]" % (path, index)
        base = host[2:] if isinstance(host, str) and host.startswith("*.") else host
        if not _is_dns_subdomain(base) or "." not in base:
            errors.append("%s: %r is not a host name with a domain (lower-case, e.g. logs.acme.example "
                          "or *.acme.example)" % (where, host))
            continue
        if base == ingress_domain or base.endswith("." + ingress_domain) or (
                host.startswith("*.") and ingress_domain.endswith("." + base)):
            errors.append("%s: %r is in the platform domain %s; tenant %s already has %s, other names "
                          "there belong to the platform or to other tenants"
                          % (where, host, ingress_domain, tenant_id,
                             " and ".join(own_ingress_hosts(tenant_id, ingress_domain))))
            continue
        if host in checked:
            errors.append("%s: %r is listed twice" % (where, host))
            continue
        checked.append(host)
    return checked


def _check_ingress_host_claims(tenants, errors):
    """No two tenants may claim overlapping Ingress hosts."""
    for index, tenant in enumerate(tenants):
        for other in tenants[index + 1:]:
            for host in tenant["ingress_hosts"]:
                for theirs in other["ingress_hosts"]:
                    if _host_covers(host, theirs) or _host_covers(theirs, host):
                        errors.append("tenants[%s].ingress_hosts: %r overlaps %r of tenant %s; an "
                                      "Ingress host belongs to one tenant"
                                      % (other["id"], theirs, host, tenant["id"]))


def _check_redis(path, redis, quota, quota_path, errors, raw_quota):
    try:
        storage = parse_quantity(redis.get("storage_size"))
        if storage <= 0:
            raise ValueError("must be more than 0")
    except ValueError as exc:
        errors.append("%s.storage_size: %s" % (path, exc))
        storage = None
    if redis.get("maxmemory_policy") not in MAXMEMORY_POLICIES:
        errors.append("%s.maxmemory_policy: %r is not one of %s" % (
            path, redis.get("maxmemory_policy"), ", ".join(MAXMEMORY_POLICIES)))
    if redis.get("appendfsync") not in APPENDFSYNC:
        errors.append("%s.appendfsync: %r is not one of %s" % (
            path, redis.get("appendfsync"), ", ".join(APPENDFSYNC)))
    if not isinstance(redis.get("appendonly"), bool):
        errors.append("%s.appendonly: must be true or false" % path)
    if redis.get("storage_class") and not isinstance(redis.get("storage_class"), str):
        errors.append("%s.storage_class: must be a string" % path)
    resources = _check_resources(path + ".resources", redis.get("resources") or {}, errors)
    try:
        maxmemory = redis_size_bytes(redis.get("maxmemory"))
    except ValueError as exc:
        errors.append("%s.maxmemory: %s" % (path, exc))
        maxmemory = None
    memory_limit = resources["limits"].get("memory")
    if maxmemory is not None and memory_limit is not None and memory_limit <= maxmemory:
        errors.append("%s.resources.limits.memory: %s leaves no room above maxmemory %s"
                      % (path, redis["resources"]["limits"]["memory"], redis["maxmemory"]))
    needed = {}
    for section in ("requests", "limits"):
        for key, value in resources[section].items():
            needed["%s.%s" % (section, key)] = (value, redis["resources"][section][key])
    if storage is not None:
        needed["requests.storage"] = (storage, redis["storage_size"])
    _check_fits(path, needed, quota_path, quota, errors, raw_quota)


def validate_tenants(tenants, settings=None):
    """Normalised tenants; raises TenantError listing every problem."""
    settings = merge(DEFAULT_SETTINGS, settings)
    errors = []
    _check_settings(settings, errors)
    if errors:
        raise TenantError(errors)
    if not isinstance(tenants, list):
        raise TenantError(["tenants: must be a list of tenant mappings"])
    normalised, seen = [], {}
    for index, tenant in enumerate(tenants):
        result = normalise_tenant(tenant, settings, errors)
        if result is None:
            continue
        if result["id"] in seen:
            errors.append("tenants[%s].id: declared twice (entries %d and %d)" % (
                result["id"], seen[result["id"]], index))
            continue
        seen[result["id"]] = index
        normalised.append(result)
    errors.extend(namespace_collisions(normalised))
    _check_ingress_host_claims(normalised, errors)
    if errors:
        raise TenantError(errors)
    return normalised


def namespace_collisions(normalised):
    """Messages for namespaces that two declared tenants (or two namespaces of
    one tenant) would share. The naming rules make this impossible; checked
    anyway because a shared namespace hands one tenant's access to another."""
    owners, errors = {}, []
    for tenant in normalised:
        for name, ns_type, dummy_org in tenant["namespaces"]:
            if name in owners:
                errors.append("tenants[%s]: namespace %r (%s) is also namespace %r of tenant %r; "
                              "every namespace must belong to one tenant"
                              % (tenant["id"], name, ns_type, owners[name][1], owners[name][0]))
            else:
                owners[name] = (tenant["id"], ns_type)
    return errors


def _live_labels(live_namespaces):
    """Namespace name -> labels of Namespaces as k8s_info returns them."""
    found = {}
    for item in live_namespaces or []:
        meta = (item or {}).get("metadata") or {}
        if meta.get("name"):
            found[meta["name"]] = meta.get("labels") or {}
    return found


def ownership_conflicts(normalised, live_namespaces):
    """Messages for namespaces of ``normalised`` tenants that exist in the
    cluster labelled for another tenant or as another type: a tenant never
    adopts them (its labels, quota, policy and RoleBindings would replace the
    owner's)."""
    live, errors = _live_labels(live_namespaces), []
    for tenant in normalised:
        for name, ns_type, dummy_org in tenant["namespaces"]:
            labels = live.get(name)
            if labels is None:
                continue
            owner, kind = labels.get("tenant"), labels.get("type")
            if (owner is not None and owner != tenant["id"]) or (kind is not None and kind != ns_type):
                errors.append("tenants[%s]: namespace %r exists labelled tenant=%s, type=%s: it belongs "
                              "to someone else and is not adopted as %s of tenant %r"
                              % (tenant["id"], name, owner if owner is not None else "(none)",
                                 kind if kind is not None else "(none)", ns_type, tenant["id"]))
    return errors


def _expected_types(tenant_id, name):
    """Types a namespace called ``name`` can have for ``tenant_id`` (empty:
    the name is not one of that tenant's)."""
    root = "tenant-%s" % tenant_id
    if name == root:
        return ("tenant-root",)
    if name.startswith(root + "-org-") and len(name) > len(root) + 5:
        # organizations named before ids were checked may end in -mcp
        return ("organization", "mcp") if name.endswith("-mcp") else ("organization",)
    return ()


def offboard_plan(tenant_ids, live_namespaces):
    """What offboarding ``tenant_ids`` deletes, and why it must not.

    A tenant's namespaces are the managed ones labelled ``tenant=<id>``. Each
    must also be named and typed as one of that tenant's, and must not be
    named as a namespace of another tenant present in the cluster (the
    collision of ids such as ``acme-org-ops`` with tenant ``acme``'s
    organization ``ops``). Returns ``tenants`` (id -> namespaces),
    ``namespaces`` (all of them), ``conflicts`` (messages; when any, delete
    nothing) and ``summary`` ("id (namespace, ...); ...")."""
    live = _live_labels(live_namespaces)
    roots = dict((labels.get("tenant"), name) for name, labels in live.items()
                 if labels.get("type") == "tenant-root" and labels.get("tenant"))
    plan, every, conflicts = {}, [], []
    for tenant_id in tenant_ids:
        tenant_id = str(tenant_id)
        owned = sorted(name for name, labels in live.items()
                       if labels.get("tenant") == tenant_id and labels.get(MANAGED_BY[0]) == MANAGED_BY[1])
        for name in owned:
            kind = live[name].get("type")
            expected = _expected_types(tenant_id, name)
            if kind not in expected:
                conflicts.append("namespace %r is labelled tenant=%s, type=%s, but that name is %s; "
                                 "it is not deleted" % (
                                     name, tenant_id, kind,
                                     "a %s of tenant %r" % (" or ".join(expected), tenant_id) if expected
                                     else "not one of tenant %r's namespaces" % tenant_id))
                continue
            for other, other_root in sorted(roots.items()):
                if other != tenant_id and (name == other_root or name.startswith(other_root + "-org-")):
                    conflicts.append("namespace %r is labelled tenant=%s, but its name makes it a namespace "
                                     "of tenant %r (whose root namespace %r exists); it is not deleted"
                                     % (name, tenant_id, other, other_root))
        plan[tenant_id] = owned
        every.extend(owned)
    summary = "; ".join("%s (%s)" % (tenant_id, ", ".join(plan[tenant_id]) or "no namespaces")
                        for tenant_id in plan)
    return {"tenants": plan, "namespaces": every, "conflicts": conflicts, "summary": summary}


# ---------------------------------------------------------------------------
# Object generation
# ---------------------------------------------------------------------------

def _labels(settings, tenant, extra=None):
    labels = dict(settings["common_labels"])
    labels.update(tenant["labels"])
    labels["tenant"] = tenant["id"]
    labels.update(extra or {})
    return labels


def _meta(name, namespace, labels, annotations=None):
    meta = {"name": name, "namespace": namespace, "labels": labels}
    if annotations:
        meta["annotations"] = annotations
    return meta


def _quota_spec(quota):
    return dict((str(k), canonical_quantity(v)) for k, v in sorted(quota.items()))


def _namespace(settings, tenant, name, ns_type, org_id):
    level = settings["pod_security_level"]
    labels = _labels(settings, tenant, {
        "type": ns_type,
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": level,
        "pod-security.kubernetes.io/audit": level,
    })
    annotations = {"neurallog.io/tenant-name": tenant["name"]}
    if tenant.get("ingress_hosts"):
        annotations[INGRESS_HOSTS_ANNOTATION] = ",".join(tenant["ingress_hosts"])
    if org_id:
        labels["organization"] = org_id
        org = [o for o in tenant["organizations"] if o["id"] == org_id][0]
        annotations["neurallog.io/organization-name"] = org["name"]
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels, "annotations": annotations}}


def _namespace_peer(labels):
    # An empty selector is written as {}: the API server drops an empty
    # matchLabels, and a re-run would then see a difference.
    return {"namespaceSelector": {"matchLabels": dict(labels)} if labels else {}}


def _network_policy(settings, tenant, namespace, labels):
    """The spec's tenant-isolation policy, with DNS egress added and egress
    to the data namespace only when ``data_access`` is set (docs/security.md)."""
    tenant_peer = _namespace_peer({"tenant": tenant["id"]})
    system_peer = _namespace_peer(settings["system_namespace_labels"])
    peers = [tenant_peer, system_peer]
    if settings["data_access"]:
        peers.append(_namespace_peer(settings["data_namespace_labels"]))
    egress = [{"to": peers}]
    dns = settings["dns"]
    if dns.get("enabled", True):
        peer = _namespace_peer(dns.get("namespace_labels") or {})
        if dns.get("pod_labels"):
            peer["podSelector"] = {"matchLabels": dict(dns["pod_labels"])}
        egress.append({"to": [peer], "ports": [
            {"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]})
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": _meta("tenant-isolation", namespace, labels),
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [copy.deepcopy(tenant_peer), copy.deepcopy(system_peer)]}],
            "egress": egress,
        },
    }


def _limit_range(settings, namespace, labels):
    limit_range = settings["limit_range"]
    item = {"type": "Container"}
    for key, field in (("default", "default"), ("default_request", "defaultRequest"), ("max", "max")):
        values = limit_range.get(key) or {}
        if values:
            item[field] = dict((k, canonical_quantity(v)) for k, v in sorted(values.items()))
    return {"apiVersion": "v1", "kind": "LimitRange",
            "metadata": _meta("tenant-limits", namespace, labels),
            "spec": {"limits": [item]}}


def _rbac(tenant, namespace, labels):
    objects = []
    for role, rules, groups in (("tenant-admin", ADMIN_RULES, tenant["admin_groups"]),
                                ("tenant-member", MEMBER_RULES, tenant["member_groups"])):
        objects.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                        "metadata": _meta(role, namespace, labels), "rules": copy.deepcopy(rules)})
        if groups:
            objects.append({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": _meta(role, namespace, labels),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                              "name": oidc_utils.rbac_group(tenant.get("groups_prefix"), g)}
                             for g in groups],
            })
    return objects


def _cel_string(text):
    """``text`` as a CEL string literal."""
    return "'%s'" % text.replace("\\", "\\\\").replace("'", "\\'")


def _admission_pair(settings, name, resource_rules, variables, validations):
    """A ValidatingAdmissionPolicy for every tenant namespace (label
    ``tenant``) and its binding (Deny)."""
    labels = dict(settings["common_labels"])
    labels["app.kubernetes.io/component"] = ADMISSION_COMPONENT
    tenant_namespaces = {"matchExpressions": [{"key": "tenant", "operator": "Exists"}]}
    spec = {
        "failurePolicy": "Fail",
        "matchConstraints": {
            "namespaceSelector": copy.deepcopy(tenant_namespaces),
            "resourceRules": resource_rules,
        },
        "validations": validations,
    }
    if variables:
        # The API server drops an empty list, which would never compare equal.
        spec["variables"] = variables
    return [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": name, "labels": labels}, "spec": spec},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": name, "labels": dict(labels)},
         "spec": {
             "policyName": name,
             "validationActions": ["Deny"],
             "matchResources": {"namespaceSelector": copy.deepcopy(tenant_namespaces)},
         }},
    ]


def admission_resources(settings):
    """The cluster-wide admission policies guarding every tenant namespace.

    One policy (and binding) per kind serves every tenant: the tenant id is
    the namespace's ``tenant`` label and its extra Ingress hosts are the
    namespace annotation ``neurallog.io/ingress-hosts``, both read through
    ``namespaceObject``; tenant admins cannot change either (they have no
    rights on Namespace objects). The platform domain and the denied
    annotations are the same for every tenant, so they are constants here.
    A parameter object per tenant (paramKind) would have to live where the
    tenant cannot write it and be selected per namespace, for no gain.
    """
    settings = merge(DEFAULT_SETTINGS, settings)
    ops = ["CREATE", "UPDATE"]
    services = _admission_pair(
        settings, SERVICE_POLICY,
        [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ops, "resources": ["services"]}],
        [],
        [
            {"expression": "!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0",
             "reason": "Forbidden",
             "message": "Service spec.externalIPs is not allowed in tenant namespaces: it would capture "
                        "the traffic of any address in the cluster (CVE-2020-8554)"},
            {"expression": "!has(object.spec.type) || object.spec.type != 'ExternalName'",
             "reason": "Forbidden",
             "message": "Services of type ExternalName are not allowed in tenant namespaces: the shared "
                        "ingress controller would proxy to any name, past the NetworkPolicies"},
        ])
    denied = "^(%s)$" % "|".join("(?:%s)" % p for p in settings["ingress_denied_annotations"])
    host_allowed = ("variables.allowedHosts.exists(p, h == p || "
                    "(p.startsWith('*.') && h.endsWith(p.substring(1))))")
    ingresses = _admission_pair(
        settings, INGRESS_POLICY,
        [{"apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"], "operations": ops,
          "resources": ["ingresses"]}],
        [
            {"name": "tenant", "expression": "namespaceObject.metadata.labels['tenant']"},
            {"name": "ownHost", "expression": "variables.tenant + '.api.' + %s"
             % _cel_string(settings["ingress_domain"])},
            {"name": "allowedHosts", "expression": (
                "[variables.ownHost, '*.' + variables.ownHost] + "
                "(has(namespaceObject.metadata.annotations) && %s in namespaceObject.metadata.annotations"
                " ? namespaceObject.metadata.annotations[%s].split(',') : [])"
                % (_cel_string(INGRESS_HOSTS_ANNOTATION), _cel_string(INGRESS_HOSTS_ANNOTATION)))},
            {"name": "deniedHosts", "expression": (
                "(has(object.spec.rules) ? object.spec.rules.filter(r, has(r.host)).map(r, r.host) : [])"
                ".filter(h, !%s)" % host_allowed)},
            {"name": "deniedAnnotations", "expression": (
                "has(object.metadata.annotations) ? object.metadata.annotations.filter(k, k.matches(%s)) : []"
                % _cel_string(denied))},
        ],
        [
            {"expression": "!has(object.spec.rules) || object.spec.rules.all(r, has(r.host) && r.host != '')",
             "reason": "Forbidden",
             "message": "every rule of a tenant Ingress must name a host: a rule without one serves "
                        "every host of the shared ingress class"},
            {"expression": "!has(object.spec.defaultBackend)",
             "reason": "Forbidden",
             "message": "spec.defaultBackend is not allowed on tenant Ingresses: it would catch the "
                        "traffic of every host of the shared ingress class"},
            {"expression": "size(variables.deniedHosts) == 0",
             "reason": "Forbidden",
             "messageExpression": (
                 "'Ingress host ' + variables.deniedHosts.join(', ') + ' is not allowed for tenant ' + "
                 "variables.tenant + '; allowed: ' + variables.allowedHosts.join(', ')")},
            {"expression": ("!has(object.spec.tls) || object.spec.tls.all(t, !has(t.hosts) || "
                            "t.hosts.all(h, %s))" % host_allowed),
             "reason": "Forbidden",
             "messageExpression": (
                 "'Ingress TLS hosts must be among the hosts of tenant ' + variables.tenant + ': ' + "
                 "variables.allowedHosts.join(', ')")},
            {"expression": "size(variables.deniedAnnotations) == 0",
             "reason": "Forbidden",
             "messageExpression": (
                 "'Ingress annotation ' + variables.deniedAnnotations.join(', ') + ' is not allowed in "
                 "tenant namespaces: it injects configuration into the shared ingress controller or "
                 "reaches outside the namespace'")},
        ])
    return services + ingresses


def redis_config(redis):
    return "".join("%s\n" % line for line in (
        "appendonly %s" % ("yes" if redis["appendonly"] else "no"),
        "appendfsync %s" % redis["appendfsync"],
        "maxmemory %s" % redis["maxmemory"],
        "maxmemory-policy %s" % redis["maxmemory_policy"],
        "include %s/auth.conf" % REDIS_AUTH_DIR,
    ))


def redis_auth_config(password):
    """auth.conf of a tenant Redis (in its Secret): the `default` user off,
    one ACL user for the tenant's services, refused administrative and
    dangerous commands (CONFIG, DEBUG, FLUSHALL, ACL ...)."""
    return redis_acl_config([{"name": REDIS_SERVICES_USER, "password": password, "rules": REDIS_SERVICES_RULES}])


def _redis(settings, tenant, namespace, password):
    redis = tenant["redis"]
    labels = _labels(settings, tenant, {
        "app": REDIS_NAME,
        "app.kubernetes.io/name": "redis",
        "app.kubernetes.io/component": "tenant-redis",
    })
    selector = {"app": REDIS_NAME, "tenant": tenant["id"]}
    host = "%s.%s.svc.%s" % (REDIS_NAME, namespace, settings["cluster_domain"])
    config = redis_config(redis)
    pvc_spec = {"accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": canonical_quantity(redis["storage_size"])}}}
    storage_class = redis.get("storage_class") or settings.get("storage_class")
    if storage_class:
        pvc_spec["storageClassName"] = storage_class
    container = {
        "name": "redis",
        "image": settings["redis_image"],
        "imagePullPolicy": settings["image_pull_policy"],
        # The image's entrypoint runs redis-server with a first argument
        # ending in .conf, so the mounted redis.conf is really loaded; it
        # includes auth.conf from the Secret: no password in the pod spec,
        # the environment or the process list.
        "args": ["%s/redis.conf" % REDIS_CONFIG_DIR],
        "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": "redis"}, "initialDelaySeconds": 5, "periodSeconds": 10},
        "livenessProbe": {"tcpSocket": {"port": "redis"}, "initialDelaySeconds": 30, "periodSeconds": 20},
        "resources": canonical_resources(redis["resources"]),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            # Redis writes only under /data (its working directory).
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": REDIS_UID,
            "runAsGroup": REDIS_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "redis-data", "mountPath": "/data"},
            {"name": "redis-config", "mountPath": REDIS_CONFIG_DIR, "readOnly": True},
            {"name": "redis-auth", "mountPath": REDIS_AUTH_DIR, "readOnly": True},
        ],
    }
    # OpenShift (settings' openshift true): no fixed UID, GID or fsGroup, the
    # restricted-v2 SCC assigns them (the image's /data works for any UID in
    # the fsGroup, docs/openshift.md)
    pod_security, container["securityContext"] = restricted_pod_security(
        {"fsGroup": REDIS_UID, "fsGroupChangePolicy": "OnRootMismatch",
         "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        container["securityContext"], settings.get("openshift") is True)
    pod_spec = {
        "automountServiceAccountToken": False,
        "securityContext": pod_security,
        "containers": [container],
        "volumes": [
            {"name": "redis-config", "configMap": {"name": REDIS_CONFIGMAP}},
            {"name": "redis-auth", "secret": {"secretName": REDIS_SECRET, "defaultMode": 0o440,
                                              "items": [{"key": "auth.conf", "path": "auth.conf"}]}},
        ],
    }
    if settings["image_pull_secrets"]:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in settings["image_pull_secrets"]]
    return [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": _meta(REDIS_CONFIGMAP, namespace, labels), "data": {"redis.conf": config}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": _meta(REDIS_SECRET, namespace, labels),
         "data": {"auth.conf": _b64(redis_auth_config(password)),
                  "password": _b64(password),
                  "url": _b64("redis://%s:%s@%s:%d" % (REDIS_SERVICES_USER, password, host, REDIS_PORT)),
                  "username": _b64(REDIS_SERVICES_USER)}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": _meta(REDIS_NAME, namespace, labels),
         "spec": {"clusterIP": "None", "selector": selector,
                  "ports": [{"name": "redis", "port": REDIS_PORT, "targetPort": "redis", "protocol": "TCP"}]}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet",
         "metadata": _meta(REDIS_NAME, namespace, labels),
         "spec": {
             "serviceName": REDIS_NAME,
             "replicas": 1,
             "selector": {"matchLabels": selector},
             "template": {
                 "metadata": {"labels": labels,
                              # A changed redis.conf restarts Redis.
                              "annotations": {"neurallog.io/config-hash": _config_hash(config)}},
                 "spec": pod_spec,
             },
             "volumeClaimTemplates": [{
                 "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                 "metadata": {"name": "redis-data", "labels": selector}, "spec": pvc_spec}],
         }},
    ]


def _config_hash(text):
    import hashlib
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def existing_passwords(secrets_list):
    """Tenant id -> Redis password found in ``secrets_list`` (Secrets as
    kubernetes.core.k8s_info returns them): ``redis-credentials`` in
    ``tenant-{id}``."""
    found = {}
    for item in secrets_list or []:
        if not isinstance(item, dict) or item.get("kind", "Secret") != "Secret":
            continue
        meta = item.get("metadata") or {}
        namespace = meta.get("namespace") or ""
        if meta.get("name") != REDIS_SECRET or not namespace.startswith("tenant-"):
            continue
        encoded = (item.get("data") or {}).get("password")
        if encoded:
            found[namespace[len("tenant-"):]] = base64.b64decode(encoded).decode("utf-8")
    return found


def tenant_resources(tenant, settings, password):
    """Ordered objects of one normalised tenant: Namespaces, then per
    namespace quota, limits, policy and RBAC, then Redis."""
    objects, root = [], tenant["namespaces"][0][0]
    for name, ns_type, org_id in tenant["namespaces"]:
        objects.append(_namespace(settings, tenant, name, ns_type, org_id))
    for name, ns_type, dummy_org in tenant["namespaces"]:
        labels = _labels(settings, tenant, {"app.kubernetes.io/component": "tenant"})
        quota = tenant["quota"] if ns_type == "tenant-root" else tenant["organization_quota"]
        objects.append({"apiVersion": "v1", "kind": "ResourceQuota",
                        "metadata": _meta("tenant-quota", name, labels),
                        "spec": {"hard": _quota_spec(quota)}})
        objects.append(_limit_range(settings, name, labels))
        objects.append(_network_policy(settings, tenant, name, labels))
        objects.extend(_rbac(tenant, name, labels))
    if tenant["redis"]["enabled"]:
        objects.extend(_redis(settings, tenant, root, password))
    for obj in objects:
        if obj["kind"] == "StatefulSet" and len(obj["metadata"]["name"]) > STATEFULSET_NAME_MAX:
            raise TenantError(["tenants[%s]: StatefulSet name %r is longer than %d characters"
                               % (tenant["id"], obj["metadata"]["name"], STATEFULSET_NAME_MAX)])
    return objects


def build_resources(tenants, settings=None, passwords=None, existing_secrets=None, password_length=32,
                    live_namespaces=None):
    """Validate ``tenants`` and build their objects.

    ``passwords`` (tenant id -> Redis password) and ``existing_secrets``
    (Secrets read from the cluster) keep stored passwords; only tenants with
    neither get a new one, so a re-run never rotates. Returns a dict with
    ``resources`` (every object, in apply order), ``tenants`` (a summary per
    tenant, without secrets), ``generated_passwords`` (tenant ids) and
    ``admission_resources`` (the cluster-wide policies guarding every tenant
    namespace, to apply before the tenants). ``live_namespaces`` (Namespaces
    read from the cluster) refuses namespaces that belong to someone else
    (``ownership_conflicts``)."""
    settings = merge(DEFAULT_SETTINGS, settings)
    normalised = validate_tenants(tenants, settings)
    conflicts = ownership_conflicts(normalised, live_namespaces)
    if conflicts:
        raise TenantError(conflicts)
    known = existing_passwords(existing_secrets)
    known.update(dict((k, v) for k, v in (passwords or {}).items() if v))
    resources, summaries, generated = [], [], []
    for tenant in normalised:
        password = None
        if tenant["redis"]["enabled"]:
            password = known.get(tenant["id"])
            if not password:
                password = generate_password(password_length)
                generated.append(tenant["id"])
        resources.extend(tenant_resources(tenant, settings, password))
        summaries.append({
            "id": tenant["id"],
            "name": tenant["name"],
            "tier": tenant["tier"],
            "namespaces": [n[0] for n in tenant["namespaces"]],
            "root_namespace": tenant["namespaces"][0][0],
            "organizations": [o["id"] for o in tenant["organizations"]],
            "quota": _quota_spec(tenant["quota"]),
            "redis": tenant["redis"]["enabled"],
            "ingress_hosts": tenant["ingress_hosts"],
        })
    return {"resources": resources, "tenants": summaries, "generated_passwords": generated,
            "admission_resources": admission_resources(settings)}


def prune_plan(declared_ids, live_namespaces):
    """``offboard_plan`` of the tenants in the cluster (managed tenant-root
    namespaces) that ``declared_ids`` does not name, plus ``undeclared``
    (their ids, sorted)."""
    declared = set(str(tenant_id) for tenant_id in declared_ids or [])
    present = set(labels.get("tenant") for labels in _live_labels(live_namespaces).values()
                  if labels.get("type") == "tenant-root" and labels.get("tenant")
                  and labels.get(MANAGED_BY[0]) == MANAGED_BY[1])
    undeclared = sorted(present - declared)
    plan = offboard_plan(undeclared, live_namespaces)
    plan["undeclared"] = undeclared
    return plan


# ---------------------------------------------------------------------------
# The reconcile of tenants (plugins/action/tenant_plan.py): what to read,
# the prune check, what is pending per phase
# ---------------------------------------------------------------------------

NOT_DECLARED = "Tenants in the cluster but not declared in tenant_list: "
# The admission policies carry no tenant label: listed by their component.
ADMISSION_SELECTOR = "%s=%s,app.kubernetes.io/component=%s" % (MANAGED_BY + (ADMISSION_COMPONENT,))
# Every namespace labelled for a tenant, managed or not (ownership checks).
TENANT_NAMESPACE_SELECTOR = "tenant"
# Above this many tenants one list of everything the collection labels for
# a tenant is shorter than a selector naming each of them.
SELECTOR_MAX_TENANTS = 100


def prune_check(declared_ids, live_namespaces, prune=False, threshold=1, confirm=""):
    """prune_plan() plus ``report`` (the line naming the undeclared tenants)
    and ``refusal`` (why tenant_prune must not run, or ""): an empty
    tenant_list, namespaces that belong to someone else, more tenants than
    ``threshold`` without ``confirm`` equal to their number."""
    declared_ids = [str(tenant_id) for tenant_id in declared_ids or []]
    plan = prune_plan(declared_ids, live_namespaces)
    undeclared = plan["undeclared"]
    if not undeclared:
        report = NOT_DECLARED + "none"
    else:
        report = NOT_DECLARED + "%d: %s%s" % (
            len(undeclared), plan["summary"],
            " - tenant_prune is true: these tenants and namespaces are to be removed" if prune
            else " (kept; set tenant_prune=true to remove them)")
    refusal = ""
    if prune and not declared_ids:
        refusal = ("tenant_prune=true with an empty tenant_list would offboard every tenant in the cluster "
                   "(%d: %s); refusing. Declare the tenants to keep in tenant_list, or offboard tenants one by one "
                   "with playbooks/tenant_offboard.yml. Nothing was changed." % (
                       len(undeclared), ", ".join(undeclared) or "none"))
    elif prune and plan["conflicts"]:
        refusal = ("Refusing to prune: %s. Nothing was changed; check the namespaces' tenant and type labels."
                   % "; ".join(plan["conflicts"]))
    elif prune and len(undeclared) > int(threshold) and str(confirm) != str(len(undeclared)):
        refusal = ("tenant_prune would offboard %d tenants (%s), more than tenant_prune_threshold=%s; to go ahead, "
                   "confirm the number with -e tenant_prune_confirm=%d (given: %s). Nothing was changed." % (
                       len(undeclared), ", ".join(undeclared), threshold, len(undeclared),
                       json.dumps(str(confirm))))
    plan.update(report=report, refusal=refusal)
    return plan


def declared_ids(tenants):
    """The ids of a tenant list as given (before validation)."""
    return [str(tenant["id"]) for tenant in tenants or [] if isinstance(tenant, dict) and "id" in tenant]


def live_selector(tenant_ids):
    """Label selector of every object the collection made for these tenants."""
    ids = sorted(set(tenant_ids))
    if not ids or len(ids) > SELECTOR_MAX_TENANTS:
        return "%s=%s,tenant" % MANAGED_BY
    return "%s=%s,tenant in (%s)" % (MANAGED_BY + (",".join(ids),))


def live_reads(objects, tenant_ids):
    """[(apiVersion, kind, label selector)] to list, once each, to compare
    ``objects`` with the cluster."""
    reads, seen = [], set()
    for obj in objects:
        key = (obj.get("apiVersion", "v1"), obj.get("kind"))
        if key in seen:
            continue
        seen.add(key)
        if key[1] == "Namespace":
            selector = TENANT_NAMESPACE_SELECTOR
        elif (obj.get("metadata") or {}).get("labels", {}).get("app.kubernetes.io/component") == ADMISSION_COMPONENT:
            selector = ADMISSION_SELECTOR
        else:
            selector = live_selector(tenant_ids)
        reads.append(key + (selector,))
    return reads


def _workload(obj, timeout):
    metadata = obj["metadata"]
    return {"api_version": obj.get("apiVersion"), "kind": obj["kind"], "namespace": metadata.get("namespace"),
            "name": metadata["name"], "timeout": int(timeout), "role": "tenant"}


def pending_phases(built, live_groups=None, compare=True, wait_timeout=None, existing_namespaces=None):
    """What to apply of ``built`` (build_resources' result), in two phases.

    ``namespaces``: the admission policies (so no tenant namespace exists
    unguarded), then the Namespaces; ``tenants``: every other object, the
    Secrets apart (``secrets``, applied without output), and in ``wait`` the
    Redis StatefulSets that are applied (waited for when ``wait_timeout`` is
    given). Every object is stamped with its applied hash; with ``compare``
    only those missing, drifted or declared differently in ``live_groups``
    (pending_objects) are kept: ONE comparison for every tenant. With
    ``existing_namespaces`` (check mode) objects of namespaces that do not
    exist yet are left out (a dry run cannot create them; ``new_namespaces``
    names those namespaces). Returns ``{"phases": [...], "new_namespaces":
    [...]}``; a phase with nothing to apply is left out."""
    admission = stamp_applied_hash(built["admission_resources"])
    resources = stamp_applied_hash(built["resources"])
    everything = admission + resources
    pending = pending_objects(everything, live_groups) if compare else everything
    keys = set(object_key(obj) for obj in pending)
    new_namespaces = []
    if existing_namespaces is not None:
        existing = set(existing_namespaces)
        new_namespaces = [obj["metadata"]["name"] for obj in resources
                          if obj["kind"] == "Namespace" and obj["metadata"]["name"] not in existing]
        deferred = set(new_namespaces)
        keys = set(key for key, obj in ((object_key(o), o) for o in pending)
                   if (obj.get("metadata") or {}).get("namespace") not in deferred)
    first = [obj for obj in admission if object_key(obj) in keys]
    first += [obj for obj in resources if obj["kind"] == "Namespace" and object_key(obj) in keys]
    rest = [obj for obj in resources if obj["kind"] != "Namespace" and object_key(obj) in keys]
    phases = []
    if first:
        phases.append({"name": "namespaces", "objects": first, "secrets": [], "wait": []})
    objects = [obj for obj in rest if obj["kind"] != "Secret"]
    secrets_ = [obj for obj in rest if obj["kind"] == "Secret"]
    if objects or secrets_:
        wait = [] if wait_timeout is None else [
            _workload(obj, wait_timeout) for obj in objects if obj["kind"] == "StatefulSet"]
        phases.append({"name": "tenants", "objects": objects, "secrets": secrets_, "wait": wait})
    return {"phases": phases, "new_namespaces": new_namespaces}


def render_groups(built):
    """The files of render mode, as before the engine: <name>.yaml per group
    (the Secrets' group in secrets/)."""
    resources = built["resources"]
    return [
        ("tenant-admission", built["admission_resources"]),
        ("tenants", [o for o in resources if o["kind"] not in ("Secret", "StatefulSet")]),
        ("tenant-secrets", [o for o in resources if o["kind"] == "Secret"]),
        ("tenant-redis", [o for o in resources if o["kind"] == "StatefulSet"]),
    ]


def _survey_list(value):
    """Ids from a survey answer: a list, or text with commas, spaces or lines between them."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else re.split(r"[\s,]+", str(value))
    return [str(item).strip() for item in items if str(item).strip()]


def survey_tenant(answers):
    """The tenant mapping from flat answers, as an AWX / Automation Platform
    job template survey gives them (one variable per field; docs/awx.md):
    ``id``, ``name``, ``tier``, ``organizations`` and ``mcp_organizations``
    (ids; the latter also get an MCP namespace), ``admin_groups`` and
    ``member_groups``. Lists may be given as text (commas, spaces or lines
    between the items). Empty answers are left out, so the tenant settings'
    defaults apply; everything else is checked by the tenant plan like any
    tenant. ValueError when ``id`` is empty."""
    tenant_id = str(answers.get("id") or "").strip()
    if not tenant_id:
        raise ValueError("tenant_onboard_id: the tenant's id is required (a DNS label such as acme)")
    tenant = {"id": tenant_id}
    for key in ("name", "tier"):
        value = str(answers.get(key) or "").strip()
        if value:
            tenant[key] = value
    mcp = _survey_list(answers.get("mcp_organizations"))
    organizations = []
    for org in _survey_list(answers.get("organizations")) + mcp:
        if org not in [o["id"] for o in organizations]:
            organizations.append({"id": org, "mcp": org in mcp} if org in mcp else {"id": org})
    if organizations:
        tenant["organizations"] = organizations
    for key in ("admin_groups", "member_groups"):
        groups = _survey_list(answers.get(key))
        if groups:
            tenant[key] = groups
    return tenant
