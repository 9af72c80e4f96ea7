# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Platform objects that a run no longer declares.

site.yml records what each apply declares (object_keys); afterwards the
objects carrying the platform's labels in the platform namespaces are
compared with that record. Whatever is left over was removed from the
settings (a core service, an autoscaler, monitoring) and keeps running
unless it is reported and, when asked, deleted. Objects that hold data are
never deleted: PersistentVolumeClaims and the Secrets of the data namespace
(the passwords the data on those volumes was initialised with)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re


def object_key(obj):
    """kind/namespace/name of an object (apiVersion left out: an object
    moved to another API version is the same object)."""
    metadata = obj.get("metadata") or {}
    return "%s/%s/%s" % (obj.get("kind"), metadata.get("namespace") or "", metadata.get("name"))


def object_keys(manifests):
    """The keys of the given objects, in order, without repeats."""
    seen, out = set(), []
    for obj in manifests or []:
        if not isinstance(obj, dict) or not obj.get("kind"):
            continue
        key = object_key(obj)
        if key not in seen:
            seen.add(key)
            out.append(key)
    return out


def _claim_of_declared_statefulset(claim, statefulsets):
    """A PVC made from a volumeClaimTemplate: <template>-<statefulset>-<ordinal>."""
    metadata = claim.get("metadata") or {}
    for namespace, name in statefulsets:
        if namespace == (metadata.get("namespace") or "") and re.match(
                r"^.+-%s-[0-9]+$" % re.escape(name), metadata.get("name") or ""):
            return True
    return False


def undeclared_objects(live, declared, keep_secret_namespaces=None):
    """Split the live objects that are not declared into those that may be
    removed and those that are only reported because they hold data.

    ``live`` is a list of objects (as listed by label), ``declared`` a list
    of object keys. Objects owned by another object (ownerReferences) are
    left to their owner. Returns {"remove": [...], "keep": [...]}; each entry
    is an object reference (apiVersion, kind, metadata.namespace and
    metadata.name; kept ones also have reason), sorted."""
    declared = set(declared or [])
    keep_secret_namespaces = set(keep_secret_namespaces or [])
    statefulsets = set()
    for key in declared:
        kind, namespace, name = key.split("/", 2)
        if kind == "StatefulSet":
            statefulsets.add((namespace, name))
    remove, keep = [], []
    for obj in live or []:
        metadata = obj.get("metadata") or {}
        if metadata.get("ownerReferences") or object_key(obj) in declared:
            continue
        entry = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                 "metadata": {"namespace": metadata.get("namespace") or "", "name": metadata.get("name")}}
        if obj.get("kind") == "PersistentVolumeClaim":
            if _claim_of_declared_statefulset(obj, statefulsets):
                continue
            keep.append(dict(entry, reason="data volume"))
        elif obj.get("kind") == "Secret" and entry["metadata"]["namespace"] in keep_secret_namespaces:
            keep.append(dict(entry, reason="password of data"))
        else:
            remove.append(entry)

    def order(item):
        return (item["metadata"]["namespace"], item["kind"], item["metadata"]["name"])

    return {"remove": sorted(remove, key=order), "keep": sorted(keep, key=order)}


def describe(entries):
    """Kind namespace/name (Kind name for cluster-scoped objects), comma-separated."""
    parts = []
    for entry in entries or []:
        reason = " (%s)" % entry["reason"] if entry.get("reason") else ""
        namespace = entry["metadata"].get("namespace")
        where = "%s/%s" % (namespace, entry["metadata"]["name"]) if namespace else entry["metadata"]["name"]
        parts.append("%s %s%s" % (entry["kind"], where, reason))
    return ", ".join(parts)
