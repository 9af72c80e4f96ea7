# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of the converged platform (run by verify.yml with --hosts=local://).

The cluster is reached through K8S_AUTH_KUBECONFIG; ``host`` (testinfra, local
backend) runs openssl on the ingress certificate."""

import base64
import os

import pytest
from kubernetes import client, config

SYSTEM = "neurallog-system"
SERVICES = [
    "action-service", "api-gateway", "api-service", "auth-service",
    "log-service", "mcp-service", "rule-service", "tenant-router",
]


@pytest.fixture(scope="module")
def api():
    config.load_kube_config(config_file=os.environ["K8S_AUTH_KUBECONFIG"])
    return client.ApiClient()


def test_namespaces_have_selector_and_pod_security_labels(api):
    core = client.CoreV1Api(api)
    labels = {ns: core.read_namespace(ns).metadata.labels for ns in
              ("neurallog-system", "neurallog-data", "neurallog-ingress", "neurallog-monitoring")}
    assert labels["neurallog-system"]["neurallog-system"] == "true"
    assert labels["neurallog-data"]["neurallog-data"] == "true"
    for ns, ns_labels in labels.items():
        assert ns_labels.get("pod-security.kubernetes.io/enforce") in ("restricted", "baseline", "privileged"), ns
    assert labels["neurallog-system"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("name", SERVICES)
def test_core_service_is_restricted_and_wired_to_the_data_secrets(api, name):
    deployment = client.AppsV1Api(api).read_namespaced_deployment(name, SYSTEM)
    pod = deployment.spec.template.spec
    assert pod.security_context.run_as_non_root is True
    assert pod.security_context.seccomp_profile.type == "RuntimeDefault"
    container = pod.containers[0]
    assert container.security_context.allow_privilege_escalation is False
    assert container.security_context.capabilities.drop == ["ALL"]
    assert not container.image.endswith(":latest")
    assert container.readiness_probe.http_get.path == "/health"
    assert container.readiness_probe.http_get.port == 8080
    env = {e.name: e.value_from.secret_key_ref for e in container.env or [] if e.value_from}
    assert env, "no credentials from Secrets"
    secrets = {"DATABASE_URL": "database-credentials", "REDIS_URL": "redis-credentials",
               "ELASTICSEARCH_URL": "elasticsearch-credentials"}
    for variable, ref in env.items():
        assert ref.name == secrets[variable] and ref.key == "url"
    core = client.CoreV1Api(api)
    service = core.read_namespaced_service(name, SYSTEM)
    assert service.spec.type == "ClusterIP"
    assert [(p.port, p.target_port) for p in service.spec.ports] == [(80, 8080)]
    assert client.PolicyV1Api(api).read_namespaced_pod_disruption_budget(name, SYSTEM).spec.max_unavailable == 1
    assert core.read_namespaced_service_account(name, SYSTEM).automount_service_account_token is False


def test_spec_replicas_and_log_service_autoscaler(api):
    apps = client.AppsV1Api(api)
    assert apps.read_namespaced_deployment("api-service", SYSTEM).spec.replicas == 3
    hpa = client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler("log-service-hpa", SYSTEM)
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (3, 20)
    targets = {m.resource.name: m.resource.target.average_utilization for m in hpa.spec.metrics}
    assert targets == {"cpu": 70, "memory": 80}
    # The HPA owns the replica count: at least its minimum once it has acted.
    assert apps.read_namespaced_deployment("log-service", SYSTEM).spec.replicas >= 3


def test_credential_secrets_hold_urls(api):
    core = client.CoreV1Api(api)
    for name, scheme in (("database-credentials", "postgres"), ("redis-credentials", "redis"),
                         ("elasticsearch-credentials", "http")):
        url = base64.b64decode(core.read_namespaced_secret(name, SYSTEM).data["url"]).decode()
        assert url.startswith(scheme), name


def test_ingress_routes_with_tls(api, host):
    ingress = client.NetworkingV1Api(api).read_namespaced_ingress("api-ingress", SYSTEM)
    assert ingress.spec.ingress_class_name == "nginx"
    assert "kubernetes.io/ingress.class" not in (ingress.metadata.annotations or {})
    assert ingress.metadata.annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "10m"
    routes = {r.host: r.http.paths[0].backend.service.name for r in ingress.spec.rules}
    domain = next(h for h in routes if h.startswith("api."))[len("api."):]
    assert routes == {"api." + domain: "api-gateway", "*.api." + domain: "tenant-router"}
    secret = client.CoreV1Api(api).read_namespaced_secret(ingress.spec.tls[0].secret_name, SYSTEM)
    cert = base64.b64decode(secret.data["tls.crt"]).decode()
    out = host.run("printf '%s' '" + cert + "' | openssl x509 -noout -ext subjectAltName -checkend 86400")
    assert out.rc == 0, out.stderr
    assert "DNS:api." + domain in out.stdout and "DNS:*.api." + domain in out.stdout
