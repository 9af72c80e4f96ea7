"""NetworkPolicies are enforced on the offline kind cluster.

``hack/kind/cluster.sh up`` installs kube-router's policy controller
(``kube-system/neurallog-network-policy``, iptables and ipsets) before the
pod network exists. Against that real cluster, with two tenants made of
exactly the objects the collection's tenant module generates
(``plugins/module_utils/tenant.py``: namespaces, quota, limits, the
``tenant-isolation`` NetworkPolicy, RBAC and the tenant's Redis with the
platform's Redis image), and a ``neurallog-system`` namespace labelled as
the policies expect:

* the agent runs the pinned image, was Ready before CoreDNS (the first pod
  on the pod network) started, and its iptables chains come after the
  node's egress guard (an nftables chain at priority filter - 10, before
  iptables' filter chains at priority 0);
* a pod of tenant A cannot open a connection to tenant B's Redis (it fails
  within seconds), while it reaches its own tenant's Redis;
* a pod in ``neurallog-system`` reaches tenant B's Redis (Redis answers);
* DNS works from a tenant pod (the policy's egress to CoreDNS);
* with the tenants' policies deleted, the connection that was refused
  succeeds: the refusal came from the policies.

A stage of ``make test`` (the ``tests/kind`` stage); alone, as root on a
machine with Docker:
``NEURALLOG_CLUSTER_PREFIX=<you>- .venv/bin/pytest tests/kind/test_network_policy.py``
(``NEURALLOG_KIND_KEEP=1`` keeps the cluster afterwards).
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from ansible_collections.neurallog.platform.plugins.module_utils import tenant as tenant_module

ROOT = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location("kind_guard", Path(__file__).with_name("test_kind_guard.py"))
_GUARD = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_GUARD)
NAME = _GUARD.NAME  # the cluster of the `cluster` fixture (tests/kind/conftest.py)
kubectl = _GUARD.kubectl
node_exec = _GUARD.node_exec
NODE_TABLE = _GUARD.NODE_TABLE

VERSIONS = dict(
    line.split("=", 1)
    for line in (ROOT / "hack" / "localcluster" / "versions.env").read_text().splitlines()
    if line and not line.startswith("#")
)
AGENT = "neurallog-network-policy"
REDIS_IMAGE = "docker.io/library/redis:7.0.15-alpine"  # inventories' tag, built by hack/images
TENANT_A, TENANT_B = "npalpha", "npbeta"
SYSTEM = "neurallog-system"
PROBE_USER = 65534
# A refused connection must fail fast: well under the probe's own 8 s limit.
REFUSED_WITHIN_MS = 6000


def epoch(ts: str) -> float:
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def apply(kubeconfig: str, objects: list[dict]) -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": objects}
    done = subprocess.run(
        [str(_GUARD.KUBECTL), "--kubeconfig", kubeconfig, "apply", "--server-side", "--force-conflicts",
         "--field-manager=neurallog-np-test", "-f", "-"],
        input=yaml.safe_dump(doc), capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr


def helper_image() -> str:
    """The node's own Debian helper image (bash, busybox): preloaded, never pulled."""
    images = node_exec("crictl", "images", "-o", "json")
    return re.search(r'"(neurallog\.local/local-path-helper:[^"]+)"', images).group(1)


def agent_knows(namespace: str, pod_name: str) -> bool:
    """kube-router has synced since that pod got its address: its pod chain
    exists, and so do its addresses in the policies' ipsets (restored in
    the same sync, before the chains)."""
    rules = node_exec("iptables-save", "-t", "filter")
    return bool(re.search(rf"POD name:{re.escape(pod_name)} namespace: ?{re.escape(namespace)} to chain", rules))


def run_probe(kubeconfig: str, namespace: str, name: str, script: str) -> str:
    """Runs ``script`` (bash) in a pod of ``namespace`` that satisfies the
    restricted Pod Security level, once the policy agent has taken the pod
    into account (the agent applies a new pod's address within a second or
    so; a connection sent before that would test the agent's delay, not the
    policies); returns its output."""
    kubectl(kubeconfig, "-n", namespace, "delete", "pod", name, "--ignore-not-found", "--wait=true")
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 0,
            "securityContext": {"runAsNonRoot": True, "runAsUser": PROBE_USER, "runAsGroup": PROBE_USER,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "probe", "image": helper_image(), "imagePullPolicy": "Never",
                "command": ["sleep", "600"],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                              "limits": {"cpu": "100m", "memory": "64Mi"}},
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }
    apply(kubeconfig, [pod])
    try:
        kubectl(kubeconfig, "-n", namespace, "wait", "--for=condition=Ready", f"pod/{name}", "--timeout=120s")
        wait_for(f"the policy agent taking {namespace}/{name} into account", lambda: agent_knows(namespace, name), 60)
        done = kubectl(kubeconfig, "-n", namespace, "exec", name, "--", "bash", "-c", script, check=False)
        assert done.returncode == 0, (namespace, name, done.stdout, done.stderr)
        return done.stdout
    finally:
        kubectl(kubeconfig, "-n", namespace, "delete", "pod", name, "--wait=false", check=False)


