# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Network isolation, proved by an independent analyser.

Renders the platform (site.yml) and three tenants (tenants.yml; two
organizations each, one with an MCP namespace) for the onprem inventory, adds
the pods a real cluster has besides the platform's (cluster DNS, an ingress
controller, Prometheus, a pod of an unrelated namespace, a workload in every
tenant namespace, an extra pod in the data namespace), and asks
network-config-analyzer (``nca --connectivity``, its own virtualenv made by
hack/nca-venv.sh) for the connectivity between every pair of pods. The
assertions run over every pair; docs/security.md shows a representative
matrix that must equal the one computed here."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_render import render

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = "onprem"
TENANTS = {"tenant_list": [
    {"id": "alpha", "organizations": [{"id": "ops", "mcp": True}, "dev"]},
    {"id": "beta", "organizations": ["sales", "support"]},
    {"id": "gamma", "organizations": ["eu", "us"]},
]}
SYSTEM, DATA = "neurallog-system", "neurallog-data"
INGRESS, MONITORING = "neurallog-ingress", "neurallog-monitoring"
DATA_PORTS = {"postgresql": "TCP 5432", "redis": "TCP 6379", "elasticsearch": "TCP 9200"}
DATA_PEER_PORTS = {"postgresql": "TCP 5432", "redis": "TCP 6379", "elasticsearch": "TCP 9200, 9300"}
DNS = "TCP/UDP 53"
ALL = "all"
FRONT = {"api-gateway", "tenant-router"}
SERVICE_PORT = "TCP 8080"


def _namespace(name, labels=None):
    labels = dict(labels or {})
    labels["kubernetes.io/metadata.name"] = name
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def _pod(namespace, name, labels):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"containers": [{"name": "main", "image": "example.invalid/%s:1" % name}]}}


def _extra_objects(namespaces):
    """What a cluster holds besides the rendered objects."""
    objects = [
        _namespace("kube-system"),
        _pod("kube-system", "coredns", {"k8s-app": "kube-dns"}),
        _namespace("default"),
        _pod("default", "outsider", {"app": "outsider"}),
        _pod(INGRESS, "ingress-controller", {"app.kubernetes.io/name": "ingress-nginx"}),
        _pod(MONITORING, "prometheus", {"app.kubernetes.io/name": "prometheus"}),
        # A pod no allow-policy selects (a future exporter, a debug pod).
        _pod(DATA, "unlisted", {"app": "unlisted"}),
    ]
    for name in namespaces:
        if name.startswith("tenant-"):
            objects.append(_pod(name, "workload", {"app": "workload"}))
    return objects


def _with_metadata_name_label(doc):
    # The API server sets kubernetes.io/metadata.name on every namespace.
    if doc["kind"] == "Namespace":
        doc = dict(doc, metadata=dict(doc["metadata"]))
        doc["metadata"]["labels"] = dict(doc["metadata"].get("labels") or {},
                                         **{"kubernetes.io/metadata.name": doc["metadata"]["name"]})
    return doc


