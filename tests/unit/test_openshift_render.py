# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OpenShift flavour in render mode (neurallog_openshift=true, no
cluster): site.yml and the local inventory's tenant rendered twice, plain
and OpenShift, into folders holding the same Secrets; every workload
without a fixed UID/GID/fsGroup, Routes with the right hosts and TLS, no
Ingress unless asked, and nothing else different from the plain render."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from test_render import ROOT, VERSIONS, render_into

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod"}
FIXED_IDS = {"runAsUser", "runAsGroup", "fsGroup"}
HASH = "neurallog.io/applied-hash"
ROUTER_LABELS = {"policy-group.network.openshift.io/ingress": ""}


def _load(folder):
    """(kind, namespace, name) -> object of every rendered file, Secrets
    included, without the applied-hash stamp (it hashes the content)."""
    out = {}
    for path in sorted(folder.glob("*.yaml")) + sorted(folder.glob("secrets/*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            (doc["metadata"].get("annotations") or {}).pop(HASH, None)
            if doc["metadata"].get("annotations") == {}:
                del doc["metadata"]["annotations"]
            out[(doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"])] = doc
    return out


def _render(folder, *extra):
    render_into(folder, "site.yml", "local", *extra)
    render_into(folder, "playbooks/tenants.yml", "local", *extra)
    return _load(folder)


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    base = tmp_path_factory.mktemp("openshift")
    plain = _render(base / "plain")
    # the same passwords and certificates: the render reads secrets/ back
    for name in ("openshift", "both"):
        (base / name).mkdir()
        shutil.copytree(str(base / "plain" / "secrets"), str(base / name / "secrets"))
    openshift = _render(base / "openshift", "neurallog_openshift=true")
    both = _render(base / "both", "neurallog_openshift=true", "ingress_openshift_keep_ingress=true")
    return {"plain": plain, "openshift": openshift, "both": both}


def _pod_specs(doc):
    spec = doc.get("spec") or {}
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    if doc["kind"] != "Pod":
        spec = spec["template"]["spec"]
    return spec


def _security_contexts(doc):
    """(where, securityContext) of the pod and of each of its containers."""
    pod = _pod_specs(doc)
    out = [("pod", pod.get("securityContext") or {})]
    for container in (pod.get("initContainers") or []) + (pod.get("containers") or []):
        out.append((container["name"], container.get("securityContext") or {}))
    return out


def test_no_workload_fixes_a_uid_gid_or_fsgroup(renders):
    workloads = [d for d in renders["openshift"].values() if d["kind"] in WORKLOAD_KINDS]
    names = {(d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]) for d in workloads}
    # the three data services, the eight core services and the tenant's Redis
    assert {("StatefulSet", "neurallog-data", "postgresql"), ("StatefulSet", "neurallog-data", "redis"),
            ("StatefulSet", "neurallog-data", "elasticsearch"), ("Deployment", "neurallog-system", "api-gateway"),
            ("Deployment", "neurallog-system", "tenant-router"), ("StatefulSet", "tenant-demo", "redis")} <= names
    assert len(workloads) == 12, sorted(names)
    for doc in workloads:
        for where, context in _security_contexts(doc):
            assert not FIXED_IDS & set(context), (doc["kind"], doc["metadata"]["name"], where, context)
            if where == "pod":
                assert context["runAsNonRoot"] is True
                assert context["seccompProfile"] == {"type": "RuntimeDefault"}
            else:
                # what the restricted profile asks of every container stays
                assert context["allowPrivilegeEscalation"] is False, (doc["metadata"]["name"], where)
                assert context["capabilities"] == {"drop": ["ALL"]}, (doc["metadata"]["name"], where)
                assert context["runAsNonRoot"] is True
                assert context["seccompProfile"] == {"type": "RuntimeDefault"}


def test_the_plain_render_keeps_its_fixed_ids(renders):
    workloads = [d for d in renders["plain"].values() if d["kind"] in WORKLOAD_KINDS]
    assert len(workloads) == 12
    for doc in workloads:
        contexts = _security_contexts(doc)
        assert "fsGroup" in contexts[0][1], doc["metadata"]["name"]
        assert all("runAsUser" in c for _where, c in contexts[1:]) or "runAsUser" in contexts[0][1]
    assert not [k for k in renders["plain"] if k[0] == "Route" or k[2] == "neurallog-router-tls"]


def test_routes_with_their_hosts_and_tls_and_no_ingress(renders):
    objects = renders["openshift"]
    assert not [k for k in objects if k[0] == "Ingress" and k[1] == "neurallog-system"]
    routes = dict((k[2], d) for k, d in objects.items() if k[0] == "Route")
    assert sorted(routes) == ["api", "tenants"]
    api, tenants = routes["api"], routes["tenants"]
    assert api["apiVersion"] == "route.openshift.io/v1"
    assert api["metadata"]["namespace"] == tenants["metadata"]["namespace"] == "neurallog-system"
    assert api["spec"]["host"] == "api.neurallog.test" and api["spec"]["wildcardPolicy"] == "None"
    # *.api.<domain>: a DNS name with the Subdomain policy
    assert tenants["spec"]["host"] == "wildcard.api.neurallog.test"
    assert tenants["spec"]["wildcardPolicy"] == "Subdomain"
    assert api["spec"]["to"] == {"kind": "Service", "name": "api-gateway", "weight": 100}
    assert tenants["spec"]["to"] == {"kind": "Service", "name": "tenant-router", "weight": 100}
    secret = objects[("Secret", "neurallog-system", "neurallog-tls")]
    assert secret["type"] == "kubernetes.io/tls"
    for route in (api, tenants):
        assert route["spec"]["port"] == {"targetPort": "http"}
        # the Ingress' certificate, by reference: no key in the Route
        assert route["spec"]["tls"] == {"termination": "edge", "insecureEdgeTerminationPolicy": "Redirect",
                                        "externalCertificate": {"name": "neurallog-tls"}}
        assert route["metadata"]["annotations"] == {"haproxy.router.openshift.io/timeout": "300s"}
    role = objects[("Role", "neurallog-system", "neurallog-router-tls")]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["neurallog-tls"],
                              "verbs": ["get", "list", "watch"]}]
    binding = objects[("RoleBinding", "neurallog-system", "neurallog-router-tls")]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "router", "namespace": "openshift-ingress"}]
    for key in (("Role", "neurallog-system", "neurallog-router-tls"),
                ("RoleBinding", "neurallog-system", "neurallog-router-tls")):
        for version in VERSIONS:
            kubernetes_validate.validate(objects[key], version, strict=True)


