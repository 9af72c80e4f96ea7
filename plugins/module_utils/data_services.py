# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic shared by the data service roles (postgresql, redis, elasticsearch).

Pure Python, unit-tested in tests/unit/test_data_services.py; the filters in
plugins/filter/data_services.py are thin wrappers around these functions."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import re

try:
    from urllib.parse import quote, urlsplit, urlunsplit
except ImportError:  # pragma: no cover - Python 2
    from urllib import quote
    from urlparse import urlsplit, urlunsplit

from ansible_collections.neurallog.platform.plugins.module_utils.manifests import first_object
from ansible_collections.neurallog.platform.plugins.module_utils.quantity import canonical_quantity, parse_quantity


def heap_size_mb(memory_limit, percent=50, maximum_mb=31744, minimum_mb=256):
    """JVM heap in MiB: ``percent`` of the container memory limit, at most
    ``maximum_mb`` (below the ~32 GiB compressed-pointer threshold)."""
    if memory_limit in (None, ""):
        raise ValueError("a memory limit is required to size the heap")
    if not 10 <= int(percent) <= 90:
        raise ValueError("heap percent must be between 10 and 90, got %s" % percent)
    limit_mb = parse_quantity(memory_limit) / (1024 * 1024)
    heap = int(limit_mb * int(percent) / 100)
    heap = min(heap, int(maximum_mb))
    if heap < minimum_mb:
        raise ValueError(
            "memory limit %s gives a heap of %d MiB; at least %d MiB is needed" % (memory_limit, heap, minimum_mb)
        )
    return heap


def connection_url(scheme, host, port, username="", password="", path="", query=None):
    """``scheme://user:password@host:port/path?query`` with the user info and
    path percent-encoded, so any password survives inside the URL."""
    if not scheme or not host:
        raise ValueError("a URL needs a scheme and a host")
    userinfo = ""
    if username or password:
        userinfo = quote(str(username or ""), safe="")
        if password:
            userinfo += ":" + quote(str(password), safe="")
        userinfo += "@"
    netloc = str(host)
    if ":" in netloc and not netloc.startswith("["):
        netloc = "[%s]" % netloc  # IPv6 literal
    if port not in (None, ""):
        netloc += ":%d" % int(port)
    url = "%s://%s%s" % (scheme, userinfo, netloc)
    if path not in (None, ""):
        url += "/" + quote(str(path).lstrip("/"), safe="")
    if query:
        url += "?" + "&".join(
            "%s=%s" % (quote(str(k), safe=""), quote(str(v), safe="")) for k, v in sorted(query.items())
        )
    return url


def url_with_credentials(url, username="", password=""):
    """``url`` (``https://es.example:9200``) with ``username:password@``
    put in, percent-encoded; credentials already in ``url`` are replaced."""
    parts = urlsplit(str(url or ""))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("%r is not an http:// or https:// URL with a host" % (url,))
    host = parts.hostname
    if ":" in host:
        host = "[%s]" % host
    if parts.port:
        host += ":%d" % parts.port
    if username or password:
        userinfo = quote(str(username or ""), safe="")
        if password:
            userinfo += ":" + quote(str(password), safe="")
        host = userinfo + "@" + host
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), parts.query, ""))


_REDIS_UNITS = {"": 1, "k": 1000, "kb": 1024, "m": 1000 ** 2, "mb": 1024 ** 2, "g": 1000 ** 3, "gb": 1024 ** 3}


def redis_memory_bytes(text):
    """Bytes of a redis.conf memory setting (``2gb``, ``512mb``, ``100m``)."""
    match = re.match(r"^\s*([0-9]+)\s*([kmg]b?)?\s*$", str(text).lower())
    if not match:
        raise ValueError("%r is not a Redis memory size (e.g. 2gb, 512mb)" % (text,))
    return int(match.group(1)) * _REDIS_UNITS[match.group(2) or ""]


