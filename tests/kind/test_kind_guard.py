"""The offline kind cluster keeps every packet on this machine.

Against a real kind cluster brought up by ``hack/kind/cluster.sh`` with the
node image built here (NEURALLOG_KIND_OFFLINE=1), checked from the host's and
the node's own iptables counters, never by reaching anything outside:

* the host guard (iptables, forward chain) and the node guard (an nftables
  table on the output and forward hooks, after kube-proxy's DNAT and before
  the iptables filter chains kube-proxy writes to) are loaded, and were
  loaded before the node container, containerd, kubelet and every pod
  sandbox started;
* a pod's TCP connection to an unallocated Service IP is rejected at once by
  the node guard's "untranslated-service-ip" rule (its counter moves);
* a pod's connection to an address outside the machine (TEST-NET-2) is
  rejected at once by the "outside" rule, which counts it: the packet never
  left the node;
* CoreDNS has no ``forward``: the Corefile was replaced before any CoreDNS
  container started, a cluster name resolves and an outside name fails at
  once (SERVFAIL or NXDOMAIN, no address).

A stage of ``make test`` (on the cluster of its ``kind up`` stage); alone, as
root on a machine with Docker:
``NEURALLOG_CLUSTER_PREFIX=<you>- .venv/bin/pytest tests/kind/test_kind_guard.py``
(``NEURALLOG_KIND_KEEP=1`` keeps the cluster afterwards).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import time
from pathlib import Path

import importlib.util

from ansible_collections.neurallog.platform.plugins.plugin_utils.cache_dir import cache_dir

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SH = ROOT / "hack" / "kind" / "cluster.sh"
# NEURALLOG_KIND_CLUSTER: a cluster brought up before (make test's `kind up`
# stage), else one of the tests' own.
NAME = os.environ.get("NEURALLOG_KIND_CLUSTER") or os.environ.get("NEURALLOG_CLUSTER_PREFIX", "") + "kind-guard"
NODE = f"{NAME}-control-plane"
CACHE = Path(cache_dir())
KUBECTL = CACHE / "bin" / "kubectl"
HOST_CHAIN = "NEURALLOG-EGRESS"  # hack/engine.sh; its own tests: test_host_guard.py
_SPEC = importlib.util.spec_from_file_location("host_guard", Path(__file__).with_name("test_host_guard.py"))
_HOST_GUARD = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_HOST_GUARD)
EXPECTED_V4 = _HOST_GUARD.EXPECTED_V4
NODE_TABLE = "neurallog_egress"
SERVICE_SUBNET = "10.96.0.0/16"
POD_SUBNET = "10.244.0.0/16"
# Nothing is allocated there (the Service range's end), and an address from
# TEST-NET-2 (RFC 5737) stands for "outside". 192.0.2.0/24 (TEST-NET-1) is
# not used: on the CI machines it is the host's own network and gateway.
UNALLOCATED_SERVICE = ("10.96.200.200", 443)
OUTSIDE = ("198.51.100.1", 443)


def run(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, **kw)


def kubectl(kubeconfig: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(str(KUBECTL), "--kubeconfig", kubeconfig, *args, check=check)


def node_exec(*args: str) -> str:
    return run("docker", "exec", NODE, *args).stdout


def node_guard() -> str:
    return node_exec("nft", "list", "table", "inet", NODE_TABLE)


def counters() -> dict[str, int]:
    """Packets counted by the node guard's rules, by comment."""
    found: dict[str, int] = {}
    for m in re.finditer(r'counter packets (\d+) bytes \d+ .*comment "([^"]+)"', node_guard()):
        found[m.group(2)] = found.get(m.group(2), 0) + int(m.group(1))
    return found


def epoch(ts: str) -> float:
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def host_rules(chain: str) -> list[str]:
    return [line for line in run("iptables", "-w", "-S", chain).stdout.splitlines() if line.startswith("-A ")]


