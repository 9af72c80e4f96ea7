# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers shared by the roles' filters: manifest streams, secret values,
and the comparison of declared with live objects."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import glob
import hashlib
import json
import os
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


def first_object(existing):
    """The first object of a k8s_info result, of its ``resources`` list, the
    object itself, or {} for None or nothing found."""
    if isinstance(existing, dict) and "resources" in existing:
        existing = existing["resources"]
    if isinstance(existing, list):
        existing = existing[0] if existing else None
    return existing or {}


def secret_values(existing, keys, length=32):
    """Values for ``keys``: those already stored in ``existing`` (a Secret as
    returned by kubernetes.core.k8s_info, or its ``resources`` list, or None)
    are kept, the missing ones are generated. A re-run never rotates."""
    data = first_object(existing).get("data") or {}
    values = {}
    for key in keys:
        if data.get(key):
            values[key] = base64.b64decode(data[key]).decode("utf-8")
        else:
            values[key] = generate_password(length)
    return values


# Render mode writes Secrets here, under the render folder, apart from the
# other manifests (folder 0700, files 0600).
RENDER_SECRETS_DIR = "secrets"


def rendered_secrets(render_dir, name=None, namespace=None):
    """Secrets an earlier render wrote to ``<render_dir>/secrets/*.yaml``,
    optionally only those named ``name`` and/or in ``namespace``, in the
    form kubernetes.core.k8s_info returns them (base64 ``data``). A
    re-render reads its passwords and certificates back from there, so it
    writes the same bytes and never rotates a credential."""
    found = []
    if not render_dir:
        return found
    for path in sorted(glob.glob(os.path.join(render_dir, RENDER_SECRETS_DIR, "*.yaml"))):
        with open(path) as handle:
            for doc in yaml.safe_load_all(handle):
                if not isinstance(doc, dict) or doc.get("kind") != "Secret":
                    continue
                metadata = doc.get("metadata") or {}
                if name is not None and metadata.get("name") != name:
                    continue
                if namespace is not None and metadata.get("namespace") != namespace:
                    continue
                if doc.get("stringData"):
                    data = dict(doc.get("data") or {})
                    for key, value in doc["stringData"].items():
                        data[key] = base64.b64encode(str(value).encode("utf-8")).decode("ascii")
                    doc = dict(doc, data=data)
                    doc.pop("stringData")
                found.append(doc)
    return found


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


APPLIED_HASH_ANNOTATION = "neurallog.io/applied-hash"


def _hashable(manifest):
    """The object without the applied-hash annotation, as canonical JSON
    (shallow copies only: the objects can be large and are not modified)."""
    obj = dict(manifest)
    metadata = dict(obj.get("metadata") or {})
    annotations = dict(metadata.get("annotations") or {})
    annotations.pop(APPLIED_HASH_ANNOTATION, None)
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    obj["metadata"] = metadata
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def applied_hash(manifest):
    """sha256 of what is applied (without the annotation that carries it)."""
    return hashlib.sha256(_hashable(manifest).encode("utf-8")).hexdigest()


def stamp_applied_hash(manifests):
    """Each object with the annotation ``neurallog.io/applied-hash``: the hash
    of the object as declared. A later run compares it with the live object's
    to notice fields that were removed from the declaration (which a
    comparison of the declared fields alone cannot see)."""
    out = []
    for manifest in manifests or []:
        obj = dict(manifest)
        metadata = dict(obj.get("metadata") or {})
        annotations = dict(metadata.get("annotations") or {})
        annotations.pop(APPLIED_HASH_ANNOTATION, None)
        metadata["annotations"] = annotations
        obj["metadata"] = metadata
        if not annotations:
            metadata.pop("annotations")
        digest = applied_hash(obj)
        metadata["annotations"] = dict(annotations, **{APPLIED_HASH_ANNOTATION: digest})
        out.append(obj)
    return out


def is_subset(declared, live):
    """True when every field of ``declared`` has the same value in ``live``.
    Dicts may have more keys live; lists must have the same length, item by
    item (a list that grew live counts as a difference)."""
    if isinstance(declared, dict):
        if not isinstance(live, dict):
            return False
        return all(key in live and is_subset(value, live[key]) for key, value in declared.items())
    if isinstance(declared, list):
        if not isinstance(live, list) or len(declared) != len(live):
            return False
        return all(is_subset(d, l) for d, l in zip(declared, live))
    if isinstance(declared, bool) or isinstance(live, bool):
        return declared is live
    return declared == live


def _key(kind, namespace, name):
    return "%s/%s/%s" % (kind, namespace or "", name)


def pending_objects(manifests, live_groups):
    """The objects that an apply could change, in their order.

    ``manifests`` are stamped with :func:`stamp_applied_hash`; ``live_groups``
    is a list of ``{"kind": K, "items": [...]}`` (what the cluster holds of
    each kind, listed by label). An object is left out only when it exists
    live with the same applied hash and every declared field has the declared
    value: nothing was removed from the declaration and nothing declared
    drifted. Everything else (missing, drifted, declared differently, a kind
    that was not listed) is returned, so applying the result is equivalent to
    applying everything."""
    live = {}
    listed = set()
    for group in live_groups or []:
        kind = group.get("kind")
        listed.add(kind)
        for item in group.get("items") or []:
            metadata = item.get("metadata") or {}
            live[_key(kind, metadata.get("namespace"), metadata.get("name"))] = item
    out = []
    for manifest in manifests or []:
        metadata = manifest.get("metadata") or {}
        current = live.get(_key(manifest.get("kind"), metadata.get("namespace"), metadata.get("name")))
        declared_hash = (metadata.get("annotations") or {}).get(APPLIED_HASH_ANNOTATION)
        live_hash = (((current or {}).get("metadata") or {}).get("annotations") or {}).get(APPLIED_HASH_ANNOTATION)
        if (manifest.get("kind") in listed and current is not None and declared_hash
                and declared_hash == live_hash and is_subset(manifest, current)):
            continue
        out.append(manifest)
    return out