@pytest.fixture(scope="module")
def nca():
    # Made from this interpreter: no python3-venv package needed.
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run([str(ROOT / "hack" / "nca-venv.sh")], env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    assert proc.returncode == 0, "hack/nca-venv.sh failed:\n" + proc.stderr[-3000:]
    path = proc.stdout.strip().splitlines()[-1]
    assert Path(path).is_file(), path
    return path


def _render(tmp_path_factory, *extra):
    folder = tmp_path_factory.mktemp("tenants")
    tenants = folder / "tenants.yml"
    tenants.write_text(yaml.safe_dump(TENANTS))
    return [d for _name, d in render(tmp_path_factory, INVENTORY, "@%s" % tenants, *extra,
                                     playbooks=("site.yml", "playbooks/tenants.yml"))]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return _render(tmp_path_factory)


@pytest.fixture(scope="module")
def rendered_with_data_access(tmp_path_factory):
    return _render(tmp_path_factory, "neurallog_tenant_data_access=true")


def _cell(connection):
    """'{protocols:TCP, UDP,dst_ports:53}' -> 'TCP/UDP 53'; 'All connections' -> 'all'."""
    if connection == "All connections":
        return ALL
    match = re.match(r"^\{protocols:([A-Z, ]+),dst_ports:([0-9,-]+)\}$", connection)
    assert match, "unexpected connection %r" % connection
    protocols = "/".join(p.strip() for p in match.group(1).split(","))
    return "%s %s" % (protocols, match.group(2).replace(",", ", "))


def connectivity(nca_path, docs, tmp_path):
    """{(source, destination): cell} for every pair of pods that may connect;
    endpoints are "namespace/pod" (workloads appear as two pods, -1 and -2)."""
    namespaces = [_with_metadata_name_label(d) for d in docs if d["kind"] == "Namespace"]
    names = [d["metadata"]["name"] for d in namespaces]
    extra = _extra_objects(names)
    namespaces += [d for d in extra if d["kind"] == "Namespace"]
    pods = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")] + [d for d in extra if d["kind"] == "Pod"]
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    for name, content in (("namespaces", namespaces), ("pods", pods), ("policies", policies)):
        (tmp_path / ("%s.yaml" % name)).write_text(yaml.safe_dump_all(content))
    proc = subprocess.run(
        [nca_path, "--connectivity", str(tmp_path / "policies.yaml"),
         "--ns_list", str(tmp_path / "namespaces.yaml"), "--pod_list", str(tmp_path / "pods.yaml"),
         "--output_format", "txt_no_fw_rules", "--output_endpoints", "pods"],
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    matrix = {}
    for line in proc.stdout.splitlines():
        match = re.match(r"^(\S+) => (\S+) : (.+)$", line)
        if match and "/" in match.group(1) and "/" in match.group(2):
            matrix[(match.group(1), match.group(2))] = _cell(match.group(3))
    endpoints = set()
    for doc in pods:
        meta = doc["metadata"]
        if doc["kind"] == "Pod":
            endpoints.add("%s/%s" % (meta["namespace"], meta["name"]))
        else:
            # The analyser makes up to two pods of a workload, -1 and -2.
            replicas = min(max(int(doc["spec"].get("replicas", 1)), 1), 2)
            endpoints.update("%s/%s-%d" % (meta["namespace"], meta["name"], i) for i in range(1, replicas + 1))
    unknown = {e for pair in matrix for e in pair} - endpoints
    assert len(matrix) > 50 and not unknown, (unknown, proc.stdout[-3000:])
    return matrix, sorted(endpoints)


def _tenant(endpoint):
    match = re.match(r"^tenant-([a-z0-9]+)(-org-|/)", endpoint)
    return match.group(1) if match else None


def _workload(endpoint):
    return re.sub(r"-[0-9]+$", "", endpoint.split("/", 1)[1])


def violations(matrix, endpoints, data_access=False):
    """Every pair that breaks the isolation rules, as readable lines."""
    found = []
    for src in endpoints:
        for dst in endpoints:
            if src == dst:
                continue
            got = matrix.get((src, dst))
            src_ns, dst_ns = src.split("/")[0], dst.split("/")[0]
            src_tenant, dst_tenant = _tenant(src), _tenant(dst)
            want = "?"
            if dst == "kube-system/coredns":
                want = DNS if src_tenant else ALL          # DNS wherever it is needed
            elif dst_tenant:
                # Tenants: only from neurallog-system and from themselves.
                want = ALL if src_ns == SYSTEM or src_tenant == dst_tenant else None
            elif dst_ns == DATA:
                service = _workload(dst)
                if service not in DATA_PORTS:
                    want = None                            # default deny
                elif src_ns == SYSTEM or (data_access and src_tenant):
                    want = DATA_PORTS[service]
                elif src_ns == DATA and _workload(src) == service:
                    want = DATA_PEER_PORTS[service]        # replication, transport
                else:
                    want = None
            elif dst_ns == SYSTEM:
                service = _workload(dst)
                if src_ns == SYSTEM:
                    want = ALL
                elif src_ns == MONITORING or (service in FRONT and (src_ns == INGRESS or src_tenant)):
                    want = SERVICE_PORT
                else:
                    want = None
            else:
                continue                                   # namespaces the collection does not manage
            if got != want:
                found.append("%s -> %s: %s, expected %s" % (src, dst, got or "denied", want or "denied"))
    return found


def test_the_analyser_finds_the_isolation_the_docs_describe(nca, rendered, tmp_path):
    matrix, endpoints = connectivity(nca, rendered, tmp_path)
    assert {"tenant-alpha-org-ops-mcp/workload", "tenant-gamma-org-us/workload", "neurallog-data/postgresql-1",
            "neurallog-system/api-gateway-1", "tenant-beta/redis-1"} <= set(endpoints)
    assert not violations(matrix, endpoints), "\n".join(violations(matrix, endpoints)[:40])
    # Spot checks, as the analyser writes them.
    assert matrix[("tenant-alpha-org-ops-mcp/workload", "tenant-alpha/redis-1")] == ALL
    assert ("tenant-alpha-org-ops/workload", "tenant-beta/redis-1") not in matrix
    assert ("tenant-beta/workload", "neurallog-data/postgresql-1") not in matrix
    assert ("default/outsider", "neurallog-data/redis-1") not in matrix
    assert matrix[("neurallog-data/elasticsearch-1", "neurallog-data/elasticsearch-2")] == "TCP 9200, 9300"
    assert matrix[("tenant-gamma-org-eu/workload", "kube-system/coredns")] == DNS
    table = report(matrix)
    (ROOT / "tests" / "output").mkdir(exist_ok=True)
    (ROOT / "tests" / "output" / "network-matrix.md").write_text(table)
    docs = (ROOT / "docs" / "security.md").read_text()
    assert table in docs, "docs/security.md does not show the analyser's matrix; it is now:\n" + table


def test_tenant_data_access_opens_exactly_the_data_ports(nca, rendered_with_data_access, tmp_path):
    matrix, endpoints = connectivity(nca, rendered_with_data_access, tmp_path)
    assert not violations(matrix, endpoints, data_access=True), \
        "\n".join(violations(matrix, endpoints, data_access=True)[:40])
    assert matrix[("tenant-beta-org-sales/workload", "neurallog-data/postgresql-1")] == "TCP 5432"
    assert ("tenant-beta-org-sales/workload", "neurallog-data/unlisted") not in matrix


@pytest.mark.parametrize("namespace", [DATA, SYSTEM])
def test_the_check_fails_without_a_default_deny(nca, rendered, tmp_path, namespace):
    """The assertions above can fail: drop one namespace's default-deny (and,
    for neurallog-system, its allow rules that also isolate) and the
    analyser's matrix breaks them."""
    policies_dropped = {DATA: {"default-deny-ingress"},
                        SYSTEM: {"default-deny-ingress", "allow-same-namespace", "allow-monitoring",
                                 "allow-api-gateway", "allow-tenant-router"}}[namespace]
    docs = [d for d in rendered if not (d["kind"] == "NetworkPolicy" and d["metadata"]["namespace"] == namespace
                                        and d["metadata"]["name"] in policies_dropped)]
    assert len(docs) == len(rendered) - len(policies_dropped)
    matrix, endpoints = connectivity(nca, docs, tmp_path)
    found = violations(matrix, endpoints)
    assert found
    assert all(" -> %s/" % namespace in line for line in found), found[:10]
    assert "default/outsider -> %s/%s: all, expected denied" % (
        namespace, "unlisted" if namespace == DATA else "api-service-1") in found


# Representative endpoints of the matrix in docs/security.md.
ROWS = (
    ("neurallog-system (any core service)", "neurallog-system/api-service-1"),
    ("neurallog-ingress (controller)", "neurallog-ingress/ingress-controller"),
    ("neurallog-monitoring (Prometheus)", "neurallog-monitoring/prometheus"),
    ("PostgreSQL pod", "neurallog-data/postgresql-1"),
    ("Redis pod", "neurallog-data/redis-1"),
    ("Elasticsearch pod", "neurallog-data/elasticsearch-1"),
    ("tenant alpha, org namespace", "tenant-alpha-org-ops/workload"),
    ("tenant alpha, MCP namespace", "tenant-alpha-org-ops-mcp/workload"),
    ("tenant beta, org namespace", "tenant-beta-org-sales/workload"),
    ("other namespace (default)", "default/outsider"),
)
COLUMNS = (
    ("api-gateway", "neurallog-system/api-gateway-1"),
    ("api-service", "neurallog-system/api-service-2"),
    ("PostgreSQL", "neurallog-data/postgresql-1"),
    ("Redis", "neurallog-data/redis-2"),
    ("Elasticsearch", "neurallog-data/elasticsearch-2"),
    ("other data pod", "neurallog-data/unlisted"),
    ("alpha Redis", "tenant-alpha/redis-1"),
    ("alpha org", "tenant-alpha-org-dev/workload"),
    ("beta Redis", "tenant-beta/redis-1"),
    ("kube-dns", "kube-system/coredns"),
)


def report(matrix):
    """Markdown table: rows are sources, columns destinations."""
    lines = ["| from \\ to | %s |" % " | ".join(c[0] for c in COLUMNS),
             "|---|%s" % ("---|" * len(COLUMNS))]
    for label, src in ROWS:
        cells = [matrix.get((src, dst), "—") if src != dst else "self" for _name, dst in COLUMNS]
        lines.append("| %s | %s |" % (label, " | ".join(cells)))
    return "\n".join(lines) + "\n"
