# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of plugins/module_utils/data_services.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "collections"))

from ansible_collections.neurallog.platform.plugins.module_utils import data_services as ds  # noqa: E402
from ansible_collections.neurallog.platform.plugins.module_utils import tls as tls_utils  # noqa: E402


def test_heap_is_half_the_limit_and_capped():
    assert ds.heap_size_mb("4Gi") == 2048
    assert ds.heap_size_mb("3Gi", 50) == 1536
    assert ds.heap_size_mb("4Gi", 75) == 3072
    assert ds.heap_size_mb("128Gi") == 31744
    with pytest.raises(ValueError):
        ds.heap_size_mb("256Mi")
    with pytest.raises(ValueError):
        ds.heap_size_mb("4Gi", 95)
    with pytest.raises(ValueError):
        ds.heap_size_mb("")


def test_connection_url_encodes_credentials():
    assert (
        ds.connection_url("postgresql", "pg.ns.svc", 5432, "app", "p@ss:w/rd", "neurallog")
        == "postgresql://app:p%40ss%3Aw%2Frd@pg.ns.svc:5432/neurallog"
    )
    assert ds.connection_url("redis", "r", 6379, "", "secret", "0") == "redis://:secret@r:6379/0"
    assert ds.connection_url("http", "es", 9200) == "http://es:9200"
    assert (
        ds.connection_url("postgresql", "::1", 5432, "u", "p", "db", {"sslmode": "require"})
        == "postgresql://u:p@[::1]:5432/db?sslmode=require"
    )
    with pytest.raises(ValueError):
        ds.connection_url("redis", "", 6379)


def test_url_with_credentials():
    assert ds.url_with_credentials("https://es.example:9243/", "elastic", "a/b@c") == "https://elastic:a%2Fb%40c@es.example:9243"
    assert ds.url_with_credentials("http://old:creds@es:9200/prefix", "u", "p") == "http://u:p@es:9200/prefix"
    assert ds.url_with_credentials("http://es") == "http://es"
    with pytest.raises(ValueError):
        ds.url_with_credentials("es.example:9200", "u", "p")


def test_redis_memory_bytes_uses_redis_units():
    assert ds.redis_memory_bytes("2gb") == 2 * 1024 ** 3
    assert ds.redis_memory_bytes("2g") == 2 * 1000 ** 3
    assert ds.redis_memory_bytes("512MB") == 512 * 1024 ** 2
    assert ds.redis_memory_bytes("1048576") == 1048576
    with pytest.raises(ValueError):
        ds.redis_memory_bytes("2Gi")


def test_secret_data_is_base64():
    data = ds.secret_data({"password": "s3cr3t", "port": 5432})
    assert data == {"password": base64.b64encode(b"s3cr3t").decode(), "port": base64.b64encode(b"5432").decode()}


def _sts(storage="20Gi", service="redis-headless", policy=None, claim="data", sc=None):
    spec = {
        "serviceName": service,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "redis"}},
        "volumeClaimTemplates": [
            {"metadata": {"name": claim}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}}}
        ],
    }
    if policy:
        spec["podManagementPolicy"] = policy
    if sc:
        spec["volumeClaimTemplates"][0]["spec"]["storageClassName"] = sc
    return {"kind": "StatefulSet", "spec": spec}


def test_immutable_changes_none_when_equal_or_absent():
    assert ds.statefulset_immutable_changes(None, _sts()) == []
    assert ds.statefulset_immutable_changes({"resources": []}, _sts()) == []
    assert ds.statefulset_immutable_changes({"resources": [_sts("20480Mi", policy="OrderedReady")]}, _sts()) == []


def test_immutable_changes_reported():
    changes = ds.statefulset_immutable_changes(_sts("20Gi"), _sts("30Gi", policy="Parallel", sc="fast"))
    assert "spec.podManagementPolicy: OrderedReady -> Parallel" in changes
    assert "spec.volumeClaimTemplates[data].storage: 20Gi -> 30Gi" in changes
    assert "spec.volumeClaimTemplates[data].storageClassName: None -> fast" in changes
    assert ds.statefulset_immutable_changes(_sts(claim="a"), _sts(claim="b")) == ["spec.volumeClaimTemplates: a -> b"]
    assert ds.statefulset_immutable_changes(_sts(service="x"), _sts()) == ["spec.serviceName: x -> redis-headless"]


def _verify(ca_pem, cert_pem):
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import padding

    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    assert cert.issuer == ca.subject
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), [str(a) for a in san.get_values_for_type(x509.IPAddress)]


def _secret(values):
    return {"resources": [{"data": ds.secret_data(values)}]}


HTTP_NAMES = ["elasticsearch", "elasticsearch.neurallog-data.svc", "localhost"]