def test_host_guard_loaded_before_the_node_started(cluster):
    rules = run("iptables", "-w", "-S", HOST_CHAIN).stdout.splitlines()
    assert rules[1:] == EXPECTED_V4
    # Nothing comes before it in FORWARD: first there, or first in
    # DOCKER-USER when that is FORWARD's first rule (dockerd puts it first
    # when it starts).
    forward = host_rules("FORWARD")[0]
    assert forward == f"-A FORWARD -j {HOST_CHAIN}" or (
        forward == "-A FORWARD -j DOCKER-USER" and host_rules("DOCKER-USER")[0] == f"-A DOCKER-USER -j {HOST_CHAIN}"
    ), (forward, host_rules("DOCKER-USER"))
    assert f"-A DOCKER-USER -j {HOST_CHAIN}" in host_rules("DOCKER-USER")
    v6 = run("ip6tables", "-w", "-S", HOST_CHAIN).stdout
    assert f"-A {HOST_CHAIN} -j REJECT" in v6
    loaded = float(Path("/run/neurallog/host-guard-iptables.loaded").read_text())
    started = run("docker", "inspect", "-f", "{{.State.StartedAt}}", NODE).stdout.strip()
    assert loaded < epoch(started[:26] + "Z"), (loaded, started)


def test_node_guard_loaded_before_containerd_kubelet_and_every_pod(cluster):
    guard = node_guard()
    rules = [line.strip() for line in guard.split("chain guard {", 1)[1].split("}", 1)[0].splitlines() if line.strip()]
    assert rules[0] == "ip daddr 127.0.0.0/8 accept"
    assert re.fullmatch(
        rf'ip daddr {SERVICE_SUBNET} meta l4proto tcp counter packets \d+ bytes \d+ reject with tcp reset comment "untranslated-service-ip"',
        rules[1],
    ), rules
    # An untranslated Service IP is rejected before the pod range and the
    # container networks are let through; everything else is rejected last.
    assert rules.index(f"ip daddr {POD_SUBNET} accept") > 2
    # A pod address behind the node's own interface is a pod that is gone:
    # rejected before the pod range is let through.
    off_node = [i for i, r in enumerate(rules) if f"ip daddr {POD_SUBNET} oifname" in r]
    assert off_node and all(
        re.search(r'counter packets \d+ bytes \d+ reject (with icmp port-unreachable )?comment "pod-range-off-node"', rules[i]) for i in off_node
    ), rules
    assert max(off_node) < rules.index(f"ip daddr {POD_SUBNET} accept"), rules
    assert re.fullmatch(r'counter packets \d+ bytes \d+ reject comment "outside"', rules[-1]), rules
    # Output and forward hooks, after DNAT (-100), before iptables' filter (0).
    for hook in ("output", "forward"):
        assert re.search(
            rf"chain {hook} {{\s*type filter hook {hook} priority filter - 10; policy accept;\s*oif \"lo\" accept\s*jump guard",
            guard,
        ), guard
    # kube-proxy's iptables rules exist too, and come after (priority 0).
    assert "KUBE-FORWARD" in node_exec("iptables", "-w", "-S", "FORWARD")

    loaded = float(node_exec("cat", "/run/neurallog/egress-guard.loaded"))
    for unit in ("containerd", "kubelet"):
        ts = node_exec("systemctl", "show", unit, "-p", "ExecMainStartTimestamp", "--value").strip()
        started = float(node_exec("date", "-d", ts, "+%s.%N"))
        assert loaded < started, (unit, loaded, ts)
    sandboxes = json.loads(node_exec("crictl", "pods", "-o", "json"))["items"]
    assert len(sandboxes) >= 6  # etcd, the control plane, kube-proxy, CoreDNS, local-path
    for sandbox in sandboxes:
        created = int(sandbox["createdAt"]) / 1e9
        assert loaded < created, (sandbox["metadata"]["name"], loaded, created)


