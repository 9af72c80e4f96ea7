# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# Apache License 2.0 (see LICENSE)
"""Helpers shared by the roles' filters: manifest streams and secret values."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import secrets
import string

import yaml

PASSWORD_ALPHABET = string.ascii_letters + string.digits


class _ManifestDumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings as blocks (redis.conf …)."""


def _str_representer(dumper, data):
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_ManifestDumper.add_representer(str, _str_representer)


def _plain(value):
    """Turn Ansible's tagged/lazy containers into plain Python objects."""
    if isinstance(value, dict):
        return dict((str(k), _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def to_manifest_stream(manifests):
    """Serialise objects as one multi-document YAML stream."""
    docs = [_plain(m) for m in (manifests or []) if m]
    return "".join(
        "---\n" + yaml.dump(doc, Dumper=_ManifestDumper, sort_keys=False, default_flow_style=False)
        for doc in docs
    )


def generate_password(length=32):
    """A password of letters and digits only, safe inside URLs and redis.conf."""
    if length < 16:
        raise ValueError("password length must be at least 16, got %d" % length)
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def secret_values(existing, keys, length=32):
    """Values for ``keys``: those already stored in ``existing`` (a Secret as
    returned by kubernetes.core.k8s_info, or its ``resources`` list, or None)
    are kept, the missing ones are generated. A re-run never rotates."""
    if isinstance(existing, dict) and "resources" in existing:
        existing = existing["resources"]
    if isinstance(existing, list):
        existing = existing[0] if existing else None
    data = (existing or {}).get("data") or {}
    values = {}
    for key in keys:
        if data.get(key):
            values[key] = base64.b64decode(data[key]).decode("utf-8")
        else:
            values[key] = generate_password(length)
    return values
