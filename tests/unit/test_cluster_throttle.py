# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A read answered 429 Too Many Requests (API priority and fairness, or a
CRD's list right after it became Established) is tried again after its
Retry-After; writes are not, and a server that keeps answering 429 still
fails, with the status in the message. The "server" is an HTTP server of
the test's own on 127.0.0.1."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import http.server
import json
import threading

import pytest
import yaml

from ansible_collections.neurallog.platform.plugins.plugin_utils.cluster import Cluster, ClusterError


class Throttling(http.server.ThreadingHTTPServer):
    def __init__(self, busy):
        self.busy = busy          # how many requests get 429 first
        self.seen = []
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(http.server.BaseHTTPRequestHandler):
    def _answer(self):
        server = self.server
        server.seen.append(self.command)
        if len(server.seen) <= server.busy:
            body, status = b'{"kind":"Status","message":"too many requests, please try again later"}', 429
        else:
            body, status = json.dumps({"kind": "ConfigMapList", "items": []}).encode(), 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if status == 429:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture()
def server_factory():
    servers = []

    def make(busy):
        server = Throttling(busy)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server
    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def cluster(tmp_path, server, timeout=20.0):
    url = "http://127.0.0.1:%d" % server.server_address[1]
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": url}}],
        "users": [{"name": "t", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return Cluster(kubeconfig=str(path), timeout=timeout)


def test_a_read_answered_429_is_tried_again(tmp_path, server_factory):
    server = server_factory(busy=2)
    assert cluster(tmp_path, server).request("GET", "/api/v1/configmaps") == {"kind": "ConfigMapList", "items": []}
    assert server.seen == ["GET", "GET", "GET"]


def test_a_write_answered_429_is_not_repeated(tmp_path, server_factory):
    server = server_factory(busy=1)
    with pytest.raises(ClusterError, match="HTTP 429 too many requests"):
        cluster(tmp_path, server).request("POST", "/api/v1/namespaces/x/configmaps", body="{}")
    assert server.seen == ["POST"]


def test_a_server_that_stays_busy_fails_within_the_read_timeout(tmp_path, server_factory):
    server = server_factory(busy=100)
    with pytest.raises(ClusterError, match="HTTP 429"):
        cluster(tmp_path, server, timeout=2.5).request("GET", "/api/v1/configmaps")
    assert 2 <= len(server.seen) <= 4, server.seen
