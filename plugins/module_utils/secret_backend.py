# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets a user provides (an OIDC client secret ...): where the value is
kept and how a workload reads it.

Workloads always read such a value from a Kubernetes Secret of a fixed name
(``secretKeyRef``), whatever keeps it. The backend decides where the value
comes from: ``kubernetes`` (today the only one) reads the Secret itself; a
backend such as Vault adds a branch to ``stored_value`` and writes the same
Secret, so the workloads do not change."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import re

BACKENDS = ("kubernetes",)
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


class SecretRefError(ValueError):
    """A reference to a user-provided Secret is invalid; names the setting."""


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
    """The value ``ref`` names, from what the backend holds (kubernetes: the
    Secret objects read from the cluster or the render folder), or None."""
    if backend not in BACKENDS:
        raise SecretRefError("secrets backend %r is not one of %s" % (backend, ", ".join(BACKENDS)))
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
    e.g. from Ansible Vault)."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": ref["name"], "namespace": namespace, "labels": dict(labels or {})},
            "data": {ref["key"]: base64.b64encode(str(value).encode("utf-8")).decode("ascii")}}
