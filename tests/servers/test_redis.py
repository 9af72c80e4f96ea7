# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The redis.conf, auth.conf and start script the redis role renders, run by
a real redis-server on 127.0.0.1: settings take effect, the password is
required, and a pod other than 0 really replicates from the primary."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import time

import pytest
import redis

from server_helpers import find_binary, free_port, wait_for_port


class RedisPod(object):
    """One Redis 'pod': the rendered files laid out in a folder and the
    rendered start script run with the pod's environment. Only paths, the
    listen address and ports differ from the cluster."""

    def __init__(self, rendered, base, pod_name, primary_port=None):
        self.redis_server = find_binary("redis-server", ["/usr/bin/redis-server"])
        self.port = free_port()
        config = rendered.get("ConfigMap", "redis-config")["data"]
        container = rendered.container("redis")
        env = dict((e["name"], e.get("value")) for e in container["env"])
        mounts = dict((m["name"], m["mountPath"]) for m in container["volumeMounts"])
        conf_dir, auth_dir, data_dir = mounts["config"], mounts["auth"], mounts["data"]
        self.root = os.path.join(base, pod_name)
        for sub in ("conf", "auth", "data"):
            os.makedirs(os.path.join(self.root, sub))
        with open(os.path.join(self.root, "conf", "redis.conf"), "w") as handle:
            handle.write(
                config["redis.conf"]
                .replace("include %s/" % auth_dir, "include %s/" % os.path.join(self.root, "auth"))
                .replace("\ndir %s\n" % data_dir, "\ndir %s\n" % os.path.join(self.root, "data"))
            )
        with open(os.path.join(self.root, "conf", "start.sh"), "w") as handle:
            handle.write(config["start.sh"])
        with open(os.path.join(self.root, "auth", "auth.conf"), "w") as handle:
            handle.write(rendered.secret("redis")["auth.conf"])
        assert container["command"] == ["sh", conf_dir + "/start.sh"]
        self.env = dict(
            os.environ,
            PATH=os.path.dirname(self.redis_server) + os.pathsep + os.environ.get("PATH", ""),
            POD_NAME=pod_name,
            REDIS_CONFIG=os.path.join(self.root, "conf", "redis.conf"),
            REDIS_PRIMARY_HOST="127.0.0.1" if primary_port else env["REDIS_PRIMARY_HOST"],
            REDIS_PRIMARY_PORT=str(primary_port or env["REDIS_PRIMARY_PORT"]),
        )
        self.log = open(os.path.join(self.root, "redis.log"), "w")
        self.process = subprocess.Popen(
            ["sh", os.path.join(self.root, "conf", "start.sh"),
             "--bind", "127.0.0.1", "--port", str(self.port)],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(self.port, self.process)
        except AssertionError as exc:
            self.log.close()
            with open(os.path.join(self.root, "redis.log")) as handle:
                raise AssertionError("%s\n%s" % (exc, handle.read()))

    def client(self, url):
        """A client from the URL the core services get, pointed at this server."""
        conn = redis.Redis.from_url(url)
        kwargs = conn.connection_pool.connection_kwargs
        conn.close()
        return redis.Redis(host="127.0.0.1", port=self.port, password=kwargs.get("password"), db=kwargs.get("db", 0))

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


@pytest.fixture
def pods(rendered, server_dir):
    started = []

    def start(pod_name, primary_port=None):
        pod = RedisPod(rendered, server_dir, pod_name, primary_port)
        started.append(pod)
        return pod

    yield start
    for pod in started:
        pod.stop()


def test_rendered_settings_take_effect(rendered, pods):
    credentials = rendered.secret("redis-credentials")
    assert credentials["url"] == "redis://:%s@redis.neurallog-data.svc:6379/0" % credentials["password"]
    primary = pods("redis-0")
    client = primary.client(credentials["url"])
    settings = dict(
        (_text(k), _text(v)) for name in ("appendonly", "appendfsync", "maxmemory", "maxmemory-policy")
        for k, v in client.config_get(name).items()
    )
    assert settings == {
        "appendonly": "yes",
        "appendfsync": "everysec",
        "maxmemory": str(2 * 1024 ** 3),
        "maxmemory-policy": "allkeys-lru",
    }
    assert client.info("replication")["role"] == "master"
    client.set("neurallog:probe", "1")
    # appendonly: Redis 7 keeps the AOF in appendonlydir under `dir`.
    deadline = time.time() + 10
    aof_dir = os.path.join(primary.root, "data", "appendonlydir")
    while time.time() < deadline and not os.path.isdir(aof_dir):
        time.sleep(0.1)
    assert os.path.isdir(aof_dir)


def test_password_is_required(rendered, pods):
    primary = pods("redis-0")
    anonymous = redis.Redis(host="127.0.0.1", port=primary.port)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    wrong = redis.Redis(host="127.0.0.1", port=primary.port, password="not-the-password")
    with pytest.raises(redis.exceptions.AuthenticationError):
        wrong.ping()


def test_pods_other_than_0_replicate_from_the_primary(rendered, pods):
    url = rendered.secret("redis-credentials")["url"]
    assert rendered.get("StatefulSet", "redis")["spec"]["replicas"] == 3
    primary = pods("redis-0")
    replicas = [pods("redis-%d" % i, primary_port=primary.port) for i in (1, 2)]
    writer = primary.client(url)
    writer.set("tenant:42", "kept")
    for replica in replicas:
        client = replica.client(url)
        deadline = time.time() + 30
        while time.time() < deadline:
            info = client.info("replication")
            if info.get("master_link_status") == "up" and client.get("tenant:42") == b"kept":
                break
            time.sleep(0.2)
        info = client.info("replication")
        assert info["role"] == "slave"
        assert info["master_port"] == primary.port
        assert info["master_link_status"] == "up"
        assert client.get("tenant:42") == b"kept"
        with pytest.raises(redis.exceptions.ReadOnlyError):
            client.set("tenant:42", "lost")
    assert writer.info("replication")["connected_slaves"] == 2


def test_client_service_selects_only_the_primary(rendered):
    selector = rendered.get("Service", "redis")["spec"]["selector"]
    assert selector["statefulset.kubernetes.io/pod-name"] == "redis-0"
    headless = rendered.get("Service", "redis-headless")["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
