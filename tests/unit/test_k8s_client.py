# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugins/module_utils/k8s_client.py: every cluster call of the
controller-side plugins is bounded and fails naming the server URL and the
underlying error. The servers here are real sockets on 127.0.0.1: one that
accepts connections and never answers, one that completes the TLS handshake
and never answers, and a closed port."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "collections"))

from ansible_collections.neurallog.platform.plugins.module_utils import k8s_client  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = (1, 2)


def _kubeconfig(path, port):
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:%d', insecure-skip-tls-verify: true}}]\n"
        "users: [{name: u, user: {token: not-a-secret}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "current-context: x\n" % port)
    return str(path)


def _closed_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture(autouse=True)
def _own_discovery_cache(tmp_path, monkeypatch):
    # kubernetes.core caches discovery in the temp dir, keyed by server URL
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    for name in list(os.environ):
        if name.startswith("K8S_AUTH_"):
            monkeypatch.delenv(name)


def _call(kubeconfig, timeout=TIMEOUT):
    client = k8s_client.get_client(kubeconfig=kubeconfig, timeout=timeout)
    leases = client.resource("Lease", "coordination.k8s.io/v1")
    return client.get(leases, namespace="default")


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_a_server_that_never_answers_fails_within_the_timeout(tmp_path, tls, silent_server_factory):
    server = silent_server_factory(tmp_path if tls else None)
    url = "https://127.0.0.1:%d" % server.port
    started = time.monotonic()
    with pytest.raises(k8s_client.ClusterUnreachable) as err:
        _call(_kubeconfig(tmp_path / "kubeconfig", server.port))
    elapsed = time.monotonic() - started
    assert server.accepted, "the client never connected"
    # one connect (1 s) or one read (2 s), not retried
    assert elapsed < sum(TIMEOUT) + 1.5, elapsed
    message = str(err.value)
    assert message.startswith("The Kubernetes API server %s could not be reached: no answer in time" % url), message
    assert "timed out" in message and "(timeouts: 1s to connect, 2s to answer)" in message


def test_a_closed_port_fails_at_once_saying_connection_refused(tmp_path):
    port = _closed_port()
    started = time.monotonic()
    with pytest.raises(k8s_client.ClusterUnreachable) as err:
        _call(_kubeconfig(tmp_path / "kubeconfig", port))
    assert time.monotonic() - started < 3
    assert str(err.value).startswith(
        "The Kubernetes API server https://127.0.0.1:%d could not be reached: connection refused" % port)


def test_the_environment_is_read_like_kubernetes_core(tmp_path, monkeypatch):
    port = _closed_port()
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", _kubeconfig(tmp_path / "kubeconfig", port))
    with pytest.raises(k8s_client.ClusterUnreachable, match="https://127.0.0.1:%d could not be reached" % port):
        _call(None)
    other = _closed_port()
    monkeypatch.setenv("K8S_AUTH_HOST", "https://127.0.0.1:%d" % other)
    monkeypatch.setenv("K8S_AUTH_API_KEY", "not-a-secret")
    with pytest.raises(k8s_client.ClusterUnreachable, match="https://127.0.0.1:%d could not be reached" % other):
        _call(None)


def test_a_bad_kubeconfig_is_named(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(k8s_client.ClusterUnreachable) as err:
        k8s_client.get_client(kubeconfig=str(missing))
    assert str(missing) in str(err.value)
    kubeconfig = _kubeconfig(tmp_path / "kubeconfig", _closed_port())
    with pytest.raises(k8s_client.ClusterUnreachable, match="context nope"):
        k8s_client.get_client(kubeconfig=kubeconfig, context="nope")


def test_defaults_are_bounded():
    assert 0 < k8s_client.CONNECT_TIMEOUT and 0 < k8s_client.READ_TIMEOUT
    assert k8s_client.CONNECT_TIMEOUT + k8s_client.READ_TIMEOUT <= 30


def test_the_plugins_build_their_client_here_only():
    """The lookups and the run lock action get their client from k8s_client."""
    for path in ("plugins/lookup/k8s_pending.py", "plugins/action/run_lock.py"):
        text = (ROOT / path).read_text()
        assert "get_api_client" not in text, path
        assert "module_utils.k8s_client import" in text, path


PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: List through the lookup
      ansible.builtin.debug:
        msg: "{{ query('neurallog.platform.k8s_pending', [{'apiVersion': 'v1', 'kind': 'ConfigMap',
                       'metadata': {'name': 'a', 'namespace': 'b'}}], label_selector='a=b', request_timeout=2) }}"
      ignore_errors: true
    - name: Take the run lock
      neurallog.platform.run_lock:
        namespace: neurallog-system
        request_timeout: 2
"""


def test_lookup_and_run_lock_fail_naming_the_server(tmp_path, silent_server):
    """Through ansible-playbook: the lookup and the action fail within the
    timeout with the server's URL, instead of hanging the run."""
    server = silent_server
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    env = dict(os.environ, K8S_AUTH_KUBECONFIG=_kubeconfig(tmp_path / "kubeconfig", server.port),
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), TMPDIR=str(tmp_path), ANSIBLE_NOCOLOR="1")
    started = time.monotonic()
    ran = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), str(tmp_path / "play.yml"),
         "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=%s" % sys.executable],
        capture_output=True, text=True, cwd=str(ROOT), env=env, timeout=120, check=False)
    elapsed = time.monotonic() - started
    out = ran.stdout + ran.stderr
    assert ran.returncode == 2, out
    url = "https://127.0.0.1:%d" % server.port
    assert out.count("The Kubernetes API server %s could not be reached: no answer in time" % url) >= 2, out
    assert "run_lock: the Lease neurallog-system/neurallog-lock could not be read or written" in out, out
    assert elapsed < 60, elapsed