# ACL users of the Redis servers the collection deploys. The services'
# user may read and write keys and channels but no administrative or
# dangerous command (CONFIG, DEBUG, FLUSHALL, ACL, SHUTDOWN, KEYS, MONITOR,
# REPLICAOF, ...); the replication user may only replicate; the probe user
# may only PING. `default` is switched off: every client names its user.
REDIS_SERVICES_USER = "neurallog"
REDIS_SERVICES_RULES = "~* &* +@all -@admin -@dangerous +info"
REDIS_REPLICATION_USER = "replication"
REDIS_REPLICATION_RULES = "+psync +replconf +ping"
REDIS_PROBE_USER = "probe"
REDIS_PROBE_RULES = "+ping"
_REDIS_USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_REDIS_PASSWORD_RE = re.compile(r"^[!#-~]{16,}$")  # printable, no space or double quote
# Rules that would set, drop or disable a password, or switch a user off:
# the users' passwords come from the Secret only.
_REDIS_RULE_FORBIDDEN = re.compile(r"^([<>#!].*|nopass|resetpass|reset|on|off)$", re.IGNORECASE)


def redis_acl_rules(rules, setting="rules"):
    """``rules`` (a string of Redis ACL rules) checked: no rule may touch
    passwords or switch the user on or off. Returns it with single spaces."""
    tokens = str(rules or "").split()
    if not tokens:
        raise ValueError("%s: must hold at least one ACL rule, e.g. %r" % (setting, REDIS_SERVICES_RULES))
    bad = [t for t in tokens if _REDIS_RULE_FORBIDDEN.match(t)]
    if bad:
        raise ValueError(
            "%s: %s not allowed (passwords and on/off come from the collection); allowed: command, category, "
            "key and channel rules such as +@read, -flushall, ~app:*, &*" % (setting, ", ".join(repr(b) for b in bad))
        )
    return " ".join(tokens)


def redis_acl_config(users, replication=None):
    """redis.conf lines declaring ACL users: ``user default off``, then one
    ``user <name> on ><password> <rules>`` per entry of ``users`` (dicts
    with name, password, rules). ``replication`` names one of them: a
    replica authenticates to its primary as that user (masteruser and
    masterauth). Meant for a file in a Secret, included by redis.conf."""
    lines = ["user default off resetchannels -@all"]
    passwords = {}
    for user in users or []:
        name, password = str(user.get("name") or ""), str(user.get("password") or "")
        if not _REDIS_USER_RE.match(name) or name == "default":
            raise ValueError("%r is not a valid Redis ACL user name (letters, digits, '_.-'; not default)" % (name,))
        if name in passwords:
            raise ValueError("Redis ACL user %r is declared twice" % (name,))
        if not _REDIS_PASSWORD_RE.match(password) or '"' in password:
            raise ValueError("the password of Redis ACL user %r needs 16+ printable characters without spaces or quotes" % (name,))
        rules = redis_acl_rules(user.get("rules"), "rules of Redis ACL user %s" % name)
        passwords[name] = password
        lines.append("user %s reset on >%s %s" % (name, password, rules))
    if replication:
        if replication not in passwords:
            raise ValueError("replication user %r is not among the declared users" % (replication,))
        lines.append("masteruser %s" % replication)
        lines.append('masterauth "%s"' % passwords[replication])
    return "".join(line + "\n" for line in lines)


def secret_data(values):
    """``data`` of a Secret: every value base64-encoded (never stringData,
    which the server folds into ``data`` and so reports as a change)."""
    return dict(
        (str(key), base64.b64encode(str(value).encode("utf-8")).decode("ascii"))
        for key, value in sorted((values or {}).items())
    )


def _claims(statefulset):
    out = {}
    for claim in (statefulset.get("spec") or {}).get("volumeClaimTemplates") or []:
        spec = claim.get("spec") or {}
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        out[(claim.get("metadata") or {}).get("name")] = {
            "storage": canonical_quantity(storage) if storage else None,
            "storageClassName": spec.get("storageClassName") or None,
            "accessModes": sorted(spec.get("accessModes") or []),
        }
    return out


def statefulset_immutable_changes(existing, desired):
    """Differences between a StatefulSet in the cluster and the one about to
    be applied in fields the API server refuses to change (it answers 422).

    Returns a list of ``field: stored -> wanted`` strings, empty when the
    apply can go ahead. ``existing`` may be None or a k8s_info result."""
    if isinstance(existing, dict) and "resources" in existing:
        existing = existing["resources"]
    if isinstance(existing, list):
        existing = existing[0] if existing else None
    if not existing:
        return []
    old, new = existing.get("spec") or {}, desired.get("spec") or {}
    changes = []
    for field, default in (("serviceName", None), ("podManagementPolicy", "OrderedReady"), ("selector", None)):
        before, after = old.get(field) or default, new.get(field) or default
        if before != after:
            changes.append("spec.%s: %s -> %s" % (field, before, after))
    old_claims, new_claims = _claims(existing), _claims(desired)
    if sorted(old_claims) != sorted(new_claims):
        changes.append(
            "spec.volumeClaimTemplates: %s -> %s" % (", ".join(sorted(old_claims)), ", ".join(sorted(new_claims)))
        )
    for name in sorted(set(old_claims) & set(new_claims)):
        for field in ("storage", "storageClassName", "accessModes"):
            before, after = old_claims[name][field], new_claims[name][field]
            if before != after:
                changes.append("spec.volumeClaimTemplates[%s].%s: %s -> %s" % (name, field, before, after))
    return changes


