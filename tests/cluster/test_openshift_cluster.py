# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenShift on the local control plane: a local cluster of its own (the
OpenShift CRDs would turn every other test's run into an OpenShift one)
gets the Route and SecurityContextConstraints CRDs of github.com/openshift/api
(hack/localcluster/crds.sh openshift, pinned in versions.env). site.yml and
the inventory's tenant then converge with the capability detected, not
forced: the API server accepts every object by server-side apply (the
Routes validated against OpenShift's own schema), a second run changes
nothing. SCC admission itself does not run here (docs/testing.md)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import os
import subprocess
import sys

import pytest
from kubernetes import client, config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.resource import ResourceList

from cluster_helpers import install_crds, own_cluster
from test_interrupted_runs import recap
from test_safety_rails import PLAYBOOK, REPO

MANAGED = "app.kubernetes.io/managed-by=neurallog.platform"
FIXED_IDS = ("runAsUser", "runAsGroup", "fsGroup")
# made by the controllers from the platform's objects (labels copied), not applied by the run
CONTROLLER_KINDS = ("Pod", "ReplicaSet", "ControllerRevision", "EndpointSlice", "Endpoints", "PersistentVolumeClaim",
                    "Event", "Lease")


def cluster_command(command):
    return own_cluster("openshift", command)


class OpenShiftCluster:
    def __init__(self, kubeconfig):
        self.kubeconfig = kubeconfig
        self.api = config.new_client_from_config(config_file=kubeconfig)
        self.dynamic = DynamicClient(self.api)
        self.core = client.CoreV1Api(self.api)

    def run(self, playbook, *args):
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_FORCE_COLOR="0", K8S_AUTH_KUBECONFIG=self.kubeconfig, KUBECONFIG=self.kubeconfig)
        cmd = [PLAYBOOK, "-i", os.path.join(REPO, "inventories", "local"), os.path.join(REPO, playbook),
               "-e", "ansible_python_interpreter=%s" % sys.executable] + list(args)
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500, check=False)
        proc.output = proc.stdout + proc.stderr
        return proc

    def install_crds(self):
        return install_crds(self, "openshift", (("route.openshift.io/v1", "Route"), ("security.openshift.io/v1", "SecurityContextConstraints")))

    def managed(self):
        """Every object of the platform and the tenant the API server holds:
        (kind, namespace, name) -> object, over every listable namespaced
        resource (label managed-by=neurallog.platform)."""
        out = {}
        for resource in self.dynamic.resources.search():
            if isinstance(resource, ResourceList) or not resource.namespaced or "list" not in (resource.verbs or []) or "/" in resource.name:
                continue
            if resource.kind in CONTROLLER_KINDS:
                continue
            for item in resource.get(label_selector=MANAGED).to_dict().get("items") or []:
                out[(resource.kind, item["metadata"]["namespace"], item["metadata"]["name"])] = item
        return out


@pytest.fixture(scope="module")
def openshift_cluster():
    kubeconfig = cluster_command("up")
    try:
        yield OpenShiftCluster(kubeconfig)
    finally:
        cluster_command("down")


def test_forced_on_a_cluster_that_is_not_openshift_fails_before_any_change(openshift_cluster):
    cluster = openshift_cluster
    before = [ns.metadata.name for ns in cluster.core.list_namespace().items]
    proc = cluster.run("site.yml", "-e", "neurallog_openshift=true")
    assert proc.returncode != 0
    assert "neurallog_openshift is true but the cluster does not serve route.openshift.io/v1 Route and " \
           "security.openshift.io/v1 SecurityContextConstraints" in proc.output, proc.output[-3000:]
    assert [ns.metadata.name for ns in cluster.core.list_namespace().items] == before


def test_detected_converges_every_object_accepted_and_idempotent(openshift_cluster):
    cluster = openshift_cluster
    print("CRDs installed: %s" % ", ".join(cluster.install_crds()))
    first = cluster.run("site.yml")
    assert first.returncode == 0, first.output[-4000:]
    # detected, not forced (the inventory leaves neurallog_openshift at auto)
    assert "openshift=True" in first.output, first.output[-4000:]
    tenants = cluster.run("playbooks/tenants.yml")
    assert tenants.returncode == 0, tenants.output[-4000:]

    objects = cluster.managed()
    counts = collections.Counter(kind for kind, _ns, _name in objects)
    print("accepted by the API server (server-side apply): %d objects: %s" % (
        len(objects), ", ".join("%s %d" % (kind, n) for kind, n in sorted(counts.items()))))
    routes = dict((name, obj) for (kind, _ns, name), obj in objects.items() if kind == "Route")
    assert sorted(routes) == ["api", "tenants"]
    assert routes["api"]["spec"]["host"] == "api.neurallog.test"
    assert routes["tenants"]["spec"]["host"] == "wildcard.api.neurallog.test"
    assert routes["tenants"]["spec"]["wildcardPolicy"] == "Subdomain"
    assert routes["api"]["spec"]["tls"]["externalCertificate"] == {"name": "neurallog-tls"}
    assert not [k for k in objects if k[0] == "Ingress" and k[1] == "neurallog-system"]
    assert ("RoleBinding", "neurallog-system", "neurallog-router-tls") in objects
    workloads = [o for (kind, _ns, _n), o in objects.items() if kind in ("Deployment", "StatefulSet")]
    assert len(workloads) == 12, sorted(k for k in objects if k[0] in ("Deployment", "StatefulSet"))
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        contexts = [pod.get("securityContext") or {}] + [c.get("securityContext") or {} for c in
                                                         (pod.get("initContainers") or []) + pod["containers"]]
        assert not [f for c in contexts for f in FIXED_IDS if f in c], workload["metadata"]["name"]
    # site.yml waited for their rollouts: the pods were admitted (restricted
    # Pod Security) without fixed IDs (kwok runs no container)
    for workload in workloads:
        assert workload["status"].get("readyReplicas") == workload["spec"]["replicas"], workload["metadata"]["name"]

    again = cluster.run("site.yml")
    assert recap(again.output) == (0, 0), again.output[-4000:]
    tenants_again = cluster.run("playbooks/tenants.yml")
    assert recap(tenants_again.output) == (0, 0), tenants_again.output[-4000:]
    # and wrote nothing: no object's spec moved (the HPAs' controller sets
    # the replicas)
    after = cluster.managed()

    def spec(obj):
        return dict((k, v) for k, v in (obj.get("spec") or {}).items() if k != "replicas")
    moved = sorted(k for k in objects if k in after and spec(after[k]) != spec(objects[k]))
    assert not moved, moved
    assert sorted(after) == sorted(objects)


def test_the_route_schema_is_enforced(openshift_cluster):
    """The CRD's schema is OpenShift's: a Route whose host is not a DNS name
    (a literal '*') is refused, which is why the wildcard is written as
    wildcard.<domain> with wildcardPolicy Subdomain."""
    cluster = openshift_cluster
    routes = cluster.dynamic.resources.get(api_version="route.openshift.io/v1", kind="Route")
    body = {"apiVersion": "route.openshift.io/v1", "kind": "Route",
            "metadata": {"name": "bad-wildcard", "namespace": "neurallog-system"},
            "spec": {"host": "*.api.neurallog.test", "to": {"kind": "Service", "name": "tenant-router"}}}
    with pytest.raises(Exception) as refused:
        cluster.dynamic.server_side_apply(routes, body=body, name="bad-wildcard", namespace="neurallog-system",
                                          field_manager="neurallog-test")
    assert getattr(refused.value, "status", None) == 422, refused.value
    assert "spec.host" in str(refused.value)
