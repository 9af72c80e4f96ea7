# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ingress NetworkPolicies of the platform namespaces, built from data.

A description names a namespace, the pods it protects and who may reach them
on which ports; ``deny: true`` makes the namespace's default-deny policy.
Peers are namespaces (selected by ``kubernetes.io/metadata.name``, which the
API server sets and nobody can forge), namespaces by labels
(``namespace_labels``: OpenShift's ``policy-group.network.openshift.io/ingress``
that its router's namespace and host network carry), pods of the policy's
own namespace, or every tenant namespace (label ``tenant``). Errors name the setting and what is
allowed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
PROTOCOLS = ("TCP", "UDP", "SCTP")
POLICY_KEYS = ("name", "namespace", "deny", "pods", "from", "ports")
PEER_KEYS = ("namespace", "namespace_labels", "pods", "tenants")
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
TENANT_LABEL = "tenant"


def _labels(path, value, errors):
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k and v for k, v in value.items()):
        errors.append("%s: must be a mapping of label names to non-empty strings, got %r" % (path, value))
        return {}
    return dict(sorted(value.items()))


def _ports(path, ports, errors):
    if ports is None:
        return []
    if not isinstance(ports, list):
        errors.append("%s: must be a list of ports (numbers or {port, protocol})" % path)
        return []
    out, seen = [], set()
    for index, item in enumerate(ports):
        where = "%s[%d]" % (path, index)
        if not isinstance(item, dict):
            item = {"port": item}
        protocol = item.get("protocol", "TCP")
        port = item.get("port")
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            errors.append("%s.port: must be a number from 1 to 65535, got %r" % (where, item.get("port")))
            continue
        if protocol not in PROTOCOLS:
            errors.append("%s.protocol: %r is not one of %s" % (where, protocol, ", ".join(PROTOCOLS)))
            continue
        if (protocol, port) not in seen:
            seen.add((protocol, port))
            # protocol is always written: the API server would default it,
            # and a re-run would then see a difference.
            out.append({"protocol": protocol, "port": port})
    return sorted(out, key=lambda p: (p["port"], p["protocol"]))


def _peer(path, peer, errors):
    if not isinstance(peer, dict) or not peer or set(peer) - set(PEER_KEYS):
        errors.append("%s: must be a mapping with keys from %s, got %r" % (path, ", ".join(PEER_KEYS), peer))
        return None
    if peer.get("tenants"):
        if set(peer) != {"tenants"} or peer["tenants"] is not True:
            errors.append("%s: 'tenants: true' stands alone" % path)
            return None
        return {"namespaceSelector": {"matchExpressions": [{"key": TENANT_LABEL, "operator": "Exists"}]}}
    out = {}
    if "namespace" in peer:
        if not isinstance(peer["namespace"], str) or not NAME_RE.match(peer["namespace"]):
            errors.append("%s.namespace: %r is not a namespace name" % (path, peer["namespace"]))
            return None
        out["namespaceSelector"] = {"matchLabels": {NAMESPACE_NAME_LABEL: peer["namespace"]}}
    if "namespace_labels" in peer:
        selector = peer["namespace_labels"]
        # label values may be empty here (policy-group.network.openshift.io/ingress: "")
        if "namespace" in peer or not isinstance(selector, dict) or not selector or not all(
                isinstance(k, str) and k and isinstance(v, str) for k, v in selector.items()):
            errors.append("%s.namespace_labels: must be a non-empty mapping of label names to strings, without "
                          "namespace, got %r" % (path, selector))
            return None
        out["namespaceSelector"] = {"matchLabels": dict(sorted(selector.items()))}
    if "pods" in peer:
        pods = _labels(path + ".pods", peer["pods"], errors)
        # An empty selector is written as {}: the API server drops an empty
        # matchLabels, and a re-run would then see a difference.
        out["podSelector"] = {"matchLabels": pods} if pods else {}
    if not out:
        errors.append("%s: needs namespace, namespace_labels, pods or tenants" % path)
        return None
    return out


def network_policies(descriptions, labels=None, setting="network_policies"):
    """NetworkPolicy objects (policyTypes Ingress) of ``descriptions``.

    Raises ValueError listing every problem, each prefixed with ``setting``."""
    errors, objects, seen = [], [], set()
    if not isinstance(descriptions, list):
        raise ValueError("%s: must be a list of policy descriptions" % setting)
    for index, item in enumerate(descriptions):
        where = "%s[%d]" % (setting, index)
        if not isinstance(item, dict):
            errors.append("%s: must be a mapping with name and namespace" % where)
            continue
        unknown = sorted(set(item) - set(POLICY_KEYS))
        if unknown:
            errors.append("%s: unknown keys %s; allowed: %s" % (where, ", ".join(unknown), ", ".join(POLICY_KEYS)))
        name, namespace = item.get("name"), item.get("namespace")
        if not isinstance(name, str) or not NAME_RE.match(name):
            errors.append("%s.name: %r is not a DNS-1123 label" % (where, name))
            continue
        if not isinstance(namespace, str) or not NAME_RE.match(namespace):
            errors.append("%s.namespace: %r is not a namespace name" % (where, namespace))
            continue
        if (namespace, name) in seen:
            errors.append("%s: %s/%s is described twice" % (where, namespace, name))
            continue
        seen.add((namespace, name))
        spec = {"podSelector": {}, "policyTypes": ["Ingress"]}
        pods = _labels(where + ".pods", item.get("pods"), errors)
        if pods:
            spec["podSelector"] = {"matchLabels": pods}
        if item.get("deny"):
            if item.get("from") or item.get("ports") or pods:
                errors.append("%s: a 'deny' policy selects every pod and has no from or ports" % where)
                continue
        else:
            peers = item.get("from")
            if not isinstance(peers, list) or not peers:
                errors.append("%s.from: must be a non-empty list of peers (an empty list would allow everyone)"
                              % where)
                continue
            rule = {"from": [p for p in (_peer("%s.from[%d]" % (where, i), peer, errors)
                                         for i, peer in enumerate(peers)) if p]}
            ports = _ports(where + ".ports", item.get("ports"), errors)
            if ports:
                rule["ports"] = ports
            spec["ingress"] = [rule]
        metadata = {"name": name, "namespace": namespace}
        if labels:
            metadata["labels"] = dict(labels)
        objects.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                        "metadata": metadata, "spec": spec})
    if errors:
        raise ValueError("; ".join(errors))
    return objects