def test_keeping_the_ingress_renders_both(renders):
    objects = renders["both"]
    assert ("Ingress", "neurallog-system", "api-ingress") in objects
    assert len([k for k in objects if k[0] == "Route"]) == 2


def _without(doc, paths):
    doc = yaml.safe_load(yaml.safe_dump(doc))
    for path in paths:
        node = doc
        for key in path[:-1]:
            node = node[key]
        node.pop(path[-1], None)
    return doc


def test_nothing_else_differs_from_the_plain_render(renders):
    """Every difference between the two renders, listed and checked: the
    fixed IDs gone, PGUSER for PostgreSQL's probe, Routes and their RBAC
    instead of the Ingress, the router admitted by the front policies."""
    plain, openshift = renders["plain"], renders["openshift"]
    added = sorted(set(openshift) - set(plain))
    removed = sorted(set(plain) - set(openshift))
    assert added == [("Role", "neurallog-system", "neurallog-router-tls"),
                     ("RoleBinding", "neurallog-system", "neurallog-router-tls"),
                     ("Route", "neurallog-system", "api"), ("Route", "neurallog-system", "tenants")]
    assert removed == [("Ingress", "neurallog-system", "api-ingress")]
    changed = sorted(k for k in set(plain) & set(openshift) if plain[k] != openshift[k])
    for key in changed:
        before, after = plain[key], openshift[key]
        if key[0] in WORKLOAD_KINDS:
            pod = ["spec", "template", "spec"]
            paths = [pod + ["securityContext", field] for field in FIXED_IDS]
            for index in range(len(before["spec"]["template"]["spec"]["containers"])):
                paths += [pod + ["containers", index, "securityContext", f] for f in FIXED_IDS]
            if key == ("StatefulSet", "neurallog-data", "postgresql"):
                env = after["spec"]["template"]["spec"]["containers"][0]["env"]
                assert {"name": "PGUSER", "value": "postgres"} in env
                env.remove({"name": "PGUSER", "value": "postgres"})
            assert _without(before, paths) == after, key
        elif key[0] == "NetworkPolicy":
            assert key[2] in ("allow-api-gateway", "allow-tenant-router"), key
            peers = after["spec"]["ingress"][0]["from"]
            assert {"namespaceSelector": {"matchLabels": ROUTER_LABELS}} in peers
            peers.remove({"namespaceSelector": {"matchLabels": ROUTER_LABELS}})
            assert before == after, key
        else:
            pytest.fail("unexpected difference in %s" % (key,))
    assert {k[1:] for k in changed if k[0] in WORKLOAD_KINDS} == set(
        [("neurallog-data", name) for name in ("postgresql", "redis", "elasticsearch")]
        + [("tenant-demo", "redis")]
        + [("neurallog-system", name) for name in ("api-gateway", "tenant-router", "api-service", "log-service",
                                                   "rule-service", "mcp-service", "auth-service", "action-service")])


@pytest.mark.parametrize("extra,message", [
    (["neurallog_openshift=maybe"], "value of neurallog_openshift must be one of: auto, True, False, true, false, got: maybe"),
    (["neurallog_openshift=true", "ingress_route_termination=reencrypt", "ingress_tls_mode=none"],
     "ingress_route_termination 'reencrypt' needs a certificate: ingress_tls_mode may not be 'none'"),
    (["neurallog_openshift=true", "ingress_route_termination=passthrough"],
     "ingress_route_termination must be one of: edge, reencrypt"),
])
def test_bad_settings_fail_before_anything_is_written(tmp_path, extra, message):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               K8S_AUTH_KUBECONFIG=str(tmp_path / "none"), KUBECONFIG=str(tmp_path / "none"))
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "site.yml", "-i", "inventories/local",
           "-e", "neurallog_render_dir=%s" % (tmp_path / "out")]
    for arg in extra:
        cmd += ["-e", arg]
    proc = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=600, check=False)
    output = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0
    assert message in output, output[-3000:]
    assert not (tmp_path / "out").exists()