def test_elasticsearch_tls_generates_one_ca_for_transport_and_http_and_keeps_them():
    tls = tls_utils.elasticsearch_tls(None, None, None, "elasticsearch",
                                      ["elasticsearch-headless", "*.elasticsearch-headless"], HTTP_NAMES)
    assert tls["transport"]["ca.crt"] == tls["http"]["ca.crt"] == tls["ca"]["ca.crt"]
    assert _verify(tls["ca"]["ca.crt"], tls["transport"]["tls.crt"]) == (
        ["elasticsearch-headless", "*.elasticsearch-headless"], [])
    assert _verify(tls["ca"]["ca.crt"], tls["http"]["tls.crt"]) == (HTTP_NAMES, ["127.0.0.1"])
    assert tls["http"]["tls.key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert tls["ca"]["ca.key"].startswith("-----BEGIN PRIVATE KEY-----")
    # A re-run keeps everything.
    stored = [_secret(tls[part]) for part in ("ca", "transport", "http")]
    assert tls_utils.elasticsearch_tls(*stored, common_name="elasticsearch", transport_dns_names=["x"],
                                       http_dns_names=HTTP_NAMES) == tls
    # A new Service name: only the HTTP certificate is issued again, by the same CA.
    again = tls_utils.elasticsearch_tls(*stored, common_name="elasticsearch", transport_dns_names=["x"],
                                        http_dns_names=HTTP_NAMES + ["es.example"])
    assert again["ca"] == tls["ca"] and again["transport"] == tls["transport"]
    assert _verify(tls["ca"]["ca.crt"], again["http"]["tls.crt"])[0] == HTTP_NAMES + ["es.example"]


def test_elasticsearch_tls_without_a_stored_ca_key_keeps_the_transport_certificates():
    old = tls_utils.elasticsearch_tls(None, None, None, "elasticsearch", ["elasticsearch-headless"], HTTP_NAMES)
    tls = tls_utils.elasticsearch_tls(None, _secret(old["transport"]), None, "elasticsearch", ["x"], HTTP_NAMES)
    assert tls["transport"] == old["transport"]
    assert tls["ca"]["ca.crt"] != old["ca"]["ca.crt"]
    assert _verify(tls["ca"]["ca.crt"], tls["http"]["tls.crt"])[0] == HTTP_NAMES
    partial = _secret({"ca.crt": old["ca"]["ca.crt"]})
    assert tls_utils.elasticsearch_tls(None, partial, None, "elasticsearch", ["x"], HTTP_NAMES)["transport"]["ca.crt"] != old["ca"]["ca.crt"]


def _es_sts(ready=None):
    sts = {"kind": "StatefulSet", "metadata": {"name": "es"}, "spec": {"replicas": 3}}
    if ready is not None:
        sts["status"] = {"replicas": 3, "readyReplicas": ready}
    return sts


def _es_bootstrap(nodes):
    return {"kind": "ConfigMap", "metadata": {"name": "es-bootstrap"}, "data": {"initial-master-nodes": nodes}}


MASTERS = "es-0,es-1,es-2"


def test_bootstrap_list_on_a_fresh_cluster():
    assert ds.elasticsearch_bootstrap_nodes([], [], MASTERS) == MASTERS
    assert ds.elasticsearch_bootstrap_nodes(None, None, MASTERS) == MASTERS
    # a ConfigMap left behind without its StatefulSet (uninstall keeps nothing of it, but be sure)
    assert ds.elasticsearch_bootstrap_nodes([], [_es_bootstrap("")], MASTERS) == MASTERS


def test_bootstrap_list_is_empty_once_a_node_is_ready():
    assert ds.elasticsearch_bootstrap_nodes([_es_sts(ready=1)], [_es_bootstrap(MASTERS)], MASTERS) == ""
    assert ds.elasticsearch_bootstrap_nodes({"resources": [_es_sts(ready=3)]}, [], MASTERS) == ""


def test_bootstrap_list_is_kept_while_the_first_bootstrap_is_under_way():
    assert ds.elasticsearch_bootstrap_nodes([_es_sts()], [_es_bootstrap(MASTERS)], MASTERS) == MASTERS
    assert ds.elasticsearch_bootstrap_nodes([_es_sts(ready=0)], [_es_bootstrap(MASTERS)], MASTERS) == MASTERS
    # a formed cluster that is down (no node Ready) keeps its empty list
    assert ds.elasticsearch_bootstrap_nodes([_es_sts(ready=0)], [_es_bootstrap("")], MASTERS) == ""


def test_bootstrap_list_without_its_configmap_is_the_first_bootstrap():
    # a first install stopped after the StatefulSet and before the ConfigMap:
    # its pods mount the ConfigMap, so none has ever started
    assert ds.elasticsearch_bootstrap_nodes([_es_sts()], [], MASTERS) == MASTERS
    assert ds.elasticsearch_bootstrap_nodes([_es_sts(ready=0)], None, MASTERS) == MASTERS


def test_bootstrap_list_is_empty_in_render_mode():
    # what a running cluster has: applying the rendered files elsewhere is not undone by the next run
    assert ds.elasticsearch_bootstrap_nodes([], [], MASTERS, rendered=True) == ""