# Opens a TCP connection, sends PING, prints Redis's first answer line (a
# Redis with a password answers -NOAUTH) and how long it took.
CONNECT = r"""
t0=$(date +%s%N)
if out=$(timeout 8 bash -c 'exec 3<>/dev/tcp/{host}/{port} && printf "PING\r\n" >&3 && IFS= read -r -t 5 line <&3 && echo "$line"' 2>&1); then
  r="connected reply=${{out//$'\r'/}}"
else
  r="failed rc=$? ${{out//$'\n'/ }}"
fi
echo "RESULT {host}:{port} $r ms=$(( ($(date +%s%N) - t0) / 1000000 ))"
"""


def connect(kubeconfig: str, namespace: str, name: str, host: str, port: int = tenant_module.REDIS_PORT) -> tuple[str, int]:
    out = run_probe(kubeconfig, namespace, name, CONNECT.format(host=host, port=port)).replace("\r", "")
    m = re.search(r"^RESULT \S+ (.*) ms=(\d+)$", out, re.M)
    assert m, out
    return m.group(1), int(m.group(2))


def redis_pod(kubeconfig: str, namespace: str) -> dict:
    pods = json.loads(kubectl(
        kubeconfig, "-n", namespace, "get", "pods", "-l", f"app={tenant_module.REDIS_NAME}", "-o", "json").stdout)["items"]
    assert len(pods) == 1, pods
    return pods[0]


def policy_chains(namespace: str, pod_name: str) -> set[str]:
    """The NetworkPolicy chains kube-router sends that pod's traffic through
    (its pod chain jumps to one per policy selecting it, besides
    KUBE-NWPLCY-DEFAULT, which every pod has)."""
    rules = node_exec("iptables-save", "-t", "filter").splitlines()
    chain = None
    for rule in rules:
        m = re.search(rf"POD name:{re.escape(pod_name)} namespace: ?{re.escape(namespace)} to chain (KUBE-POD-FW-\S+)\"", rule)
        if m:
            chain = m.group(1)
            break
    if chain is None:
        return set()
    return {m.group(1) for rule in rules if rule.startswith(f"-A {chain} ")
            for m in [re.search(r"-j (KUBE-NWPLCY-\S+)", rule)] if m and m.group(1) != "KUBE-NWPLCY-DEFAULT"}


def wait_for(what: str, check, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(2)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


@pytest.fixture(scope="module")
def tenants(cluster):
    """Two tenants from the tenant module, their Redis Ready, and the system
    namespace; everything removed afterwards."""
    # The platform's Redis image (hack/images, the images-real stage) into
    # the node, as molecule/kind's prepare does: never pulled.
    env = dict(os.environ, NEURALLOG_CLUSTER_NAME=_GUARD.NAME, NEURALLOG_KIND_OFFLINE="1")
    load = subprocess.run(["bash", str(_GUARD.CLUSTER_SH), "load", REDIS_IMAGE], env=env,
                          capture_output=True, text=True, check=False)
    assert load.returncode == 0, f"cluster.sh load {REDIS_IMAGE} failed (hack/images/build.sh redis builds it):\n{load.stderr}"
    settings = {"redis_image": REDIS_IMAGE}
    built = tenant_module.build_resources([{"id": TENANT_A}, {"id": TENANT_B}], settings)
    objects = list(built["resources"])
    namespaces = [o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"]
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    assert {p["metadata"]["namespace"] for p in policies} == set(namespaces)
    system_labels = tenant_module.DEFAULT_SETTINGS["system_namespace_labels"]
    # Namespaces of an earlier run of these tests still being deleted.
    for ns in namespaces + [SYSTEM]:
        wait_for(f"namespace {ns} of an earlier run deleted", lambda ns=ns: not kubectl(
            cluster, "get", "namespace", ns, "-o", "jsonpath={.metadata.deletionTimestamp}", check=False).stdout, 300)
    had_system = kubectl(cluster, "get", "namespace", SYSTEM, check=False).returncode == 0
    apply(cluster, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYSTEM, "labels": system_labels}}])
    apply(cluster, [o for o in objects if o["kind"] == "Namespace"])
    apply(cluster, [o for o in objects if o["kind"] != "Namespace"])
    for ns in (f"tenant-{TENANT_A}", f"tenant-{TENANT_B}"):
        kubectl(cluster, "-n", ns, "rollout", "status", f"statefulset/{tenant_module.REDIS_NAME}", "--timeout=240s")
        pod = redis_pod(cluster, ns)
        wait_for(f"the policy agent's rules for {ns}/{pod['metadata']['name']}",
                 lambda ns=ns, name=pod["metadata"]["name"]: policy_chains(ns, name))
    yield {"kubeconfig": cluster, "policies": policies, "namespaces": namespaces}
    kubectl(cluster, "delete", "namespace", *namespaces, "--wait=false", check=False)
    if not had_system:
        kubectl(cluster, "delete", "namespace", SYSTEM, "--wait=false", check=False)


