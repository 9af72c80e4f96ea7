# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Service descriptions, rollout state and the self-signed certificate."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "collections"))

from ansible_collections.neurallog.platform.plugins.module_utils import rollout, services, tls  # noqa: E402

CREDENTIALS = {
    "database": {"secret": "database-credentials", "key": "url", "env": "DATABASE_URL"},
    "redis": {"secret": "redis-credentials", "key": "url", "env": "REDIS_URL"},
}
DEFAULTS = {
    "replicas": 2,
    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    "credentials": ["database"],
}


def resolve(svcs, overrides=None):
    return services.resolve_services(svcs, DEFAULTS, overrides, ["api-service", "log-service"], CREDENTIALS)


def test_defaults_and_overrides_merge_per_service():
    out = resolve({"api-service": {"replicas": 3}, "log-service": {"resources": {"limits": {"cpu": 4}}}},
                  {"log-service": {"replicas": 5}})
    by_name = {s["name"]: s for s in out}
    assert [s["name"] for s in out] == ["api-service", "log-service"]
    assert by_name["api-service"]["replicas"] == 3
    assert by_name["log-service"]["replicas"] == 5
    # Quantities are strings; the untouched request survives the deep merge.
    assert by_name["log-service"]["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "4", "memory": "1Gi"}}
    assert by_name["api-service"]["env"] == [
        {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "database-credentials", "key": "url"}}}]
    assert by_name["api-service"]["readiness_probe"]["httpGet"] == {"path": "/health", "port": 8080}


