"""The cluster commands' kind path, driven against stand-in `docker` and
`kind` executables that record how they are called (there is no Docker
engine on the CI machines, so the real kind cannot run here)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "hack" / "localcluster" / "cluster.py"

FAKE_KIND = r"""#!/bin/sh
echo "kind $*" >> "$FAKE_LOG"
case "$1 $2" in
  "get clusters") cat "$FAKE_DIR/clusters" 2>/dev/null ;;
  "create cluster")
    while [ $# -gt 0 ]; do
      case "$1" in
        --name) name=$2 ;;
        --kubeconfig) kc=$2 ;;
        --config) cp "$2" "$FAKE_DIR/kind-config.yaml" ;;
      esac
      shift
    done
    echo "$name" >> "$FAKE_DIR/clusters"
    echo "apiVersion: v1" > "$kc" ;;
  "export kubeconfig") ;;
  "delete cluster") : > "$FAKE_DIR/clusters" ;;
esac
"""


@pytest.fixture()
def fake_env(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kind").write_text(FAKE_KIND)
    (bin_dir / "docker").write_text('#!/bin/sh\necho "docker $*" >> "$FAKE_LOG"\n[ "$1" = info ] && exit "${DOCKER_RC:-0}"\n')
    for exe in bin_dir.iterdir():
        exe.chmod(0o755)
    env = dict(
        os.environ,
        PATH="%s:%s" % (bin_dir, os.environ["PATH"]),
        NEURALLOG_CACHE_DIR=str(tmp_path / "cache"),
        NEURALLOG_CLUSTER_NAME="kindtest",
        FAKE_LOG=str(tmp_path / "calls.log"),
        FAKE_DIR=str(tmp_path),
    )
    env.pop("NEURALLOG_CLUSTER_PROVIDER", None)
    return env, tmp_path


def _cluster(env, *args):
    return subprocess.run([sys.executable, str(CLUSTER), *args], env=env, capture_output=True, text=True, check=False)


def _calls(tmp_path):
    return (tmp_path / "calls.log").read_text().splitlines()


def test_auto_picks_kind_when_docker_answers(fake_env):
    env, tmp = fake_env
    up = _cluster(env, "up")
    assert up.returncode == 0, up.stderr
    kubeconfig = Path(up.stdout.strip().splitlines()[-1])
    assert kubeconfig == tmp / "cache" / "clusters" / "kindtest" / "kubeconfig"
    assert kubeconfig.exists()
    create = [c for c in _calls(tmp) if c.startswith("kind create cluster")]
    assert len(create) == 1
    versions = dict(
        line.split("=", 1) for line in (CLUSTER.parent / "versions.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert "--image %s" % versions["KIND_NODE_IMAGE"] in create[0]
    assert "--name kindtest" in create[0]
    config = yaml.safe_load((tmp / "kind-config.yaml").read_text())
    assert config["networking"]["apiServerAddress"] == "127.0.0.1"
    assert [n["role"] for n in config["nodes"]] == ["control-plane", "worker", "worker"]

    # up again reuses the running cluster
    again = _cluster(env, "up")
    assert again.returncode == 0 and "already running" in again.stderr
    assert len([c for c in _calls(tmp) if c.startswith("kind create cluster")]) == 1

    status = _cluster(env, "status")
    assert status.returncode == 0, status.stderr
    assert "running (provider kind)" in status.stdout

    down = _cluster(env, "down")
    assert down.returncode == 0
    assert "kind delete cluster --name kindtest" in _calls(tmp)
    assert not (tmp / "cache" / "clusters" / "kindtest").exists()


def test_kind_requested_without_docker_engine_is_refused(fake_env):
    env, tmp = fake_env
    env.update(NEURALLOG_CLUSTER_PROVIDER="kind", DOCKER_RC="1")
    up = _cluster(env, "up")
    assert up.returncode != 0
    assert "NEURALLOG_CLUSTER_PROVIDER=kind needs the kind binary and a running Docker engine" in up.stderr
    assert not [c for c in _calls(tmp) if c.startswith("kind create")]


def test_unknown_provider_is_refused(fake_env):
    env = fake_env[0]
    env["NEURALLOG_CLUSTER_PROVIDER"] = "minikube"
    up = _cluster(env, "up")
    assert up.returncode != 0
    assert "NEURALLOG_CLUSTER_PROVIDER='minikube' is not allowed: use auto, local or kind" in up.stderr


def test_auto_falls_back_to_local_without_docker_engine(fake_env):
    env, tmp = fake_env
    env["DOCKER_RC"] = "1"
    status = _cluster(env, "status")
    assert "provider local" in status.stdout
    assert not [c for c in _calls(tmp) if c.startswith("kind")]


FAKE_KIND_LOAD = r"""#!/bin/sh
echo "kind $*" >> "$FAKE_LOG"
case "$1 $2" in
  "get clusters") echo kindtest ;;
  "load docker-image")
    shift 2
    while [ $# -gt 0 ]; do
      case "$1" in
        --name) shift ;;
        *) if grep -qx "$1" "$FAKE_DIR/on-node" 2>/dev/null; then
             echo "Image: \"$1\" with ID \"sha256:x\" found to be already present on all nodes."
           else
             echo "Image: \"$1\" with ID \"sha256:x\" not yet present on node \"kindtest-control-plane\", loading..."
             echo "$1" >> "$FAKE_DIR/on-node"
           fi ;;
      esac
      shift
    done ;;