def test_agent_ready_before_the_pod_network_and_behind_the_egress_guard(cluster):
    ds = json.loads(kubectl(cluster, "-n", "kube-system", "get", "daemonset", AGENT, "-o", "json").stdout)
    container = ds["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"neurallog.local/kube-router:{VERSIONS['KIND_KUBE_ROUTER_VERSION']}"
    assert container["imagePullPolicy"] == "Never"
    assert "--run-firewall=true" in container["args"] and "--run-router=false" in container["args"]
    assert ds["status"]["numberReady"] == ds["status"]["desiredNumberScheduled"] == 1, ds["status"]
    # Started before CoreDNS, the first pod on the pod network (`up` waits
    # for it to be Ready before it writes the CNI configuration; its Ready
    # condition itself can move later, when a probe times out on loaded
    # cores). CoreDNS has its own pod chain, so the agent knows it.
    agent = json.loads(kubectl(cluster, "-n", "kube-system", "get", "pods", "-l", f"k8s-app={AGENT}", "-o", "json").stdout)["items"][0]
    started = epoch(agent["status"]["startTime"])
    coredns = json.loads(kubectl(cluster, "-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "json").stdout)["items"]
    assert coredns
    for pod in coredns:
        assert started < epoch(pod["status"]["startTime"]), (agent["status"]["startTime"], pod["metadata"]["name"], pod["status"]["startTime"])
        assert agent_knows("kube-system", pod["metadata"]["name"]), pod["metadata"]["name"]
    # Its chains are jumped to from the node's FORWARD chain (iptables'
    # filter table, hook priority 0) ...
    forward = node_exec("iptables", "-w", "-S", "FORWARD")
    assert "-j KUBE-ROUTER-FORWARD" in forward, forward
    ruleset = node_exec("nft", "list", "ruleset")
    filter_forward = re.search(r"table ip filter \{.*?chain FORWARD \{\s*type filter hook forward priority (\S+);", ruleset, re.S)
    assert filter_forward and filter_forward.group(1) in ("filter", "0"), ruleset[:2000]
    # ... and the egress guard's chains on the same hooks come first.
    guard = node_exec("nft", "list", "table", "inet", NODE_TABLE)
    for hook in ("forward", "output"):
        assert f"type filter hook {hook} priority filter - 10;" in guard, guard


def test_tenant_cannot_reach_another_tenants_redis(tenants):
    kubeconfig = tenants["kubeconfig"]
    own = redis_pod(kubeconfig, f"tenant-{TENANT_A}")["status"]["podIP"]
    other = redis_pod(kubeconfig, f"tenant-{TENANT_B}")["status"]["podIP"]
    result, ms = connect(kubeconfig, f"tenant-{TENANT_A}", "np-own", own)
    assert result.startswith("connected reply=-NOAUTH"), result
    result, ms = connect(kubeconfig, f"tenant-{TENANT_A}", "np-other", other)
    assert result.startswith("failed"), result
    assert ms < REFUSED_WITHIN_MS, (result, ms)


def test_system_namespace_reaches_a_tenants_redis(tenants):
    kubeconfig = tenants["kubeconfig"]
    other = redis_pod(kubeconfig, f"tenant-{TENANT_B}")["status"]["podIP"]
    result, _elapsed = connect(kubeconfig, SYSTEM, "np-system", other)
    assert result.startswith("connected reply=-NOAUTH"), result


def test_dns_works_from_a_tenant_pod(tenants):
    kubeconfig = tenants["kubeconfig"]
    other = redis_pod(kubeconfig, f"tenant-{TENANT_B}")
    name = f"{other['metadata']['name']}.{tenant_module.REDIS_NAME}.tenant-{TENANT_B}.svc.cluster.local"
    out = run_probe(kubeconfig, f"tenant-{TENANT_A}", "np-dns",
                    f"getent hosts kubernetes.default.svc.cluster.local; getent hosts {name}; echo done")
    assert re.search(r"^10\.96\.0\.1\s+kubernetes\.default\.svc\.cluster\.local", out, re.M), out
    assert re.search(rf"^{re.escape(other['status']['podIP'])}\s", out, re.M), out


def test_without_the_policies_the_same_connection_succeeds(tenants):
    """Last: deletes the tenants' policies."""
    kubeconfig = tenants["kubeconfig"]
    other_ns = f"tenant-{TENANT_B}"
    other = redis_pod(kubeconfig, other_ns)
    for policy in tenants["policies"]:
        kubectl(kubeconfig, "-n", policy["metadata"]["namespace"], "delete", "networkpolicy", policy["metadata"]["name"])
    # The agent takes the policies' chains out of the pods' chains.
    for ns in (f"tenant-{TENANT_A}", other_ns):
        pod = redis_pod(kubeconfig, ns)["metadata"]["name"]
        wait_for(f"the policy agent removing the policies of {ns}/{pod}", lambda ns=ns, pod=pod: not policy_chains(ns, pod))
    result, _elapsed = connect(kubeconfig, f"tenant-{TENANT_A}", "np-open", other["status"]["podIP"])
    assert result.startswith("connected reply=-NOAUTH"), result