def elasticsearch_bootstrap_nodes(statefulsets, configmaps, initial_masters, rendered=False):
    """The master list of Elasticsearch's bootstrap ConfigMap
    (``cluster.initial_master_nodes``, read by the start script of a node
    whose data path is empty).

    ``statefulsets`` and ``configmaps`` are what the cluster holds (lists, a
    k8s_info result or None), ``initial_masters`` the first nodes' names.
    - render mode: empty, what a running cluster has (the first bootstrap of
      a fresh cluster from rendered files is a one-off step, see the role's
      README);
    - no StatefulSet: the first bootstrap, ``initial_masters``;
    - a StatefulSet with a Ready node: empty (a node is Ready only once the
      cluster has an elected master: the cluster has formed);
    - a StatefulSet with no Ready node yet: the ConfigMap's value is kept (a
      first bootstrap still under way); without a ConfigMap no node has ever
      started (the pods mount it, not optionally: a first install stopped
      between the StatefulSet and the ConfigMap), so ``initial_masters``."""
    if rendered:
        return ""
    statefulset = first_object(statefulsets)
    if not statefulset:
        return initial_masters
    if int((statefulset.get("status") or {}).get("readyReplicas") or 0) > 0:
        return ""
    configmap = first_object(configmaps)
    if not configmap:
        return initial_masters
    return str((configmap.get("data") or {}).get("initial-master-nodes") or "")


def _stored_keys(existing):
    secret = first_object(existing)
    return set(secret.get("data") or {}) | set(secret.get("stringData") or {})


def lost_credentials(existing, keys, claims, service, secret_name, namespace, credentials_secret="",
                     credentials_namespace="", reset=False, added_keys=()):
    """Why generating passwords now would lock a data service out of its
    data, or "" when it is safe.

    ``existing`` is the k8s_info result (or list, or Secret) of the Secret
    that keeps the passwords, ``claims`` the service's PersistentVolumeClaims.
    Generating is safe on a first install (no volume) or when every key is
    stored; a missing key while a volume exists means the volume was
    initialised with a password this run no longer knows. ``reset`` (the
    service listed in neurallog_reset_credentials) allows it deliberately.
    ``added_keys`` came with a later version (a password the platform sets on
    the server itself): one missing is generated, but only next to stored
    ones."""
    stored = _stored_keys(existing)
    missing = [key for key in keys if key not in stored and not (key in added_keys and stored)]
    if isinstance(claims, dict) and "resources" in claims:
        claims = claims["resources"]
    claim_names = sorted(((claim.get("metadata") or {}).get("name") or "?") for claim in (claims or []))
    if not missing or not claim_names or reset:
        return ""
    state = "is missing" if not first_object(existing) else "lacks the key(s) %s" % ", ".join(missing)
    copy_hint = ""
    if credentials_secret:
        copy_hint = (" The application's copy in Secret %s/%s (key password) holds the application password if "
                     "it still exists." % (credentials_namespace or namespace, credentials_secret))
    literals = " ".join("--from-literal=%s=<old value>" % key for key in keys)
    return (
        "%s: the Secret %s/%s that keeps its password(s) (%s) %s, but its data volume(s) %s still exist, "
        "initialised with the old password(s). Generating new ones would lock the platform out of its data, "
        "so nothing was changed. Restore the Secret from your backup (kubectl apply -f <backup of the Secret>), "
        "or recreate it with the old values: kubectl -n %s create secret generic %s %s.%s "
        "To reset the password(s) deliberately instead, run again with "
        "-e '{\"neurallog_reset_credentials\": [\"%s\"]}' and then set the new password(s) inside %s yourself "
        "(the data on the volume keeps the old ones)."
        % (service, namespace, secret_name, ", ".join(keys), state, ", ".join(claim_names), namespace,
           secret_name, literals, copy_hint, service, service))
