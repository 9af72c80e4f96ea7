"""hack/kind/docker-shim: what kind's docker calls become on a host where
`docker run --privileged` fails (driven against a stand-in docker that
records its arguments; the real kind cluster is tests/kind/)."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIM = ROOT / "hack" / "kind" / "docker-shim"


def _shim(tmp_path, *args):
    fake = tmp_path / "docker"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    fake.chmod(0o755)
    env = dict(os.environ, NEURALLOG_REAL_DOCKER=str(fake))
    done = subprocess.run([str(SHIM), *args], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_run_privileged_becomes_every_capability_but_sys_resource(tmp_path):
    args = _shim(tmp_path, "run", "--name", "n", "--privileged", "--tmpfs", "/run", "img")
    assert "--privileged" not in args
    assert args[:3] == ["run", "--name", "n"]
    assert args[-3:] == ["--tmpfs", "/run", "img"]
    for flag in ("--cap-add=ALL", "--cap-drop=SYS_RESOURCE", "--device-cgroup-rule=a *:* rwm", "--device=/dev/kmsg"):
        assert flag in args
    opts = [args[i + 1] for i, a in enumerate(args) if a == "--security-opt"]
    assert sorted(opts) == ["apparmor=unconfined", "seccomp=unconfined", "systempaths=unconfined"]


def test_exec_privileged_is_dropped(tmp_path):
    assert _shim(tmp_path, "exec", "--privileged", "node", "cat", "/kind/version") == [
        "exec", "node", "cat", "/kind/version",
    ]


def test_other_commands_pass_unchanged(tmp_path):
    assert _shim(tmp_path, "inspect", "--privileged", "x") == ["inspect", "--privileged", "x"]
    assert _shim(tmp_path, "run", "--rm", "img", "true") == ["run", "--rm", "img", "true"]


def test_refuses_to_call_itself(tmp_path):
    env = dict(os.environ, NEURALLOG_REAL_DOCKER=str(SHIM))
    done = subprocess.run([str(SHIM), "ps"], env=env, capture_output=True, text=True, check=False, timeout=10)
    assert done.returncode == 1
    assert "NEURALLOG_REAL_DOCKER names this shim" in done.stderr
