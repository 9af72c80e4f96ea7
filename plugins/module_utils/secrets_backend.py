# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the platform's credentials live (``neurallog_secrets_backend``):
the one list of backends (``BACKENDS``) and the one check of the setting
(``check_backend``), used by the plan, OIDC's client secret and the tests
that keep meta/argument_specs.yml's choices equal to it.

- ``kubernetes``: the Secrets are the store (manifests.secret_values).
- ``vault``: a KV version 2 engine holds one entry per credential Secret at
  ``<path_prefix>/<namespace>/<secret name>`` (the Secret's keys are the
  entry's keys); the Secrets are made from it.
- ``external-secrets``: ExternalSecrets replace the Secrets, under the same
  names; the remote keys are ``<key_prefix><namespace>/<secret name>``, the
  same layout, so an External Secrets store on that KV engine reads what the
  vault backend wrote. No credential value passes through Ansible: the plan
  gives every credential a placeholder (``placeholder``), renders the roles
  as usual, then turns each Secret into an ExternalSecret whose template puts
  a reference to the remote value where the placeholder stood.

Also the password forms a server stores instead of the password (PostgreSQL
SCRAM verifiers, Redis ACL hashes), so that a rotation never puts a password
on a command line, and the hash of a consumer's credentials that its pod
template carries. Standard library only."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import hmac
import json
import os
import re

SETTING = "neurallog_secrets_backend"
BACKENDS = ("kubernetes", "vault", "external-secrets")
VAULT_AUTH_METHODS = ("token", "approle", "kubernetes")
STORE_KINDS = ("SecretStore", "ClusterSecretStore")
EXTERNAL_SECRETS_API = "external-secrets.io/v1beta1"
# The pod-template annotation of a consumer: the hash of the credentials it
# uses, so a rotated credential rolls it out (and an unchanged one never does).
CREDENTIALS_HASH_ANNOTATION = "neurallog.io/credentials-hash"

MANAGED_BY = "app.kubernetes.io/managed-by"

_PLACEHOLDER_RE = re.compile(r"NLXREF([0-9]{4})XREFNL")
_KEY_RE = re.compile(r"[^A-Za-z0-9_]")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


class SecretRefError(ValueError):
    """A secrets backend setting or a reference to a user-provided secret
    is invalid; the message names the setting."""


def check_backend(backend):
    """``backend`` (``neurallog_secrets_backend``) if it is one of
    ``BACKENDS``; else SecretRefError naming the setting and what is allowed."""
    if backend not in BACKENDS:
        raise SecretRefError("%s must be one of %s, got %r" % (SETTING, ", ".join(BACKENDS), backend))
    return backend


# -- secrets a user provides (an OIDC client secret ...) ----------------------
# Workloads always read such a value from a Kubernetes Secret of a fixed name
# (``secretKeyRef``), whatever the backend: kubernetes keeps the Secret
# itself; vault keeps the value in the KV entry of that Secret
# (``kv_path``) and the plan writes the Secret from it; external-secrets
# makes the Secret an ExternalSecret reading the remote entry of the same
# layout (``remote_key``), so no value passes through Ansible.

def secret_ref(setting, ref, optional=False):
    """``ref`` ({name, key}) checked; None when ``optional`` and the name is
    empty (no secret, e.g. a public OIDC client)."""
    if not isinstance(ref, dict):
        raise SecretRefError("%s: must be a mapping with name and key, got %r" % (setting, type(ref).__name__))
    unknown = sorted(set(ref) - {"name", "key"})
    if unknown:
        raise SecretRefError("%s: unknown key(s) %s; allowed: name, key" % (setting, ", ".join(unknown)))
    name = ref.get("name") or ""
    if not name and optional:
        return None
    if not isinstance(name, str) or len(name) > 253 or not DNS1123_SUBDOMAIN.fullmatch(name):
        raise SecretRefError("%s.name: must be a Secret name (lowercase letters, digits, '-' and '.'), got %r"
                             % (setting, name))
    key = ref.get("key") or ""
    if not isinstance(key, str) or not SECRET_KEY.fullmatch(key):
        raise SecretRefError("%s.key: must be a Secret key (letters, digits, '-', '_' and '.'), got %r"
                             % (setting, key))
    return {"name": name, "key": key}


def secret_env(env_name, ref):
    """The environment variable ``env_name`` of a container, read from the
    Secret ``ref`` names."""
    return {"name": env_name, "valueFrom": {"secretKeyRef": {"name": ref["name"], "key": ref["key"]}}}


def stored_value(ref, stored, backend="kubernetes"):
    """The value ``ref`` names in what the backend holds, or None:
    kubernetes: ``stored`` is the Secret objects read from the cluster or the
    render folder; vault: the KV entry's data (a dict, or None). The
    external-secrets backend never hands a value to Ansible (SecretRefError)."""
    check_backend(backend)
    if backend == "external-secrets":
        raise SecretRefError("%s=external-secrets: no secret value passes through Ansible" % SETTING)
    if backend == "vault":
        value = (stored or {}).get(ref["key"])
        return str(value) if value else None
    for secret in stored or []:
        meta = secret.get("metadata") or {}
        if meta.get("name") != ref["name"]:
            continue
        encoded = (secret.get("data") or {}).get(ref["key"])
        if encoded:
            return base64.b64decode(encoded).decode("utf-8")
        plain = (secret.get("stringData") or {}).get(ref["key"])
        if plain:
            return str(plain)
    return None


def secret_object(ref, namespace, value, labels=None):
    """The Secret that keeps ``value`` under ``ref`` (a value the user gave,
    e.g. from Ansible Vault, or read from the vault backend; with the
    external-secrets backend a placeholder, and the plan makes it an
    ExternalSecret)."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": ref["name"], "namespace": namespace, "labels": dict(labels or {})},
            "data": {ref["key"]: base64.b64encode(str(value).encode("utf-8")).decode("ascii")}}


def vault_settings_problems(vault):
    """What is missing or wrong in ``neurallog_vault`` for the vault backend
    (a list of messages naming the setting; empty when usable)."""
    vault = vault or {}
    problems = []
    if not re.match(r"^https?://[^/\s]+", str(vault.get("url") or "")):
        problems.append("neurallog_vault.url must be the Vault/OpenBao address (http:// or https://host:port), got %r"
                        % (vault.get("url") or ""))
    method = vault.get("auth_method") or "token"
    if method not in VAULT_AUTH_METHODS:
        problems.append("neurallog_vault.auth_method must be one of %s, got %r" % (", ".join(VAULT_AUTH_METHODS), method))
    needs = {"token": ["token"], "approle": ["role_id", "secret_id"], "kubernetes": ["kubernetes_role"]}
    for key in needs.get(method, []):
        if not vault.get(key):
            problems.append("neurallog_vault.%s is required with neurallog_vault.auth_method=%s" % (key, method))
    if not str(vault.get("kv_mount") or "").strip("/"):
        problems.append("neurallog_vault.kv_mount (the KV version 2 engine's mount) may not be empty")
    return problems


def external_secrets_problems(settings):
    """What is wrong in ``neurallog_external_secrets``."""
    settings = settings or {}
    problems = []
    if not re.match(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", str(settings.get("store_name") or "")):
        problems.append("neurallog_external_secrets.store_name must name the (Cluster)SecretStore (a DNS name), got %r"
                        % (settings.get("store_name") or ""))
    if settings.get("store_kind") not in STORE_KINDS:
        problems.append("neurallog_external_secrets.store_kind must be one of %s, got %r"
                        % (", ".join(STORE_KINDS), settings.get("store_kind")))
    provider = settings.get("store_provider")
    if provider not in (None, {}) and not isinstance(provider, dict):
        problems.append("neurallog_external_secrets.store_provider must be a mapping (the store's spec.provider)")
    return problems


def kv_path(prefix, namespace, name):
    """The KV (or remote) key of the credential Secret ``namespace/name``."""
    return "/".join(part for part in (str(prefix or "").strip("/"), namespace, name) if part)


def remote_key(prefix, namespace, name):
    """An External Secrets remote key: ``<prefix><namespace>/<name>`` (the
    prefix is taken as written, e.g. ``neurallog/``)."""
    return "%s%s/%s" % (prefix or "", namespace, name)


# -- external-secrets: placeholders ------------------------------------------

class Placeholders:
    """Placeholder values standing for credentials the plan never sees.

    A placeholder is letters and digits (16 characters), so it passes every
    check a password passes and survives URL quoting unchanged."""

    def __init__(self):
        self.refs = []   # index -> (namespace, name, key)

    def value(self, namespace, name, key):
        ref = (namespace, name, key)
        if ref not in self.refs:
            self.refs.append(ref)
        return "NLXREF%04dXREFNL" % self.refs.index(ref)

    def values(self, namespace, name, keys):
        return dict((key, self.value(namespace, name, key)) for key in keys)

    def ref(self, text):
        """The (namespace, name, key) of the first placeholder in ``text``, or None."""
        found = _PLACEHOLDER_RE.search(text)
        return self.refs[int(found.group(1))] if found else None


def _template_key(namespace, name, key):
    return _KEY_RE.sub("_", "%s_%s" % (name, key))


def external_secret(secret, placeholders, store, prefix, refresh_interval="1h", shared=None):
    """The ExternalSecret that replaces ``secret`` (same name, namespace,
    labels and type). Values holding placeholders become templates reading
    the credential's remote entry; a Secret without any (a TLS key pair, a
    connection to an external service) is read whole from its own remote
    key (``dataFrom.extract``). ``shared`` (``secret_values_by_text``
    of the Secrets read whole) turns a templated Secret's value that is
    another Secret's value (Elasticsearch's CA certificate in its
    connection Secret) into a reference to that one."""
    metadata = secret.get("metadata") or {}
    namespace, name = metadata.get("namespace"), metadata["name"]
    values = _decoded(secret)
    placeheld = any(_PLACEHOLDER_RE.search(str(value)) for value in values.values())
    refs = {}
    template = {}
    for key in sorted(values):
        text = str(values[key])

        def _replace(match):
            ref = placeholders.refs[int(match.group(1))]
            alias = _template_key(*ref)
            refs[alias] = ref
            return "{{ .%s }}" % alias
        if placeheld and text in (shared or {}) and shared[text][:2] != (namespace, name):
            ref = shared[text]
            refs[_template_key(*ref)] = ref
            template[key] = "{{ .%s }}" % _template_key(*ref)
            continue
        template[key] = _PLACEHOLDER_RE.sub(_replace, text)
    spec = {
        "refreshInterval": refresh_interval,
        "secretStoreRef": {"name": store["name"], "kind": store["kind"]},
        # The Secret the operator makes has the labels but the managed-by
        # one: the platform manages the ExternalSecret, not it (the search
        # for undeclared objects must never take it for a leftover).
        "target": {"name": name, "creationPolicy": "Owner", "deletionPolicy": "Retain",
                   "template": {"type": secret.get("type") or "Opaque", "engineVersion": "v2",
                                "metadata": {"labels": dict((key, value) for key, value in
                                                            (metadata.get("labels") or {}).items()
                                                            if key != MANAGED_BY)}}},
    }
    if refs:
        spec["target"]["template"]["data"] = template
        spec["data"] = [{"secretKey": alias,
                         "remoteRef": {"key": remote_key(prefix, ref[0], ref[1]), "property": ref[2]}}
                        for alias, ref in sorted(refs.items())]
    else:
        spec["dataFrom"] = [{"extract": {"key": remote_key(prefix, namespace, name)}}]
    out_meta = {"name": name, "labels": dict(metadata.get("labels") or {})}
    if namespace:
        out_meta["namespace"] = namespace
    return {"apiVersion": EXTERNAL_SECRETS_API, "kind": "ExternalSecret", "metadata": out_meta, "spec": spec}


def external_objects(objects, placeholders, settings, labels, stores_made=None):
    """``objects`` with every Secret replaced by the ExternalSecret of the
    same name (``external_secret``), preceded, when ``settings``
    (``neurallog_external_secrets``) give the store's provider, by the
    SecretStore of its namespace (or one ClusterSecretStore); ``stores_made``
    (a set) remembers the stores already made across calls. Used for the
    platform's objects and the tenants' alike."""
    stores_made = set() if stores_made is None else stores_made
    store = {"name": settings.get("store_name"), "kind": settings.get("store_kind")}
    provider = settings.get("store_provider") or None
    shared = secret_values_by_text([o for o in objects if o.get("kind") == "Secret"])
    out = []
    for obj in objects:
        if obj.get("kind") != "Secret":
            out.append(obj)
            continue
        namespace = (obj.get("metadata") or {}).get("namespace")
        where = namespace if store["kind"] == "SecretStore" else ""
        if provider and where not in stores_made:
            stores_made.add(where)
            out.append(secret_store(store, namespace, provider, labels))
        out.append(external_secret(obj, placeholders, store, settings.get("key_prefix", ""),
                                   settings.get("refresh_interval") or "1h", shared))
    return out


def _decoded(secret):
    values = dict((key, base64.b64decode(value).decode("utf-8")) for key, value in (secret.get("data") or {}).items())
    values.update(secret.get("stringData") or {})
    return values


def secret_values_by_text(secrets):
    """``{value: (namespace, name, key)}`` of the Secrets without
    placeholders (read whole from their remote keys), values of 16
    characters or more, the first Secret holding a value winning."""
    out = {}
    for secret in secrets:
        values = _decoded(secret)
        if any(_PLACEHOLDER_RE.search(str(value)) for value in values.values()):
            continue
        metadata = secret.get("metadata") or {}
        for key in sorted(values):
            if len(str(values[key])) >= 16:
                out.setdefault(str(values[key]), (metadata.get("namespace"), metadata["name"], key))
    return out


def required_remote_entries(external_secrets):
    """``{remote key: [properties]}`` the store must hold for ``external_secrets``
    (a ``dataFrom.extract`` entry lists ``*``: every key of the Secret)."""
    out = {}
    for obj in external_secrets:
        spec = obj.get("spec") or {}
        for item in spec.get("data") or []:
            out.setdefault(item["remoteRef"]["key"], set()).add(item["remoteRef"]["property"])
        for item in spec.get("dataFrom") or []:
            out.setdefault(item["extract"]["key"], set()).add("*")
    return dict((key, sorted(props)) for key, props in sorted(out.items()))


def secret_store(store, namespace, provider, labels):
    """The (Cluster)SecretStore named by ``store`` with ``provider`` (its
    ``spec.provider``, e.g. a Vault provider whose token is a Secret
    reference): made only when the settings give one."""
    metadata = {"name": store["name"], "labels": dict(labels or {})}
    if store["kind"] == "SecretStore":
        metadata["namespace"] = namespace
    return {"apiVersion": EXTERNAL_SECRETS_API, "kind": store["kind"], "metadata": metadata,
            "spec": {"provider": provider}}


# -- what servers store instead of a password ---------------------------------

def scram_sha256_verifier(password, salt=None, iterations=4096):
    """PostgreSQL's stored form of a password (``SCRAM-SHA-256$<i>:<salt>$<StoredKey>:<ServerKey>``,
    RFC 5803), as libpq's PQencryptPasswordConn makes it: ``ALTER ROLE ...
    PASSWORD '<verifier>'`` sets the password without sending it."""
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (iterations, _b64(salt), _b64(stored_key), _b64(server_key))


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def redis_password_hash(password):
    """The form ``ACL SETUSER <user> #<hash>`` takes (SHA-256, hex)."""
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def elasticsearch_password_hash(password, salt=None, iterations=10000):
    """Elasticsearch's stored form of a password in its PBKDF2 format
    (``{PBKDF2}<iterations>$<salt>$<key>``: PBKDF2-HMAC-SHA512, a 32-byte salt
    and key, base64), a line of the file realm's ``users`` file: the password
    is set without being sent. The salt, unless given, is derived from the
    password (HMAC-SHA256): the same password gives the same line, so a
    re-rendered Secret does not change; a salt protects against tables of
    precomputed hashes, which a generated 32-character password defeats
    anyway."""
    if salt is None:
        salt = hmac.new(password.encode("utf-8"), b"neurallog elasticsearch file realm", hashlib.sha256).digest()
    key = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, 32)
    return "{PBKDF2}%d$%s$%s" % (iterations, _b64(salt), _b64(key))


def credentials_hash(values):
    """A short hash of credential values (any JSON-able data) for a pod
    template's annotation: it changes when a credential does."""
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
