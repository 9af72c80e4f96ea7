# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The monitoring role against a Prometheus resource: a local cluster of its
own (the Prometheus Operator CRDs would give every other test's run
ServiceMonitors) gets the CRDs of the pinned prometheus-operator module
(hack/localcluster/crds.sh prometheus) and a Prometheus `monitoring/k8s` that
selects ServiceMonitors and rules by `release: kube-prometheus-stack`, as
kube-prometheus-stack does. site.yml (--tags monitoring) warns, naming the
Prometheus and the missing label, and still creates the objects; with
monitoring_selector_labels set it does not warn and a second run changes
nothing; a namespace selector the monitoring namespace misses is named too,
and namespaces_extra_labels satisfies it. The Grafana dashboards' ConfigMaps
are created with the sidecar's label."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest
from kubernetes import client, config
from kubernetes.dynamic import DynamicClient

from cluster_helpers import install_crds, own_cluster
from test_interrupted_runs import recap
from test_safety_rails import PLAYBOOK, REPO

MONITORING = "neurallog-monitoring"
SELECTED = {"release": "kube-prometheus-stack"}
MISSING_LABEL = ("Prometheus monitoring/k8s would not pick up the platform's ServiceMonitors in neurallog-monitoring: "
                 "its serviceMonitorSelector needs the label release=kube-prometheus-stack, which the platform's "
                 "ServiceMonitors lack (add the label to monitoring_selector_labels).")
MISSING_RULE_LABEL = ("Prometheus monitoring/k8s would not pick up the platform's PrometheusRules in "
                      "neurallog-monitoring: its ruleSelector needs the label release=kube-prometheus-stack")


def cluster_command(command):
    return own_cluster("prometheus", command)


class PrometheusCluster:
    def __init__(self, kubeconfig):
        self.kubeconfig = kubeconfig
        self.api = config.new_client_from_config(config_file=kubeconfig)
        self.dynamic = DynamicClient(self.api)
        self.core = client.CoreV1Api(self.api)

    def site(self, *extra_vars):
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_FORCE_COLOR="0", K8S_AUTH_KUBECONFIG=self.kubeconfig, KUBECONFIG=self.kubeconfig)
        cmd = [PLAYBOOK, "-i", os.path.join(REPO, "inventories", "local"), os.path.join(REPO, "site.yml"),
               "--tags", "monitoring", "-e", "ansible_python_interpreter=%s" % sys.executable]
        for extra in extra_vars:
            cmd += ["-e", json.dumps(extra)]
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500, check=False)
        proc.output = proc.stdout + proc.stderr
        # warnings are wrapped to the terminal's width
        proc.flat = " ".join(proc.output.split())
        assert proc.returncode == 0, proc.output[-4000:]
        return proc

    def install_crds(self):
        return install_crds(self, "prometheus", tuple(("monitoring.coreos.com/v1", kind) for kind in ("ServiceMonitor", "PrometheusRule", "Prometheus")))

    def prometheus(self, namespace_selector):
        """The Prometheus monitoring/k8s, created or replaced."""
        try:
            self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="monitoring")))
        except client.ApiException as exc:
            if exc.status != 409:
                raise
        body = {"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
                "metadata": {"name": "k8s", "namespace": "monitoring"},
                "spec": {"serviceMonitorSelector": {"matchLabels": SELECTED},
                         "serviceMonitorNamespaceSelector": namespace_selector,
                         "ruleSelector": {"matchLabels": SELECTED},
                         "ruleNamespaceSelector": namespace_selector}}
        resource = self.dynamic.resources.get(api_version="monitoring.coreos.com/v1", kind="Prometheus")
        self.dynamic.server_side_apply(resource, body=body, name="k8s", namespace="monitoring",
                                       field_manager="neurallog-test", force_conflicts=True)

    def objects(self, kind):
        resource = self.dynamic.resources.get(api_version="monitoring.coreos.com/v1", kind=kind)
        return resource.get(namespace=MONITORING).to_dict()["items"]


@pytest.fixture(scope="module")
def prometheus_cluster():
    kubeconfig = cluster_command("up")
    try:
        cluster = PrometheusCluster(kubeconfig)
        print("CRDs installed: %s" % ", ".join(cluster.install_crds()))
        cluster.prometheus({})
        yield cluster
    finally:
        cluster_command("down")


def test_a_selector_that_misses_our_labels_warns_and_the_objects_are_still_created(prometheus_cluster):
    cluster = prometheus_cluster
    run = cluster.site()
    print(run.output[-3000:])
    assert "[WARNING]: " + MISSING_LABEL in run.flat
    assert MISSING_RULE_LABEL in run.flat
    monitors = cluster.objects("ServiceMonitor")
    assert len(monitors) == 8
    assert all("release" not in m["metadata"]["labels"] for m in monitors)
    assert [r["metadata"]["name"] for r in cluster.objects("PrometheusRule")] == ["neurallog"]
    dashboards = cluster.core.list_namespaced_config_map(MONITORING, label_selector="grafana_dashboard=1").items
    assert sorted(cm.metadata.name for cm in dashboards) == [
        "neurallog-data-services", "neurallog-overview", "neurallog-tenant-usage"]
    for cm in dashboards:
        assert cm.metadata.annotations["grafana_folder"] == "NeuralLog"
        (text,) = cm.data.values()
        assert json.loads(text)["uid"] == cm.metadata.name


def test_with_the_label_no_warning_and_a_second_run_changes_nothing(prometheus_cluster):
    cluster = prometheus_cluster
    settings = {"monitoring_selector_labels": SELECTED}
    run = cluster.site(settings)
    assert "would not pick up" not in run.flat, run.output[-3000:]
    assert all(m["metadata"]["labels"]["release"] == "kube-prometheus-stack" for m in cluster.objects("ServiceMonitor"))
    assert all(r["metadata"]["labels"]["release"] == "kube-prometheus-stack" for r in cluster.objects("PrometheusRule"))
    again = cluster.site(settings)
    assert recap(again.output) == (0, 0), again.output[-3000:]
    assert "would not pick up" not in again.flat


def test_a_namespace_selector_the_namespace_misses_is_named(prometheus_cluster):
    cluster = prometheus_cluster
    cluster.prometheus({"matchLabels": {"monitoring": "enabled"}})
    settings = {"monitoring_selector_labels": SELECTED}
    run = cluster.site(settings)
    assert ("[WARNING]: Prometheus monitoring/k8s would not pick up the platform's ServiceMonitors in "
            "neurallog-monitoring: its serviceMonitorNamespaceSelector needs monitoring=enabled on the namespace "
            "neurallog-monitoring, which lacks it (add it to the namespace with "
            "namespaces_extra_labels.monitoring).") in run.flat, run.output[-3000:]
    labelled = dict(settings, namespaces_extra_labels={"system": {}, "monitoring": {"monitoring": "enabled"},
                                                       "ingress": {}, "data": {}})
    run = cluster.site(labelled)
    assert "would not pick up" not in run.flat, run.output[-3000:]
    assert cluster.core.read_namespace(MONITORING).metadata.labels["monitoring"] == "enabled"
