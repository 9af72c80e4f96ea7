# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the service stand-in (no container, no data service):

    .venv/bin/pytest hack/images/standin

The checks themselves run against real servers in tests/images."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import standin  # noqa: E402  pylint: disable=wrong-import-position


PASSWORD = "s3cr:et/p@ss word"
ENCODED = "s3cr%3Aet%2Fp%40ss%20word"


def test_dependencies_only_those_given():
    environ = {"REDIS_URL": "redis://u:p@redis:6379/0", "DATABASE_URL": " ",
               "ELASTICSEARCH_URL": "https://elastic:p@es:9200", "ELASTICSEARCH_CA_CERT": "/ca.crt"}
    assert standin.dependencies_from(environ) == [
        ("redis", "redis://u:p@redis:6379/0", ""),
        ("elasticsearch", "https://elastic:p@es:9200", "/ca.crt"),
    ]


def test_nothing_to_check_is_healthy():
    assert standin.Health([]).report()[0] == 200


def test_unhealthy_until_every_check_passes():
    state = {"postgresql": False, "redis": True}

    def check(name):
        def run(url, ca_file, timeout):
            if not state[name]:
                raise ConnectionRefusedError("connection refused")
            return "fine"
        return run

    health = standin.Health([("postgresql", "postgresql://u:p@db/x", ""), ("redis", "redis://u:p@r/0", "")],
                            checks={"postgresql": check("postgresql"), "redis": check("redis")})
    status, body = health.report()
    assert status == 503 and body["checks"]["redis"]["detail"] == "not checked yet"
    health.run_once()
    status, body = health.report()
    assert status == 503
    assert body["checks"]["postgresql"] == {"ok": False, "detail": "ConnectionRefusedError: connection refused"}
    assert body["checks"]["redis"] == {"ok": True, "detail": "fine"}
    state["postgresql"] = True
    health.run_once()
    assert health.report() == (200, {"status": "ok", "checks": {"postgresql": {"ok": True, "detail": "fine"},
                                                                "redis": {"ok": True, "detail": "fine"}}})
    state["redis"] = False
    health.run_once()
    assert health.report()[0] == 503


def test_reasons_never_show_the_password():
    url = "postgresql://app:%s@db:5432/x" % ENCODED

    def leaky(url_given, ca_file, timeout):
        raise RuntimeError("could not use %s (%s)" % (url_given, PASSWORD))

    health = standin.Health([("postgresql", url, "")], checks={"postgresql": leaky})
    health.run_once()
    detail = json.dumps(health.report()[1])
    assert PASSWORD not in detail and ENCODED not in detail
    assert "***" in detail


class _FakeElasticsearch(BaseHTTPRequestHandler):
    status = "green"

    def do_GET(self):  # pylint: disable=invalid-name
        expected = "Basic " + base64.b64encode(("elastic:" + PASSWORD).encode()).decode()
        if self.path != "/_cluster/health":
            self.send_response(404)
            self.end_headers()
        elif self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.end_headers()
        else:
            data = json.dumps({"status": self.status}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass


@pytest.fixture(name="fake_es")
def fixture_fake_es():
    server = HTTPServer(("127.0.0.1", 0), _FakeElasticsearch)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_elasticsearch_basic_auth_from_the_url(fake_es):
    assert standin.check_elasticsearch("http://elastic:%s@%s" % (ENCODED, fake_es), "", 5) == "cluster health green"
    with pytest.raises(urllib.error.HTTPError) as refused:
        standin.check_elasticsearch("http://elastic:wrong@%s/" % fake_es, "", 5)
    assert refused.value.code == 401


def test_elasticsearch_red_is_a_failure(fake_es, monkeypatch):
    monkeypatch.setattr(_FakeElasticsearch, "status", "red")
    with pytest.raises(standin.CheckFailed, match="red"):
        standin.check_elasticsearch("http://elastic:%s@%s" % (ENCODED, fake_es), "", 5)


def test_elasticsearch_https_uses_the_ca_file(tmp_path):
    request, context = standin.elasticsearch_request("https://elastic:x@es.example:9200", "")
    assert request.full_url == "https://es.example:9200/_cluster/health"
    assert "elastic:x" not in request.full_url
    assert context.verify_mode.name == "CERT_REQUIRED" and context.check_hostname
    with pytest.raises(FileNotFoundError):
        standin.elasticsearch_request("https://elastic:x@es.example:9200", str(tmp_path / "missing.crt"))


def _get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_server_answers_503_then_200(fake_es):
    stop = threading.Event()
    started = threading.Event()
    ports = []

    def ready(server):
        ports.append(server.server_address[1])
        started.set()

    environ = {"LISTEN_ADDRESS": "127.0.0.1", "PORT": "0", "STANDIN_CHECK_INTERVAL": "0.2",
               "ELASTICSEARCH_URL": "http://elastic:wrong@%s" % fake_es}
    thread = threading.Thread(target=standin.serve, args=(environ, ready, stop), daemon=True)
    thread.start()
    try:
        assert started.wait(10)
        port = ports[0]
        status, body = _get(port, "/health")
        assert status == 503, body
        assert "wrong" not in body
        assert _get(port, "/metrics")[1].count("neurallog_standin_healthy 0") == 1
        assert _get(port, "/nothing")[0] == 404
    finally:
        stop.set()
        thread.join(10)

    stop = threading.Event()
    started.clear()
    ports.clear()
    environ["ELASTICSEARCH_URL"] = "http://elastic:%s@%s" % (ENCODED, fake_es)
    thread = threading.Thread(target=standin.serve, args=(environ, ready, stop), daemon=True)
    thread.start()
    try:
        assert started.wait(10)
        deadline = time.time() + 10
        while time.time() < deadline:
            status, body = _get(ports[0], "/health")
            if status == 200:
                break
            stop.wait(0.1)
        assert status == 200, body
        assert json.loads(body)["checks"]["elasticsearch"]["detail"] == "cluster health green"
    finally:
        stop.set()
        thread.join(10)
