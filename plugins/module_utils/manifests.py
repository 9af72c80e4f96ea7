# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers shared by the roles' filters: manifest streams and secret values."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import secrets
import string

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML comes with ansible-core
    yaml = None

PASSWORD_ALPHABET = string.ascii_letters + string.digits


def _dumper():
    """SafeDumper that writes multi-line strings as blocks (redis.conf …)."""

    class ManifestDumper(yaml.SafeDumper):
        pass

    def str_representer(dumper, data):
        style = "|" if "\n" in data else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    ManifestDumper.add_representer(str, str_representer)
    return ManifestDumper


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
    dumper = _dumper()
    return "".join(
        "---\n" + yaml.dump(doc, Dumper=dumper, sort_keys=False, default_flow_style=False)
        for doc in docs
    )


def generate_password(length=32):
    """A password of letters and digits only, safe inside URLs and redis.conf."""
    if length < 16:
        raise ValueError("password length must be at least 16, got %d" % length)
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _position in range(length))


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


def split_for_check_mode(manifests, existing_namespaces):
    """Split objects for a check-mode run: a server-side dry run of an object
    whose namespace does not exist yet fails, although the real run would
    create that namespace first. Returns ``{"apply": [...], "deferred": [...]}``;
    deferred objects are reported as "would be created" (``deferred_names``:
    ``Kind namespace/name``, nothing of their content)."""
    existing = set(existing_namespaces or [])
    out = {"apply": [], "deferred": [], "deferred_names": []}
    for manifest in manifests or []:
        metadata = (manifest or {}).get("metadata") or {}
        namespace = metadata.get("namespace")
        if namespace and namespace not in existing:
            out["deferred"].append(manifest)
            out["deferred_names"].append("%s %s/%s" % (manifest.get("kind"), namespace, metadata.get("name")))
        else:
            out["apply"].append(manifest)
    return out
