"""Local Kubernetes test cluster for neurallog.platform.

Two providers behind the same commands:

* ``local``: a real control plane (etcd, kube-apiserver,
  kube-controller-manager, kube-scheduler) built from the Go module proxy by
  ``build.sh``, with kwok simulating the nodes and the kubelet's status
  updates. Every listener is bound to 127.0.0.1. Used where there is no
  Docker engine.
* ``kind``: a kind cluster, where a Docker engine answers (how most users
  test); ``hack/kind/cluster.sh`` does the work: kind's stock node image, or
  with NEURALLOG_KIND_OFFLINE=1 a node image built on this machine and kept
  from reaching anything outside it.

Commands: ``up`` (reuses a running cluster), ``down``, ``kubeconfig``
(prints its path), ``status``, ``env`` (shell exports); for outage tests
on the local provider, ``apiserver-stop`` and ``apiserver-start`` stop and
start the kube-apiserver process alone (same arguments, same port; etcd and
the controllers keep running). The provider is chosen
by NEURALLOG_CLUSTER_PROVIDER (``local``/``kind``/``auto``, default auto:
kind when ``docker info`` answers and the host can run kind: ``kind`` is on
PATH, or NEURALLOG_KIND_OFFLINE=1 asks for the offline build; otherwise local).
NEURALLOG_CLUSTER_NAME selects one of several clusters (default
``neurallog``); each has its own state directory and ports.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "collections"))
from ansible_collections.neurallog.platform.plugins.plugin_utils.cache_dir import cache_dir  # noqa: E402

CACHE = Path(cache_dir())
BIN = CACHE / "bin"
NAME = os.environ.get("NEURALLOG_CLUSTER_NAME", "neurallog")
STATE = CACHE / "clusters" / NAME
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
NODE_COUNT = int(os.environ.get("NEURALLOG_CLUSTER_NODES", "2"))
STORAGE_CLASS = "standard"
# Admission plugins enabled on top of the API server's defaults (which
# already include NamespaceLifecycle, LimitRanger, ServiceAccount,
# DefaultStorageClass, ResourceQuota and PodSecurity); listed explicitly so
# the test cluster does not silently lose one when defaults change.
ADMISSION = [
    "NamespaceLifecycle",
    "LimitRanger",
    "ServiceAccount",
    "DefaultStorageClass",
    "DefaultTolerationSeconds",
    "PodSecurity",
    "Priority",
    "PersistentVolumeClaimResize",
    "RuntimeClass",
    "StorageObjectInUseProtection",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
    "ResourceQuota",
]


def log(msg: str) -> None:
    print(f"[cluster] {msg}", file=sys.stderr, flush=True)


def versions() -> dict[str, str]:
    out = {}
    for line in (HERE / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
    return out


# --------------------------------------------------------------------------
# provider selection


def docker_engine_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return (
            subprocess.run(
                ["docker", "info"], capture_output=True, timeout=20, check=False
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def kind_runnable() -> bool:
    """kind on PATH (stock node image), or the offline build asked for
    (hack/kind/build.sh builds kind and the node image)."""
    return bool(shutil.which("kind")) or os.environ.get("NEURALLOG_KIND_OFFLINE") == "1"


def provider() -> str:
    wanted = os.environ.get("NEURALLOG_CLUSTER_PROVIDER", "auto")
    if wanted not in ("auto", "local", "kind"):
        sys.exit(
            f"NEURALLOG_CLUSTER_PROVIDER={wanted!r} is not allowed: use auto, local or kind"
        )
    recorded = STATE / "provider"
    if wanted == "auto" and recorded.exists():
        return recorded.read_text().strip()
    if wanted == "auto":
        return "kind" if kind_runnable() and docker_engine_available() else "local"
    if wanted == "kind" and not (kind_runnable() and docker_engine_available()):
        sys.exit("NEURALLOG_CLUSTER_PROVIDER=kind needs the kind binary and a running Docker engine")
    return wanted


def kubeconfig_path() -> Path:
    return STATE / "kubeconfig"


# --------------------------------------------------------------------------
# PKI (python cryptography): one CA, the API server's serving certificate,
# client certificates per component and the service-account signing key.


def _pki():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    return x509, hashes, serialization, ec, rsa, ExtendedKeyUsageOID, NameOID


def write_pki(pki: Path) -> None:
    x509, hashes, serialization, ec, rsa, EKU, NameOID = _pki()
    pki.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    until = now + datetime.timedelta(days=3650)

    def key_pem(key) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def save(name: str, data: bytes) -> None:
        path = pki / name
        path.write_bytes(data)
        path.chmod(0o600)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "neurallog-test-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    save("ca.crt", ca.public_bytes(serialization.Encoding.PEM))
    save("ca.key", key_pem(ca_key))

    def issue(name: str, cn: str, orgs=(), server=False, sans=()):
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [EKU.SERVER_AUTH] if server else [EKU.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if sans:
            alt = []
            for san in sans:
                try:
                    alt.append(x509.IPAddress(ipaddress.ip_address(san)))
                except ValueError:
                    alt.append(x509.DNSName(san))
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        save(f"{name}.crt", cert.public_bytes(serialization.Encoding.PEM))
        save(f"{name}.key", key_pem(key))

    service_ip = str(next(ipaddress.ip_network(SERVICE_CIDR).hosts()))
    issue(
        "apiserver", "kube-apiserver", server=True,
        sans=["127.0.0.1", "localhost", service_ip, "kubernetes", "kubernetes.default",
              "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
    )
    issue("admin", "kubernetes-admin", orgs=["system:masters"])
    issue("controller-manager", "system:kube-controller-manager")
    issue("scheduler", "system:kube-scheduler")
    issue("kwok", "kwok-controller", orgs=["system:masters"])
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    save("sa.key", key_pem(sa_key))
    save(
        "sa.pub",
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


def write_kubeconfig(path: Path, server: str, pki: Path, user: str) -> None:
    import yaml  # PyYAML comes with ansible-core

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": NAME, "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")}}
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(pki / f"{user}.crt"),
                    "client-key": str(pki / f"{user}.key"),
                },
            }
        ],
        "contexts": [{"name": NAME, "context": {"cluster": NAME, "user": user}}],
        "current-context": NAME,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


# --------------------------------------------------------------------------
# processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie is not alive
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def start(name: str, argv: list[str]) -> int:
    logs = STATE / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=STATE,
        )
    return proc.pid


def load_state() -> dict:
    try:
        return json.loads((STATE / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def save_state(state: dict) -> None:
    (STATE / "state.json").write_text(json.dumps(state, indent=2))


def https_ok(url: str, pki: Path, timeout: float = 2.0) -> bool:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


def wait_for(what: str, check, timeout: float, state: dict | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if state:
            dead = [n for n, pid in state.get("pids", {}).items() if not pid_alive(pid)]
            if dead:
                tail = ""
                for name in dead:
                    logfile = STATE / "logs" / f"{name}.log"
                    if logfile.exists():
                        tail += f"\n--- {logfile} (last lines) ---\n"
                        tail += "\n".join(logfile.read_text(errors="replace").splitlines()[-15:])
                raise SystemExit(f"{', '.join(dead)} exited while waiting for {what}{tail}")
        time.sleep(0.25)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}; logs in {STATE / 'logs'}")


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "kubectl"), "--kubeconfig", str(kubeconfig_path()), *args],
        input=stdin,
        text=True,
        capture_output=True,
        check=check,
    )


def local_running() -> bool:
    state = load_state()
    pids = state.get("pids", {})
    if not pids or not all(pid_alive(pid) for pid in pids.values()):
        return False
    return https_ok(f"https://127.0.0.1:{state['ports']['apiserver']}/readyz", STATE / "pki")


def ensure_binaries() -> None:
    subprocess.run([str(HERE / "build.sh"), "all"], check=True, stdout=subprocess.DEVNULL)


def node_manifests() -> str:
    docs = []
    for index in range(NODE_COUNT):
        docs.append({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": f"{NAME}-worker-{index}",
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "kubernetes.io/hostname": f"{NAME}-worker-{index}",
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                    "topology.kubernetes.io/zone": f"zone-{index % 3}",
                },
            },
            "spec": {"podCIDR": f"10.244.{index}.0/24"},
            "status": {
                "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "250", "ephemeral-storage": "500Gi"},
                "capacity": {"cpu": "64", "memory": "256Gi", "pods": "250", "ephemeral-storage": "500Gi"},
                "nodeInfo": {
                    "architecture": "amd64",
                    "operatingSystem": "linux",
                    "kubeletVersion": versions()["KUBERNETES_VERSION"],
                    "kubeProxyVersion": versions()["KUBERNETES_VERSION"],
                    "containerRuntimeVersion": "kwok",
                },
            },
        })
    docs.append({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        # kube-controller-manager's in-tree host-path provisioner
        # (--enable-hostpath-provisioner): real dynamic provisioning, the PV
        # directories live under /tmp/hostpath_pv on this machine.
        "provisioner": "kubernetes.io/host-path",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
        "allowVolumeExpansion": True,
    })
    return "\n---\n".join(json.dumps(d) for d in docs)


def local_up() -> None:
    if local_running():
        log(f"cluster {NAME!r} already running")
        return
    if STATE.exists():
        local_down(quiet=True)
    t0 = time.monotonic()
    ensure_binaries()
    log(f"binaries ready in {time.monotonic() - t0:.1f}s")
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / "provider").write_text("local")
    pki = STATE / "pki"
    write_pki(pki)
    ports = {k: free_port() for k in ("etcd", "etcd_peer", "apiserver", "kcm", "scheduler", "kwok")}
    server = f"https://127.0.0.1:{ports['apiserver']}"
    for user in ("admin", "controller-manager", "scheduler", "kwok"):
        write_kubeconfig(STATE / f"{user}.kubeconfig", server, pki, user)
    shutil.copy(STATE / "admin.kubeconfig", kubeconfig_path())
    state = {"ports": ports, "pids": {}, "server": server}
    save_state(state)

    etcd_url = f"http://127.0.0.1:{ports['etcd']}"
    state["pids"]["etcd"] = start("etcd", [
        str(BIN / "etcd"),
        "--name", "etcd0",
        "--data-dir", str(STATE / "etcd"),
        "--listen-client-urls", etcd_url,
        "--advertise-client-urls", etcd_url,
        "--listen-peer-urls", f"http://127.0.0.1:{ports['etcd_peer']}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{ports['etcd_peer']}",
        "--initial-cluster", f"etcd0=http://127.0.0.1:{ports['etcd_peer']}",
        "--unsafe-no-fsync",  # a throw-away test store: speed over durability
        "--quota-backend-bytes", str(4 * 1024**3),
        "--log-level", "warn",
    ])
    save_state(state)
    wait_for("etcd", lambda: _http_ok(f"{etcd_url}/health"), 60, state)

    state["pids"]["kube-apiserver"] = start("kube-apiserver", [
        str(BIN / "kube-apiserver"),
        "--etcd-servers", etcd_url,
        "--bind-address", "127.0.0.1",
        "--advertise-address", "127.0.0.1",
        "--secure-port", str(ports["apiserver"]),
        "--tls-cert-file", str(pki / "apiserver.crt"),
        "--tls-private-key-file", str(pki / "apiserver.key"),
        "--client-ca-file", str(pki / "ca.crt"),
        "--service-account-key-file", str(pki / "sa.pub"),
        "--service-account-signing-key-file", str(pki / "sa.key"),
        "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
        "--api-audiences", "https://kubernetes.default.svc.cluster.local",
        "--service-cluster-ip-range", SERVICE_CIDR,
        "--authorization-mode", "Node,RBAC",
        "--enable-admission-plugins", ",".join(ADMISSION),
        "--allow-privileged=true",
        # The "kubernetes" Service's endpoint would be 127.0.0.1, which the
        # API refuses for Endpoints; nothing in the tests needs it.
        "--endpoint-reconciler-type", "none",
        "--profiling=false",
        "--v", "1",
    ])
    save_state(state)
    wait_for(
        "kube-apiserver /readyz",
        lambda: https_ok(f"{server}/readyz", pki),
        120,
        state,
    )

    state["pids"]["kube-controller-manager"] = start("kube-controller-manager", [
        str(BIN / "kube-controller-manager"),
        "--kubeconfig", str(STATE / "controller-manager.kubeconfig"),
        "--authentication-kubeconfig", str(STATE / "controller-manager.kubeconfig"),
        "--authorization-kubeconfig", str(STATE / "controller-manager.kubeconfig"),
        "--bind-address", "127.0.0.1",
        "--secure-port", str(ports["kcm"]),
        "--leader-elect=false",
        "--use-service-account-credentials=true",
        "--service-account-private-key-file", str(pki / "sa.key"),
        "--root-ca-file", str(pki / "ca.crt"),
        "--cluster-signing-cert-file", str(pki / "ca.crt"),
        "--cluster-signing-key-file", str(pki / "ca.key"),
        "--service-cluster-ip-range", SERVICE_CIDR,
        "--cluster-cidr", POD_CIDR,
        "--allocate-node-cidrs=false",
        "--enable-hostpath-provisioner=true",
        "--controllers", "*,-nodeipam,-cloud-node-lifecycle,-service,-route",
        "--concurrent-deployment-syncs", "10",
        "--concurrent-statefulset-syncs", "10",
        "--v", "1",
    ])
    state["pids"]["kube-scheduler"] = start("kube-scheduler", [
        str(BIN / "kube-scheduler"),
        "--kubeconfig", str(STATE / "scheduler.kubeconfig"),
        "--authentication-kubeconfig", str(STATE / "scheduler.kubeconfig"),
        "--authorization-kubeconfig", str(STATE / "scheduler.kubeconfig"),
        "--bind-address", "127.0.0.1",
        "--secure-port", str(ports["scheduler"]),
        "--leader-elect=false",
        "--v", "1",
    ])
    state["pids"]["kwok"] = start("kwok", [
        str(BIN / "kwok"),
        "--kubeconfig", str(STATE / "kwok.kubeconfig"),
        "--config", str(BIN / "kwok-stages.yaml"),
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake",
        "--cidr", "10.244.0.1/16",
        "--node-ip", "127.0.0.1",
        "--server-address", f"127.0.0.1:{ports['kwok']}",
        "--node-lease-duration-seconds", "40",
    ])
    save_state(state)

    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=node_manifests())
    wait_for(
        f"{NODE_COUNT} Ready nodes",
        lambda: kubectl(
            "wait", "--for=condition=Ready", "node", "--all", "--timeout=2s", check=False
        ).returncode == 0 and _node_count() >= NODE_COUNT,
        90,
        state,
    )
    wait_for(
        "the default ServiceAccount",
        lambda: kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0,
        60,
        state,
    )
    log(f"cluster {NAME!r} up in {time.monotonic() - t0:.1f}s at {server}")


def _node_count() -> int:
    out = kubectl("get", "nodes", "-o", "name", check=False).stdout
    return len(out.split())


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def local_down(quiet: bool = False) -> None:
    state = load_state()
    pids = state.get("pids", {})
    if pids and local_running():
        # The host-path provisioner's directories outlive the cluster.
        paths = kubectl(
            "get", "pv", "-o", "jsonpath={range .items[*]}{.spec.hostPath.path}{\"\\n\"}{end}", check=False
        ).stdout.split()
        for path in paths:
            if path.startswith("/tmp/hostpath_pv/"):
                shutil.rmtree(path, ignore_errors=True)
    # reverse start order: controllers first, etcd last
    for name in reversed(list(pids)):
        try:
            os.killpg(pids[name], signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids.values()):
        time.sleep(0.2)
    for pid in pids.values():
        if pid_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
    shutil.rmtree(STATE, ignore_errors=True)
    if not quiet:
        log(f"cluster {NAME!r} removed")


def apiserver_stop() -> None:
    """Stop kube-apiserver only, keeping its command line for apiserver_start."""
    state = load_state()
    pid = state.get("pids", {}).get("kube-apiserver")
    if not pid or not pid_alive(pid):
        raise SystemExit(f"cluster {NAME!r}: kube-apiserver is not running")
    state["apiserver_argv"] = Path(f"/proc/{pid}/cmdline").read_bytes().decode().rstrip("\0").split("\0")
    save_state(state)
    # A short grace: its graceful shutdown drains requests for up to a minute.
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        os.killpg(pid, signal.SIGKILL)
    log(f"cluster {NAME!r}: kube-apiserver stopped")


def apiserver_start() -> None:
    """Start kube-apiserver again as apiserver_stop found it; wait for /readyz."""
    state = load_state()
    pid = state.get("pids", {}).get("kube-apiserver")
    if pid and pid_alive(pid):
        log(f"cluster {NAME!r}: kube-apiserver already running")
        return
    if not state.get("apiserver_argv"):
        raise SystemExit(f"cluster {NAME!r}: no recorded kube-apiserver command line (apiserver-stop records it)")
    state["pids"]["kube-apiserver"] = start("kube-apiserver", state["apiserver_argv"])
    save_state(state)
    wait_for("kube-apiserver /readyz", lambda: https_ok(f"{state['server']}/readyz", STATE / "pki"), 120, state)
    log(f"cluster {NAME!r}: kube-apiserver started")


def local_status() -> int:
    state = load_state()
    if not state:
        print(f"cluster {NAME!r}: not created (provider local)")
        return 1
    running = local_running()
    print(f"cluster {NAME!r}: {'running' if running else 'NOT running'} (provider local)")
    print(f"  api server: {state.get('server')}")
    print(f"  kubeconfig: {kubeconfig_path()}")
    for name, pid in state.get("pids", {}).items():
        print(f"  {name:<24} pid {pid:<8} {'alive' if pid_alive(pid) else 'dead'}")
    if running:
        print(kubectl("get", "nodes", "-o", "wide", check=False).stdout.rstrip())
    return 0 if running else 1


# --------------------------------------------------------------------------
# kind


KIND_CLUSTER = HERE.parent / "kind" / "cluster.sh"


def kind(command: str) -> int:
    """hack/kind/cluster.sh COMMAND for this cluster; its stdout is ours."""
    return subprocess.run(["bash", str(KIND_CLUSTER), command], check=False).returncode


def kind_up() -> None:
    if subprocess.run(
        ["bash", str(KIND_CLUSTER), "up"], stdout=subprocess.DEVNULL, check=False
    ).returncode:
        sys.exit(f"kind cluster {NAME!r} could not be brought up (messages above)")


def kind_down() -> None:
    if kind("down"):
        sys.exit(f"kind cluster {NAME!r} could not be deleted (messages above)")


def kind_status() -> int:
    return kind("status")


# --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "kubeconfig", "status", "env", "build",
                                            "apiserver-stop", "apiserver-start"])
    args = parser.parse_args(argv)
    if args.command == "build":
        ensure_binaries()
        return 0
    prov = provider()
    if args.command in ("apiserver-stop", "apiserver-start"):
        if prov != "local":
            raise SystemExit(f"{args.command} needs the local provider (this cluster is {prov})")
        (apiserver_stop if args.command == "apiserver-stop" else apiserver_start)()
        return 0
    if args.command == "up":
        (kind_up if prov == "kind" else local_up)()
        print(kubeconfig_path())
    elif args.command == "down":
        (kind_down if prov == "kind" else local_down)()
    elif args.command == "kubeconfig":
        print(kubeconfig_path())
        return 0 if kubeconfig_path().exists() else 1
    elif args.command == "env":
        print(f"export K8S_AUTH_KUBECONFIG={kubeconfig_path()}")
        print(f"export KUBECONFIG={kubeconfig_path()}")
        if prov == "local":
            print(f"export PATH={BIN}:$PATH")
    elif args.command == "status":
        return (kind_status if prov == "kind" else local_status)()
    return 0


if __name__ == "__main__":
    sys.exit(main())