def _probe_pod(kubeconfig: str, name: str, script: str) -> str:
    """Runs `script` in a pod of the node's own helper image; its output."""
    image = next(
        line for line in node_exec("crictl", "images", "-o", "json").splitlines() if "local-path-helper" in line
    )
    image = re.search(r'"(neurallog\.local/local-path-helper:[^"]+)"', image).group(1)
    kubectl(kubeconfig, "delete", "pod", name, "--ignore-not-found", "--wait=true")
    kubectl(
        kubeconfig, "run", name, "--image", image, "--image-pull-policy=Never", "--restart=Never",
        "--command", "--", "bash", "-c", script,
    )
    deadline = time.time() + 120
    phase = ""
    while time.time() < deadline:
        phase = kubectl(kubeconfig, "get", "pod", name, "-o", "jsonpath={.status.phase}").stdout
        if phase in ("Succeeded", "Failed"):
            break
        time.sleep(1)
    logs = kubectl(kubeconfig, "logs", name).stdout
    kubectl(kubeconfig, "delete", "pod", name, "--wait=false")
    assert phase == "Succeeded", (phase, logs)
    return logs


CONNECT = r"""
t0=$(date +%s%N)
if timeout 10 bash -c 'exec 3<>/dev/tcp/{host}/{port}' 2>/tmp/err; then r=connected; else r="failed $(cat /tmp/err)"; fi
echo "{host}:{port} $r ms=$(( ($(date +%s%N) - t0) / 1000000 ))"
"""


def test_unallocated_service_ip_is_rejected(cluster):
    host, port = UNALLOCATED_SERVICE
    # No Service has that address: kube-proxy has nothing to translate.
    services = kubectl(cluster, "get", "services", "-A", "-o", "jsonpath={.items[*].spec.clusterIP}").stdout
    assert host not in services.split()
    before = counters()["untranslated-service-ip"]
    out = _probe_pod(cluster, "guard-service-ip", CONNECT.format(host=host, port=port))
    assert "Connection refused" in out, out
    assert int(re.search(r"ms=(\d+)", out).group(1)) < 3000, out
    assert counters()["untranslated-service-ip"] > before


def test_outside_address_is_rejected_without_leaving_the_node(cluster):
    host, port = OUTSIDE
    # The guard is in place first (the probe is only sent with it loaded).
    assert 'reject comment "outside"' in node_guard()
    before = counters()
    out = _probe_pod(cluster, "guard-outside", CONNECT.format(host=host, port=port))
    after = counters()
    assert "Connection refused" in out, out
    assert int(re.search(r"ms=(\d+)", out).group(1)) < 3000, out
    # Rejected by the "outside" rule inside the node: the packet never
    # reached the node's network interface, let alone the host.
    assert after["outside"] > before["outside"]
    assert after["untranslated-service-ip"] == before["untranslated-service-ip"]


def test_coredns_never_forwards_and_outside_names_fail_fast(cluster):
    corefile = kubectl(cluster, "-n", "kube-system", "get", "configmap", "coredns", "-o", "jsonpath={.data.Corefile}").stdout
    assert "kubernetes cluster.local" in corefile
    assert not re.search(r"^\s*forward\b", corefile, re.M), corefile
    # The Corefile was replaced before any CoreDNS container started.
    cm = json.loads(kubectl(cluster, "-n", "kube-system", "get", "configmap", "coredns", "-o", "json", "--show-managed-fields").stdout)
    replaced = max(epoch(f["time"]) for f in cm["metadata"]["managedFields"] if f["manager"] == "neurallog-kind")
    pods = json.loads(kubectl(cluster, "-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "json").stdout)["items"]
    assert pods
    for pod in pods:
        for status in pod["status"]["containerStatuses"]:
            assert status["ready"], status
            started = epoch(status["state"]["running"]["startedAt"])
            assert replaced <= started, (pod["metadata"]["name"], cm["metadata"]["managedFields"], started)

    script = r"""
t0=$(date +%s%N); busybox nslookup example.com 2>&1 | tail -n 3; echo "outside ms=$(( ($(date +%s%N) - t0) / 1000000 ))"
busybox nslookup kubernetes.default.svc.cluster.local 2>&1 | tail -n 3
"""
    out = _probe_pod(cluster, "guard-dns", script)
    outside, inside = out.split("outside ms=")
    assert "SERVFAIL" in outside or "NXDOMAIN" in outside, out
    assert "Address" not in outside.split("example.com", 1)[-1], out
    assert int(re.search(r"^(\d+)", inside).group(1)) < 3000, out
    assert re.search(r"Address:\s*10\.96\.0\.1\b", out), out
