# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stand-in of the NeuralLog services (hack/images/standin) on one
internal docker network with the three data services run as the rendered
pods: given the URLs of the credentials Secrets the data roles write (and
the Elasticsearch CA, mounted where core_services mounts it), /health answers
503 naming what is missing until PostgreSQL, Redis and Elasticsearch all
accept its credentials, then 200; a wrong password keeps it at 503."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time
from urllib.parse import quote, urlsplit, urlunsplit

from test_elasticsearch_image import start_elasticsearch

CA_PATH = "/etc/neurallog/elasticsearch/ca.crt"
HEALTH = ("import sys, urllib.request, urllib.error\n"
          "try:\n"
          "    r = urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=5); print(r.status); print(r.read().decode())\n"
          "except urllib.error.HTTPError as e:\n"
          "    print(e.code); print(e.read().decode())\n")


def _host(url):
    return urlsplit(url).hostname


def _health(standin):
    result = standin.exec("python3", "-c", HEALTH, check=False)
    if result.returncode != 0 or "\n" not in result.stdout.strip():
        return None, {}
    status, body = result.stdout.strip().split("\n", 1)
    return int(status), json.loads(body)


def _wait_health(standin, accept, timeout, what):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = _health(standin)
        if last[0] is not None and accept(*last):
            return last
        time.sleep(2)
    raise AssertionError("stand-in not %s after %ss; last /health: %r\n%s" % (what, timeout, last, standin.logs()[-3000:]))


def _start_standin(launcher, workdir, environment, name):
    """The stand-in as core_services runs it: uid 10001, read-only, no
    capabilities; the URLs from an env file (no password in an argument)."""
    env_file = os.path.join(workdir, name + ".env")
    with open(env_file, "w") as handle:
        for key, value in sorted(environment.items()):
            handle.write("%s=%s\n" % (key, value))
    os.chmod(env_file, 0o600)
    ca_file = os.path.join(workdir, name + "-ca.crt")
    with open(ca_file, "w") as handle:
        handle.write(launcher.rendered.secret("elasticsearch-credentials")["ca.crt"])
    os.chmod(ca_file, 0o644)
    return launcher.run_image("action-service", name, extra=[
        "--env-file", env_file, "-e", "ELASTICSEARCH_CA_CERT=" + CA_PATH, "-e", "STANDIN_CHECK_INTERVAL=2",
        "-v", "%s:%s:ro" % (ca_file, CA_PATH), "--user", "10001:10001", "--read-only", "--tmpfs", "/tmp",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges"])


def test_healthy_only_when_all_three_accept_it(launcher, rendered, workdir):
    urls = {"DATABASE_URL": rendered.secret("database-credentials")["url"],
            "REDIS_URL": rendered.secret("redis-credentials")["url"],
            "ELASTICSEARCH_URL": rendered.secret("elasticsearch-credentials")["url"]}
    standin = _start_standin(launcher, workdir, urls, "standin")
    status, body = _wait_health(standin, lambda s, b: all(c["detail"] != "not checked yet" for c in b["checks"].values()),
                                60, "checked")
    assert status == 503 and body["status"] == "unavailable"
    assert sorted(body["checks"]) == ["elasticsearch", "postgresql", "redis"]
    assert not any(check["ok"] for check in body["checks"].values()), body
    passwords = [urlsplit(url).password for url in urls.values()]
    assert not any(p and p in json.dumps(body) for p in passwords)

    redis = launcher.start("redis", aliases=[_host(urls["REDIS_URL"])])
    postgres = launcher.start("postgresql", aliases=[_host(urls["DATABASE_URL"])])
    redis.wait_ready(120)
    postgres.wait_ready(300)
    status, body = _wait_health(standin, lambda s, b: b["checks"]["redis"]["ok"] and b["checks"]["postgresql"]["ok"],
                                60, "connected to Redis and PostgreSQL")
    assert status == 503 and not body["checks"]["elasticsearch"]["ok"], body

    elasticsearch = start_elasticsearch(launcher, aliases=[_host(urls["ELASTICSEARCH_URL"])])
    elasticsearch.wait_ready(600)
    status, body = _wait_health(standin, lambda s, b: s == 200, 90, "healthy")
    assert body["status"] == "ok"
    assert body["checks"]["postgresql"]["detail"] == "connected as %s" % rendered.secret("database-credentials")["username"]
    assert body["checks"]["elasticsearch"]["detail"] in ("cluster health green", "cluster health yellow")

    # The same, with a wrong Redis password: refused, so never healthy.
    parts = urlsplit(urls["REDIS_URL"])
    netloc = "%s:%s@%s:%d" % (parts.username, quote("not-the-password", safe=""), parts.hostname, parts.port)
    wrong = dict(urls, REDIS_URL=urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")))
    impostor = _start_standin(launcher, workdir, wrong, "standin-wrong")
    status, body = _wait_health(impostor, lambda s, b: b["checks"]["postgresql"]["ok"], 60, "checked")
    assert status == 503 and not body["checks"]["redis"]["ok"], body
    assert "WRONGPASS" in body["checks"]["redis"]["detail"] or "invalid" in body["checks"]["redis"]["detail"], body
    assert body["checks"]["elasticsearch"]["ok"]