esac
"""


def test_load_sends_only_what_the_node_lacks(fake_env):
    """cluster.sh load: every reference the inventory deploys that the
    engine has goes to `kind load docker-image`; missing ones are named; a
    second load reports nothing sent (kind compares image IDs itself)."""
    env, tmp = fake_env
    (tmp / "bin" / "kind").write_text(FAKE_KIND_LOAD)
    # The engine has every image but busybox.
    (tmp / "bin" / "docker").write_text(
        '#!/bin/sh\necho "docker $*" >> "$FAKE_LOG"\n'
        'case "$*" in *busybox*) exit 1 ;; esac\nexit 0\n')
    env = dict(env, NEURALLOG_KIND_OFFLINE="0", PYTHON=sys.executable)
    load = ROOT / "hack" / "kind" / "cluster.sh"
    first = subprocess.run(["bash", str(load), "load"], env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    assert "not in the engine, not loaded: docker.io/library/busybox:1.36.1" in first.stderr
    loads = [c for c in _calls(tmp) if c.startswith("kind load docker-image")]
    assert len(loads) == 1
    assert "--name kindtest" in loads[0]
    assert "docker.io/library/redis:7.0.15-alpine" in loads[0]
    assert "docker.io/neurallog/api-gateway:1.0.0" in loads[0]
    assert "busybox" not in loads[0]
    sent = len((tmp / "on-node").read_text().split())
    assert "images: %d checked, %d sent" % (sent, sent) in first.stderr

    second = subprocess.run(["bash", str(load), "load"], env=env, capture_output=True, text=True, check=False)
    assert second.returncode == 0, second.stderr
    assert "images: %d checked, 0 sent" % sent in second.stderr


def test_load_needs_a_running_cluster(fake_env):
    env, tmp = fake_env
    (tmp / "bin" / "kind").write_text('#!/bin/sh\necho "kind $*" >> "$FAKE_LOG"\n')
    env = dict(env, NEURALLOG_KIND_OFFLINE="0")
    out = subprocess.run(["bash", str(ROOT / "hack" / "kind" / "cluster.sh"), "load"], env=env,
                         capture_output=True, text=True, check=False)
    assert out.returncode != 0
    assert "does not exist: run up first" in out.stderr
    assert not [c for c in _calls(tmp) if c.startswith("kind load")]
