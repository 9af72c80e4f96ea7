# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A tenant's Redis as the tenant module builds it, run by a real
redis-server on 127.0.0.1: redis.conf from the ConfigMap includes auth.conf
from the Secret, the container's arguments are passed unchanged (no password
among them), and the URL of redis-credentials connects as an ACL user that
may not administer the server."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import os
import subprocess

import pytest
import redis

from ansible_collections.neurallog.platform.plugins.module_utils import tenant as t
from server_helpers import find_binary, free_port, wait_for_port

ACME = {"id": "acme", "name": "Acme", "tier": "standard"}


def _object(resources, kind):
    return [o for o in resources if o["kind"] == kind][0]


@pytest.fixture
def tenant_redis(server_dir):
    built = t.build_resources([ACME], {"redis_image": "docker.io/library/redis:7.0.15-alpine"}, passwords={})
    resources = built["resources"]
    config_map, secret = _object(resources, "ConfigMap"), _object(resources, "Secret")
    pod = _object(resources, "StatefulSet")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    mounts = dict((m["name"], m["mountPath"]) for m in container["volumeMounts"])
    volumes = dict((v["name"], v) for v in pod["volumes"])

    # Lay the volumes out under server_dir, at the pod's paths.
    def root(path):
        return os.path.join(server_dir, path.lstrip("/"))

    for name, path in mounts.items():
        os.makedirs(root(path))
        volume = volumes.get(name, {})
        if "configMap" in volume:
            for key, text in config_map["data"].items():
                with open(os.path.join(root(path), key), "w") as handle:
                    handle.write(text.replace(" /etc/redis/", " %s/" % root("/etc/redis")))
        elif "secret" in volume:
            for item in volume["secret"]["items"]:
                with open(os.path.join(root(path), item["path"]), "w") as handle:
                    handle.write(base64.b64decode(secret["data"][item["key"]]).decode("utf-8"))
    assert "env" not in container
    # What the image's entrypoint runs: redis-server with the container's
    # arguments (first one a .conf file); working directory /data.
    args = [root(container["args"][0])] + container["args"][1:]
    port = free_port()
    log = open(os.path.join(server_dir, "redis.log"), "w")
    process = subprocess.Popen(
        [find_binary("redis-server", ["/usr/bin/redis-server"])] + args + ["--bind", "127.0.0.1", "--port", str(port)],
        cwd=root(mounts["redis-data"]), stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process)
        values = dict((k, base64.b64decode(v).decode("utf-8")) for k, v in secret["data"].items())
        yield {"port": port, "secret": values, "args": args, "pid": process.pid, "data": root(mounts["redis-data"])}
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def test_tenant_redis_config_from_the_secret_works(tenant_redis):
    secret = tenant_redis["secret"]
    with open("/proc/%d/cmdline" % tenant_redis["pid"], "rb") as handle:
        command_line = handle.read().decode("utf-8")
    assert secret["password"] not in command_line
    url = redis.Redis.from_url(secret["url"]).connection_pool.connection_kwargs
    client = redis.Redis(host="127.0.0.1", port=tenant_redis["port"], username=url["username"],
                         password=url["password"])
    assert client.acl_whoami() in ("neurallog", b"neurallog")
    client.set("logs:1", "x")
    assert client.get("logs:1") == b"x"
    # appendonly from the ConfigMap's redis.conf, written under /data.
    assert os.path.isdir(os.path.join(tenant_redis["data"], "appendonlydir"))
    for command in (("CONFIG", "GET", "maxmemory"), ("FLUSHALL",), ("ACL", "LIST"), ("KEYS", "*"),
                    ("SHUTDOWN", "NOSAVE"), ("REPLICAOF", "127.0.0.1", "1")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.execute_command(*command)
    anonymous = redis.Redis(host="127.0.0.1", port=tenant_redis["port"])
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=tenant_redis["port"], password=secret["password"]).ping()
