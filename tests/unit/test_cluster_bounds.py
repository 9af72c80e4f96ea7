# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every cluster call of a run is bounded: site.yml against an API server
that accepts connections and never answers, and against a closed port,
fails within 30 s with a message naming the server's URL and the cause.

No cluster is needed: the "server" is a socket on 127.0.0.1 written into
a kubeconfig of the test's own."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ansible_collections.neurallog.platform.plugins.plugin_utils.cluster import Cluster, ClusterError

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BOUND = 30.0


@pytest.fixture()
def closed_port():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def kubeconfig(tmp_path, url):
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "bounds",
        "clusters": [{"name": "bounds", "cluster": {"server": url, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "bounds", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "bounds", "context": {"cluster": "bounds", "user": "bounds"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def site(tmp_path, url):
    """Run site.yml against ``url``; (seconds, return code, output)."""
    path = kubeconfig(tmp_path, url)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               K8S_AUTH_KUBECONFIG=str(path), KUBECONFIG=str(path), ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    cmd = [str(BIN / "ansible-playbook"), "site.yml", "-i", "inventories/local",
           "-e", "ansible_python_interpreter=%s" % sys.executable, "-e", "neurallog_kubeconfig=%s" % path]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    return time.monotonic() - start, proc.returncode, proc.stdout + proc.stderr


def test_site_against_a_silent_server_fails_in_time(tmp_path, silent_server):
    url = "https://127.0.0.1:%d" % silent_server.port
    seconds, returncode, output = site(tmp_path, url)
    assert returncode != 0, output
    assert silent_server.accepted, "the run never connected to the silent server"
    assert seconds <= BOUND, "site.yml took %.1f s against a server that never answers:\n%s" % (seconds, output[-3000:])
    assert url in output, output[-3000:]
    assert "timed out" in output.lower(), output[-3000:]


def test_site_against_a_closed_port_fails_in_time(tmp_path, closed_port):
    url = "https://127.0.0.1:%d" % closed_port
    seconds, returncode, output = site(tmp_path, url)
    assert returncode != 0, output
    assert seconds <= BOUND, "site.yml took %.1f s against a closed port:\n%s" % (seconds, output[-3000:])
    assert url in output, output[-3000:]
    assert "connection refused" in output.lower(), output[-3000:]


@pytest.mark.parametrize("method", ["GET", "PATCH"])
def test_one_request_is_bounded_by_the_timeout(tmp_path, silent_server, method):
    """One request, whatever its method, takes about the timeout it is given,
    not the timeout times urllib3's retries."""
    from kubernetes import config as kube_config
    from kubernetes import client as kube_client
    configuration = kube_client.Configuration()
    kube_config.load_kube_config(config_file=str(kubeconfig(tmp_path, "https://127.0.0.1:%d" % silent_server.port)),
                                 client_configuration=configuration, persist_config=False)
    cluster = Cluster(client=kube_client.ApiClient(configuration), timeout=3)
    start = time.monotonic()
    with pytest.raises(ClusterError) as raised:
        cluster.request(method, "/api/v1/namespaces", body={} if method == "PATCH" else None)
    seconds = time.monotonic() - start
    assert seconds < 3 * 2, "one %s took %.1f s with a timeout of 3 s" % (method, seconds)
    assert "https://127.0.0.1:%d" % silent_server.port in str(raised.value)
    assert "timed out" in str(raised.value).lower()