def test_elasticsearch_ca_is_mounted_and_named_in_the_environment():
    credentials = dict(CREDENTIALS, elasticsearch={
        "secret": "elasticsearch-credentials", "key": "url", "env": "ELASTICSEARCH_URL",
        "ca": {"key": "ca.crt", "path": "/etc/neurallog/elasticsearch/ca.crt", "env": "ELASTICSEARCH_CA_CERT"}})
    out = services.resolve_services({"log-service": {"credentials": ["elasticsearch", "redis"]}}, DEFAULTS, None,
                                    None, credentials)[0]
    assert out["env"][:3] == [
        {"name": "ELASTICSEARCH_URL", "valueFrom": {"secretKeyRef": {"name": "elasticsearch-credentials", "key": "url"}}},
        {"name": "REDIS_URL", "valueFrom": {"secretKeyRef": {"name": "redis-credentials", "key": "url"}}},
        {"name": "ELASTICSEARCH_CA_CERT", "value": "/etc/neurallog/elasticsearch/ca.crt"}]
    assert out["volumes"] == [{"name": "elasticsearch-ca", "secret": {
        "secretName": "elasticsearch-credentials", "defaultMode": 0o444, "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]
    assert out["volume_mounts"] == [
        {"name": "elasticsearch-ca", "mountPath": "/etc/neurallog/elasticsearch", "readOnly": True}]
    # Services without that credential get nothing of it.
    plain = services.resolve_services({"api-service": {}}, DEFAULTS, None, None, credentials)[0]
    assert plain["volumes"] == [] and plain["volume_mounts"] == []
    credentials["elasticsearch"]["ca"]["path"] = "relative/ca.crt"
    with pytest.raises(services.ServiceError, match="core_services_credential_secrets.elasticsearch.ca.path"):
        services.resolve_services({"log-service": {"credentials": ["elasticsearch"]}}, DEFAULTS, None, None, credentials)


def test_disabled_service_is_left_out():
    assert [s["name"] for s in resolve({"api-service": {}, "log-service": {"enabled": False}})] == ["api-service"]


@pytest.mark.parametrize("description, message", [
    ({"replicas": -1}, "core_services_services.api-service.replicas: must be >= 0"),
    ({"replicas": "three"}, "core_services_services.api-service.replicas: must be an integer"),
    ({"image": "nope"}, "core_services_services.api-service.image: 'nope' is not a key of neurallog_images"),
    ({"credentials": ["vault"]}, "core_services_services.api-service.credentials: 'vault' is unknown; allowed: database, redis"),
    ({"resources": {"requests": {"cpu": "lots", "memory": "1Gi"}}}, "resources.requests.cpu: 'lots' is not a Kubernetes quantity"),
    ({"autoscaling": {"enabled": True, "min_replicas": 5, "max_replicas": 2, "cpu_utilization": 70}},
     "autoscaling.max_replicas: must be >= autoscaling.min_replicas (5), got 2"),
    ({"autoscaling": {"enabled": True}}, "autoscaling: needs cpu_utilization and/or memory_utilization"),
    ({"env": {"1BAD": "x"}}, "env.1BAD: is not a valid environment variable name"),
    ({"readiness_probe": {"path": "health"}}, "readiness_probe.path: must start with '/'"),
    ({"vpa": {"enabled": True, "update_mode": "Sometimes"}}, "vpa.update_mode: must be one of"),
])
def test_bad_descriptions_name_the_setting(description, message):
    with pytest.raises(services.ServiceError) as err:
        resolve({"api-service": description})
    assert message in str(err.value)


def test_requests_are_required():
    with pytest.raises(services.ServiceError, match=r"api-service\.resources\.requests\.memory: is required"):
        services.resolve_services({"api-service": {"resources": {"requests": {"cpu": "1"}}}}, {}, None,
                                  ["api-service"], CREDENTIALS)


def test_unknown_override_and_bad_name_are_refused():
    with pytest.raises(services.ServiceError, match="core_services_overrides: unknown service"):
        resolve({"api-service": {}}, {"api-servce": {"replicas": 1}})
    with pytest.raises(services.ServiceError, match="is not a valid name"):
        services.resolve_services({"Api_Service": {"image": "api-service"}}, DEFAULTS, None, ["api-service"], CREDENTIALS)


def test_autoscaling_metrics():
    out = resolve({"log-service": {"autoscaling": {"enabled": True, "min_replicas": 3, "max_replicas": 20,
                                                   "cpu_utilization": 70, "memory_utilization": 80}}})
    assert out[0]["autoscaling"] == {"enabled": True, "min_replicas": 3, "max_replicas": 20, "metrics": [
        {"resource": "cpu", "utilization": 70}, {"resource": "memory", "utilization": 80}]}


def deployment(name, replicas=3, generation=2, observed=2, updated=3, available=3, total=None):
    return {"kind": "Deployment", "metadata": {"name": name, "namespace": "ns", "generation": generation},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "availableReplicas": available,
                       "readyReplicas": available, "replicas": updated if total is None else total}}


def test_pending_workloads():
    ready = deployment("a")
    assert rollout.pending_workloads([ready]) == []
    cases = {
        "b": (deployment("b", observed=1), "the controller has not yet observed generation 2"),
        "c": (deployment("c", updated=1, available=3), "1 of 3 replicas updated"),
        "d": (deployment("d", available=2), "2 of 3 replicas available"),
        "e": (deployment("e", total=4), "1 old replicas still terminating"),
    }
    pending = rollout.pending_workloads({"resources": [ready] + [c[0] for c in cases.values()]})
    assert {p["name"]: p["reason"] for p in pending} == {k: v[1] for k, v in cases.items()}
    sts = {"kind": "StatefulSet", "metadata": {"name": "redis", "namespace": "ns", "generation": 1},
           "spec": {"replicas": 3}, "status": {"observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 3,
                                               "currentRevision": "r1", "updateRevision": "r2"}}
    assert rollout.pending_workloads([sts])[0]["reason"] == "revision r2 not yet rolled out"


def test_rollout_report_explains_pods_and_events():
    pending = rollout.pending_workloads([deployment("log-service", available=0)])
    pods = [{"metadata": {"name": "log-service-x", "namespace": "ns", "labels": {"app": "log-service"}},
             "status": {"phase": "Pending", "conditions": [
                 {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/2 nodes"}]}},
            {"metadata": {"name": "other", "namespace": "ns", "labels": {"app": "other"}}, "status": {"phase": "Running"}}]
    events = [{"metadata": {"namespace": "ns"}, "involvedObject": {"kind": "Pod", "name": "log-service-x"},
               "type": "Warning", "reason": "FailedScheduling", "message": "Insufficient cpu",
               "lastTimestamp": "2026-01-01T00:00:00Z"}]
    report = rollout.rollout_report(pending, pods, events)
    assert "Deployment ns/log-service not ready: 0 of 3 replicas available" in report
    assert "pod log-service-x Pending; PodScheduled=False Unschedulable: 0/2 nodes" in report
    assert "event Warning Pod/log-service-x: FailedScheduling Insufficient cpu" in report
    assert "other" not in report


def test_rollout_report_explains_a_statefulset():
    """The data services' waits report through the same two filters."""
    sts = {"kind": "StatefulSet", "metadata": {"name": "redis", "namespace": "neurallog-data", "generation": 1},
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "redis"}}},
           "status": {"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 3, "currentReplicas": 3}}
    pods = [{"metadata": {"name": "redis-1", "namespace": "neurallog-data", "labels": {"app": "redis"}},
             "status": {"phase": "Pending", "conditions": [
                 {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/2 nodes"}]}},
            {"metadata": {"name": "redis-0", "namespace": "neurallog-data", "labels": {"app": "redis"}},
             "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}]
    events = [{"metadata": {"namespace": "neurallog-data"}, "type": "Warning", "reason": "FailedScheduling",
               "involvedObject": {"kind": "Pod", "name": "redis-1"}, "message": "0/2 nodes "}]
    lines = rollout.rollout_report(rollout.pending_workloads([sts]), pods, events).splitlines()
    assert lines == [
        "StatefulSet neurallog-data/redis not ready: 1 of 3 replicas ready",
        "  pod redis-0 Running",
        "  pod redis-1 Pending; PodScheduled=False Unschedulable: 0/2 nodes",
        "  event Warning Pod/redis-1: FailedScheduling 0/2 nodes",
    ]


def _secret(values):
    return {"data": dict((k, base64.b64encode(v.encode()).decode()) for k, v in values.items())}


def test_self_signed_certificate_is_generated_then_kept():
    hosts = ["api.example.com", "*.api.example.com"]
    first = tls.tls_secret_values(None, hosts)
    assert first["tls.crt"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in first["tls.key"]
    assert tls.certificate_hosts(first["tls.crt"]) == sorted(hosts)
    again = tls.tls_secret_values({"resources": [_secret(first)]}, hosts)
    assert again == first
    # A new host name the stored certificate does not cover: a new one.
    other = tls.tls_secret_values([_secret(first)], hosts + ["extra.example.com"])
    assert other["tls.crt"] != first["tls.crt"]
    assert "extra.example.com" in tls.certificate_hosts(other["tls.crt"])


def test_expiring_certificate_is_replaced():
    hosts = ["api.example.com"]
    short = tls.generate_self_signed(hosts, days=10)
    assert tls.tls_secret_values([_secret(short)], hosts)["tls.crt"] != short["tls.crt"]
