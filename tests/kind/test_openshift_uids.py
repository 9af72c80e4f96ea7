"""The data services' images under an OpenShift UID, with real containers.

OpenShift's restricted-v2 SCC runs every pod of a namespace under a UID of
that namespace's range (e.g. 1000650000) that no /etc/passwd names, with
group 0 and an fsGroup of the range. This test renders the OpenShift flavour
(``neurallog_openshift=true``, inventories/kind), takes the PostgreSQL, Redis
and Elasticsearch StatefulSets from it (one replica each), gives each pod the
securityContext restricted-v2 would give it (runAsUser and fsGroup
1000650000, group 0 as a supplemental group) and starts them on the kind
cluster: each becomes Ready through its own probes, writes its data as that
UID (a row, a key, a document), and the files on its volume belong to it.

A stage of ``make test`` (on the cluster of its ``kind up``
stage); alone, as root on a machine with Docker and the images built
(``hack/images/build.sh all``):
``NEURALLOG_CLUSTER_PREFIX=<you>- .venv/bin/pytest tests/kind/test_openshift_uids.py``
(``NEURALLOG_KIND_KEEP=1`` keeps the cluster afterwards). On a Docker engine
shared with other checkouts, which build the same tags from their own trees,
tag this checkout's images under names of your own and pass them as
``NEURALLOG_KIND_TEST_IMAGES='{"postgresql": "<ref>", "redis": "<ref>",
"elasticsearch": "<ref>"}'``.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from ansible_collections.neurallog.platform.plugins.plugin_utils.cache_dir import cache_dir

ROOT = Path(__file__).resolve().parents[2]
NAME = os.environ.get("NEURALLOG_KIND_CLUSTER") or os.environ.get("NEURALLOG_CLUSTER_PREFIX", "") + "kind-openshift"
CACHE = Path(cache_dir())
KUBECTL = CACHE / "bin" / "kubectl"
INVENTORY = ROOT / "inventories" / "kind"
NAMESPACE = "neurallog-data"
UID = 1000650000  # a UID of an OpenShift namespace's range (openshift.io/sa.scc.uid-range)
RESTRICTED_V2 = {"runAsUser": UID, "fsGroup": UID, "supplementalGroups": [0]}
SERVICES = ("postgresql", "redis", "elasticsearch")


def run(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, **kw)


def kubectl(kubeconfig: str, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return run(str(KUBECTL), "--kubeconfig", kubeconfig, *args, check=check, **kw)


# NEURALLOG_KIND_TEST_IMAGES: {"postgresql": ref, ...}, images to use instead
# of the inventory's references, e.g. tags of one's own on a Docker engine
# that other checkouts also build the inventory's tags in.
IMAGES = json.loads(os.environ.get("NEURALLOG_KIND_TEST_IMAGES") or "{}")


def _override(ref: str) -> dict:
    name, tag = ref.rsplit(":", 1)
    registry, repository = name.split("/", 1)
    return {"registry": registry, "repository": repository, "tag": tag}


def render(folder: Path) -> list[dict]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               K8S_AUTH_KUBECONFIG=str(folder / "none"), KUBECONFIG=str(folder / "none"))
    overrides = json.dumps({"neurallog_image_overrides": dict((k, _override(v)) for k, v in IMAGES.items())})
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "site.yml", "-i", str(INVENTORY),
                           "-e", f"neurallog_render_dir={folder}", "-e", "neurallog_openshift=true", "-e", overrides],
                          cwd=str(ROOT), env=env, capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    docs = []
    for name in ("namespaces",) + SERVICES:
        for path in (folder / f"{name}.yaml", folder / "secrets" / f"{name}.yaml"):
            if path.exists():
                docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _image_refs() -> list[str]:
    out = run(sys.executable, str(ROOT / "hack" / "images" / "refs.py"), str(INVENTORY)).stdout.split("\n")
    refs = dict(line.split()[:2] for line in out if line.strip())
    refs.update(IMAGES)
    return [refs[key] for key in SERVICES]


# Loaded into the node by the `cluster` fixture (tests/kind/conftest.py).
CLUSTER_IMAGES = _image_refs


@pytest.fixture(scope="module")
def data_services(cluster):
    """The OpenShift render's data services, one replica each, with the
    securityContext restricted-v2 would give them, applied and Ready."""
    with tempfile.TemporaryDirectory(prefix="neurallog-openshift-") as tmp:
        docs = render(Path(tmp) / "render")
    secrets = [d for d in docs if d["kind"] == "Secret"]
    objects = []
    for doc in docs:
        if doc["kind"] == "Namespace" and doc["metadata"]["name"] != NAMESPACE:
            continue
        if doc["metadata"].get("namespace") not in (None, NAMESPACE):
            continue
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "elasticsearch-bootstrap":
            # a new cluster from rendered files bootstraps once with the list
            # (roles/elasticsearch/README.md, "Bootstrap"); the render holds
            # the empty list of a running cluster
            assert doc["data"]["initial-master-nodes"] == ""
            doc["data"]["initial-master-nodes"] = "elasticsearch-0"
        if doc["kind"] == "StatefulSet":
            pod = doc["spec"]["template"]["spec"]
            # the render fixes none of them (tests/unit/test_openshift_render.py)
            assert not {"runAsUser", "runAsGroup", "fsGroup"} & set(pod["securityContext"])
            pod["securityContext"].update(RESTRICTED_V2)
            doc["spec"]["replicas"] = 1
        objects.append(doc)
    kubectl(cluster, "delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=180s")
    applied = kubectl(cluster, "apply", "--server-side", "--field-manager=neurallog-test", "-f", "-",
                      input="\n---\n".join(yaml.safe_dump(o) for o in objects), check=False)
    assert applied.returncode == 0, applied.stderr[-3000:]
    for service in SERVICES:
        status = kubectl(cluster, "-n", NAMESPACE, "rollout", "status", f"statefulset/{service}", "--timeout=900s",
                         check=False)
        if status.returncode != 0:
            pods = kubectl(cluster, "-n", NAMESPACE, "get", "pods", "-o", "wide", check=False).stdout
            logs = kubectl(cluster, "-n", NAMESPACE, "logs", f"{service}-0", "--all-containers", "--tail=40",
                           check=False)
            pytest.fail(f"{service} not Ready as uid {UID}:\n{pods}\n{logs.stdout}{logs.stderr}")
    yield {"kubeconfig": cluster, "secrets": secrets}
    if os.environ.get("NEURALLOG_KIND_KEEP") != "1":
        kubectl(cluster, "delete", "namespace", NAMESPACE, "--wait=false", check=False)


def pod_exec(kubeconfig: str, pod: str, container: str, script: str, stdin: str | None = None) -> str:
    proc = kubectl(kubeconfig, "-n", NAMESPACE, "exec", "-i", pod, "-c", container, "--", "sh", "-c", script,
                   input=stdin, check=False)
    assert proc.returncode == 0, f"{pod}: {script}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return proc.stdout


def secret_value(secrets: list[dict], name: str, key: str, namespace: str = NAMESPACE) -> str:
    secret = next(s for s in secrets if s["metadata"]["name"] == name and s["metadata"]["namespace"] == namespace)
    return base64.b64decode(secret["data"][key]).decode()


@pytest.mark.parametrize("service,container", [("postgresql", "postgresql"), ("redis", "redis"),
                                               ("elasticsearch", "elasticsearch")])
def test_runs_as_the_assigned_uid_in_group_0(data_services, service, container):
    ids = pod_exec(data_services["kubeconfig"], f"{service}-0", container, "id -u; id -G").split()
    assert ids[0] == str(UID)
    assert "0" in ids[1:] and str(UID) in ids[1:], ids


def test_postgresql_initialised_and_writes_as_that_uid(data_services):
    kubeconfig = data_services["kubeconfig"]
    # psql as the application user over TCP; its password from the Secret
    # file in the pod, never on a command line
    out = pod_exec(kubeconfig, "postgresql-0", "postgresql",
                   "PGPASSWORD=$(cat /etc/neurallog/postgresql/password) psql -h 127.0.0.1 -U neurallog -d neurallog "
                   "-v ON_ERROR_STOP=1 -tA -c 'CREATE TABLE IF NOT EXISTS openshift_uid (v text)' "
                   "-c \"INSERT INTO openshift_uid VALUES ('written as an OpenShift uid')\" "
                   "-c 'SELECT v FROM openshift_uid'")
    assert "written as an OpenShift uid" in out
    owners = pod_exec(kubeconfig, "postgresql-0", "postgresql",
                      "stat -c '%u %a' /var/lib/postgresql/data/pgdata /var/lib/postgresql/data/pgdata/PG_VERSION")
    assert owners.split() == [str(UID), "700", str(UID), "600"], owners


def test_redis_writes_its_append_only_file_as_that_uid(data_services):
    kubeconfig, secrets = data_services["kubeconfig"], data_services["secrets"]
    user = secret_value(secrets, "redis-credentials", "username", "neurallog-system")
    password = secret_value(secrets, "redis", "password")
    # the AUTH line goes through standard input, not the command line
    out = pod_exec(kubeconfig, "redis-0", "redis", "redis-cli --no-auth-warning -h 127.0.0.1",
                   stdin=f"AUTH {user} {password}\nSET openshift:uid written\nGET openshift:uid\n")
    assert out.split() == ["OK", "OK", "written"], out
    owners = pod_exec(kubeconfig, "redis-0", "redis", "stat -c '%u' /data/appendonlydir/*")
    assert set(owners.split()) == {str(UID)}, owners


def test_elasticsearch_indexes_a_document_as_that_uid(data_services):
    kubeconfig = data_services["kubeconfig"]
    curl = ("printf 'user = \"elastic:%s\"\\n' \"$(cat /mnt/neurallog/runtime/elastic-password)\" | curl -K - -fsS "
            "--max-time 30 --cacert /usr/share/elasticsearch/config/http-certs/ca.crt ")
    put = pod_exec(kubeconfig, "elasticsearch-0", "elasticsearch",
                   curl + "-X PUT -H 'Content-Type: application/json' -d '{\"v\": \"written as an OpenShift uid\"}' "
                   "'https://127.0.0.1:9200/openshift-uid/_doc/1?refresh=true'")
    assert json.loads(put)["result"] in ("created", "updated"), put
    got = json.loads(pod_exec(kubeconfig, "elasticsearch-0", "elasticsearch",
                              curl + "'https://127.0.0.1:9200/openshift-uid/_doc/1'"))
    assert got["_source"] == {"v": "written as an OpenShift uid"}
    owners = pod_exec(kubeconfig, "elasticsearch-0", "elasticsearch",
                      "stat -c '%u' /usr/share/elasticsearch/data/_state /usr/share/elasticsearch/config/elasticsearch.keystore")
    assert set(owners.split()) == {str(UID)}, owners


@pytest.mark.parametrize("service", SERVICES)
def test_every_exec_probe_passes_as_that_uid(data_services, service):
    """The probes run as the kubelet runs them: outside the entrypoint (no
    nss_wrapper), with the container's environment. PostgreSQL's liveness
    probe names no user: without PGUSER libpq finds no user name for the
    UID and pg_isready does not even try (exit 3)."""
    kubeconfig = data_services["kubeconfig"]
    spec = json.loads(kubectl(kubeconfig, "-n", NAMESPACE, "get", "statefulset", service, "-o", "json").stdout)
    checked = []
    for container in spec["spec"]["template"]["spec"]["containers"]:
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            command = ((container.get(kind) or {}).get("exec") or {}).get("command")
            if not command:
                continue
            proc = kubectl(kubeconfig, "-n", NAMESPACE, "exec", f"{service}-0", "-c", container["name"], "--",
                           *command, check=False)
            assert proc.returncode == 0, (service, kind, proc.returncode, proc.stdout[-500:], proc.stderr[-500:])
            checked.append(kind)
    assert checked, f"{service} has no exec probe"
