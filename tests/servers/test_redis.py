# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The redis.conf, auth.conf and start script the redis role renders, run by
a real redis-server on 127.0.0.1: settings take effect, every client must name
its ACL user, the services' user is refused administrative commands, the
replication user replicates and nothing else, the probe user only pings."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
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
        # No Secret in the environment: the passwords come from files only.
        assert all("valueFrom" not in e or "fieldRef" in e["valueFrom"] for e in container["env"])
        env = dict((e["name"], e.get("value")) for e in container["env"])
        mounts = dict((m["name"], m["mountPath"]) for m in container["volumeMounts"])
        conf_dir, self.auth_dir, data_dir = mounts["config"], mounts["auth"], mounts["data"]
        self.root = os.path.join(base, pod_name)
        for sub in ("conf", "auth", "data"):
            os.makedirs(os.path.join(self.root, sub))
        with open(os.path.join(self.root, "conf", "redis.conf"), "w") as handle:
            handle.write(
                config["redis.conf"]
                .replace("include %s/" % self.auth_dir, "include %s/" % os.path.join(self.root, "auth"))
                .replace("\ndir %s\n" % data_dir, "\ndir %s\n" % os.path.join(self.root, "data"))
            )
        # What the test observes with: an extra user, in a file of its own
        # that includes the rendered redis.conf unchanged.
        self.admin_password = "test-admin-" + "x" * 24
        with open(os.path.join(self.root, "conf", "test.conf"), "w") as handle:
            handle.write("include %s\nuser test-admin on >%s ~* &* +@all\n"
                         % (os.path.join(self.root, "conf", "redis.conf"), self.admin_password))
        with open(os.path.join(self.root, "conf", "start.sh"), "w") as handle:
            handle.write(config["start.sh"])
        # The Secret volume holds only the items the pod spec names.
        volume = [v for v in rendered.get("StatefulSet", "redis")["spec"]["template"]["spec"]["volumes"]
                  if v["name"] == "auth"][0]["secret"]
        secret = rendered.secret(volume["secretName"])
        for item in volume["items"]:
            with open(os.path.join(self.root, "auth", item["path"]), "w") as handle:
                handle.write(secret[item["key"]])
        assert container["command"] == ["sh", conf_dir + "/start.sh"]
        self.env = dict(
            os.environ,
            PATH=os.path.dirname(self.redis_server) + os.pathsep + os.environ.get("PATH", ""),
            POD_NAME=pod_name,
            REDIS_CONFIG=os.path.join(self.root, "conf", "test.conf"),
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
        return redis.Redis(host="127.0.0.1", port=self.port, username=kwargs.get("username"),
                           password=kwargs.get("password"), db=kwargs.get("db", 0))

    def admin(self):
        return redis.Redis(host="127.0.0.1", port=self.port, username="test-admin", password=self.admin_password)

    def command_line(self):
        """The server's command line as the process list shows it."""
        pid = self.admin().info("server")["process_id"]
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8")

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
    assert credentials["username"] == "neurallog"
    assert credentials["url"] == "redis://neurallog:%s@redis.neurallog-data.svc:6379/0" % credentials["password"]
    primary = pods("redis-0")
    client = primary.admin()
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
    primary.client(credentials["url"]).set("neurallog:probe", "1")
    # appendonly: Redis 7 keeps the AOF in appendonlydir under `dir`.
    deadline = time.time() + 10
    aof_dir = os.path.join(primary.root, "data", "appendonlydir")
    while time.time() < deadline and not os.path.isdir(aof_dir):
        time.sleep(0.1)
    assert os.path.isdir(aof_dir)


def test_password_is_required(rendered, pods):
    credentials = rendered.secret("redis-credentials")
    primary = pods("redis-0")
    anonymous = redis.Redis(host="127.0.0.1", port=primary.port)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    wrong = redis.Redis(host="127.0.0.1", port=primary.port, password="not-the-password")
    with pytest.raises(redis.exceptions.AuthenticationError):
        wrong.ping()
    # The `default` user is off: the right password without the user name fails too.
    no_user = redis.Redis(host="127.0.0.1", port=primary.port, password=credentials["password"])
    with pytest.raises(redis.exceptions.AuthenticationError):
        no_user.ping()
    other_user = redis.Redis(host="127.0.0.1", port=primary.port, username="replication",
                             password=credentials["password"])
    with pytest.raises(redis.exceptions.AuthenticationError):
        other_user.ping()
    # No password on the command line or in the pod spec.
    for secret_value in rendered.secret("redis").values():
        if "\n" not in secret_value:
            assert secret_value not in primary.command_line()
            assert secret_value not in repr(rendered.get("StatefulSet", "redis"))
            assert secret_value not in repr(rendered.get("ConfigMap", "redis-config"))


# Each (command, arguments) must be refused to the services' user with NOPERM.
REFUSED = [
    ("CONFIG", "GET", "*"), ("CONFIG", "SET", "maxmemory", "1mb"), ("CONFIG", "REWRITE"),
    ("DEBUG", "SLEEP", "0"), ("FLUSHALL",), ("FLUSHDB",), ("ACL", "LIST"), ("ACL", "GETUSER", "neurallog"),
    ("ACL", "SETUSER", "neurallog", "+@all"), ("ACL", "SAVE"), ("SHUTDOWN", "NOSAVE"), ("KEYS", "*"),
    ("MONITOR",), ("REPLICAOF", "NO", "ONE"), ("SLAVEOF", "NO", "ONE"), ("BGSAVE",), ("SAVE",),
    ("BGREWRITEAOF",), ("CLIENT", "LIST"), ("CLIENT", "KILL", "ID", "1"), ("MODULE", "LIST"),
    ("MIGRATE", "127.0.0.1", "1", "k", "0", "100"),
    ("SYNC",), ("PSYNC", "?", "-1"), ("FAILOVER", "ABORT"), ("SLOWLOG", "GET"), ("LATENCY", "RESET"),
]


def test_services_user_reads_and_writes_but_may_not_administer(rendered, pods):
    credentials = rendered.secret("redis-credentials")
    primary = pods("redis-0")
    client = primary.client(credentials["url"])
    assert client.acl_whoami() in ("neurallog", b"neurallog")
    client.set("tenant:1:name", "acme", ex=60)
    assert client.get("tenant:1:name") == b"acme"
    assert client.incr("tenant:1:counter") == 1
    client.rpush("tenant:1:queue", "a", "b")
    assert client.lrange("tenant:1:queue", 0, -1) == [b"a", b"b"]
    assert client.delete("tenant:1:queue") == 1
    assert sorted(client.scan_iter("tenant:1:*")) == [b"tenant:1:counter", b"tenant:1:name"]
    assert client.publish("events", "hello") == 0
    assert client.eval("return redis.call('GET', KEYS[1])", 1, "tenant:1:name") == b"acme"
    assert "redis_version" in client.info("server")
    allowed, admin = [], primary.admin()
    for command in REFUSED:
        # What the ACL says (DEBUG and MODULE are also off server-wide, a
        # check Redis makes before the ACL one) ...
        verdict = admin.execute_command("ACL", "DRYRUN", "neurallog", *command)
        if verdict in ("OK", b"OK"):
            allowed.append(command)
        # ... and what the user really gets.
        try:
            client.execute_command(*command)
            allowed.append(command)
        except redis.exceptions.NoPermissionError as exc:
            assert "no permissions" in str(exc)
        except redis.exceptions.ResponseError as exc:
            assert command[0] in ("DEBUG", "MODULE") and "not allowed" in str(exc), exc
    assert allowed == [], "the services' user may run %s" % allowed
    assert client.get("tenant:1:name") == b"acme"
    assert primary.admin().config_get("maxmemory")["maxmemory"] == str(2 * 1024 ** 3)


def test_replication_and_probe_users_can_do_only_their_job(rendered, pods):
    secret = rendered.secret("redis")
    primary = pods("redis-0")
    primary.client(rendered.secret("redis-credentials")["url"]).set("tenant:7", "kept")
    replication = redis.Redis(host="127.0.0.1", port=primary.port, username="replication",
                              password=secret["replication-password"])
    assert replication.ping() is True
    probe = redis.Redis(host="127.0.0.1", port=primary.port, username="probe", password=secret["probe-password"])
    assert probe.ping() is True
    for client in (replication, probe):
        for command in (("GET", "tenant:7"), ("SET", "tenant:7", "x"), ("CONFIG", "GET", "*"), ("KEYS", "*"),
                        ("FLUSHALL",), ("INFO",)):
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.execute_command(*command)


def test_rendered_probe_command_answers(rendered, pods):
    """The exec probe, run by sh as in the container: it authenticates as
    `probe` with the password read from the mounted file."""
    primary = pods("redis-0")
    container = rendered.container("redis")
    probe = container["readinessProbe"]["exec"]["command"]
    assert probe[:2] == ["sh", "-c"]
    assert container["livenessProbe"]["exec"]["command"] == probe == container["startupProbe"]["exec"]["command"]
    for secret_value in rendered.secret("redis").values():
        assert secret_value not in probe[2]
    script = re.sub(r"-p [0-9]+ ", "-p %d " % primary.port, probe[2]).replace(
        primary.auth_dir, os.path.join(primary.root, "auth"))
    assert subprocess.run(["sh", "-c", script], env=primary.env, check=False).returncode == 0
    with open(os.path.join(primary.root, "auth", "probe-password"), "w") as handle:
        handle.write("not-the-probe-password")
    assert subprocess.run(["sh", "-c", script], env=primary.env, check=False).returncode != 0


def test_pods_other_than_0_replicate_from_the_primary(rendered, pods):
    url = rendered.secret("redis-credentials")["url"]
    assert rendered.get("StatefulSet", "redis")["spec"]["replicas"] == 3
    primary = pods("redis-0")
    replicas = [pods("redis-%d" % i, primary_port=primary.port) for i in (1, 2)]
    writer = primary.client(url)
    writer.set("tenant:42", "kept")
    for replica in replicas:
        client, admin = replica.client(url), replica.admin()
        deadline = time.time() + 30
        while time.time() < deadline:
            info = admin.info("replication")
            if info.get("master_link_status") == "up" and client.get("tenant:42") == b"kept":
                break
            time.sleep(0.2)
        info = admin.info("replication")
        assert info["role"] == "slave"
        assert info["master_port"] == primary.port
        assert info["master_link_status"] == "up"
        assert client.get("tenant:42") == b"kept"
        with pytest.raises(redis.exceptions.ReadOnlyError):
            client.set("tenant:42", "lost")
        # The replica authenticated as the replication user, not the services' user.
        assert admin.config_get("masteruser")["masteruser"] == "replication"
    assert primary.admin().info("replication")["connected_slaves"] == 2


def test_client_service_selects_only_the_primary(rendered):
    selector = rendered.get("Service", "redis")["spec"]["selector"]
    assert selector["statefulset.kubernetes.io/pod-name"] == "redis-0"
    headless = rendered.get("Service", "redis-headless")["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True


def _rotation_hash(password):
    from ansible_collections.neurallog.platform.plugins.module_utils.secrets_backend import redis_password_hash
    return redis_password_hash(password)


def test_rotation_user_adds_and_removes_passwords_and_nothing_else(rendered, pods):
    """What rotate_secrets.yml runs on each Redis pod (roles/rotate_secrets/
    tasks/server_redis.yml): as the `rotation` user, with its password from
    the pod's Secret file, ACL SETUSER adds the new password's hash next to
    the old one (both log in), then removes the old one (refused, the new
    one still logs in). The rotation user may do nothing else."""
    secret = rendered.secret("redis")
    primary = pods("redis-0")
    with open(os.path.join(primary.root, "auth", "admin-password")) as handle:
        assert handle.read() == secret["admin-password"]
    rotation = redis.Redis(host="127.0.0.1", port=primary.port, username="rotation", password=secret["admin-password"])
    old, new = secret["password"], "n" * 16 + "EWpassw0rdEWpassw0rd"

    def logs_in(password):
        try:
            return redis.Redis(host="127.0.0.1", port=primary.port, username="neurallog", password=password).ping()
        except redis.exceptions.AuthenticationError:
            return False
    assert logs_in(old) and not logs_in(new)
    assert rotation.execute_command("ACL", "SETUSER", "neurallog", "#" + _rotation_hash(new)) in (b"OK", "OK")
    assert logs_in(old) and logs_in(new)
    assert rotation.execute_command("ACL", "SETUSER", "neurallog", "!" + _rotation_hash(old)) in (b"OK", "OK")
    assert not logs_in(old) and logs_in(new)
    for command in (("GET", "k"), ("SET", "k", "v"), ("CONFIG", "GET", "*"), ("ACL", "LIST"), ("ACL", "GETUSER", "neurallog"),
                    ("KEYS", "*"), ("FLUSHALL",), ("INFO",)):
        with pytest.raises(redis.exceptions.NoPermissionError):
            rotation.execute_command(*command)
