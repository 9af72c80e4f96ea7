# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Redis image (hack/images/redis): like the official image when run
bare (user redis, /data), and as the redis role's pod runs it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _uid_of_pid1(container):
    status = container.exec("cat", "/proc/1/status").stdout
    return [line.split()[1] for line in status.splitlines() if line.startswith("Uid:")][0]


def test_bare_image_runs_redis_server_as_redis_in_data(launcher):
    redis = launcher.run_image("redis", "redis-bare", args=["--appendonly", "yes"])
    redis.wait(lambda: redis.exec("redis-cli", "ping", check=False).stdout.strip() == "PONG", 60, "answering PING")
    assert _uid_of_pid1(redis) == "999"
    assert redis.exec("id", "-un", "999").stdout.strip() == "redis"
    assert redis.exec("redis-cli", "config", "get", "dir").stdout.split() == ["dir", "/data"]
    assert redis.exec("redis-cli", "set", "key", "value").stdout.strip() == "OK"
    assert redis.exec("redis-cli", "save").stdout.strip() == "OK"
    owners = redis.exec("stat", "-c", "%U %n", "/data/dump.rdb", "/data/appendonlydir").stdout.split("\n")
    assert [line.split()[0] for line in owners if line] == ["redis", "redis"]


def test_rendered_pod_answers_its_probe_and_the_services_user(launcher, rendered):
    redis = launcher.start("redis")
    redis.wait_ready(120)
    assert _uid_of_pid1(redis) == "999"
    passwords = rendered.secret("redis")
    user = rendered.secret("redis-credentials")["username"]
    # The services' user from the credentials Secret; password on stdin of
    # redis-cli's AUTH, never in its arguments.
    auth = redis.exec("redis-cli", "--user", user, "--askpass", "set", "written", "yes",
                      stdin=passwords["password"] + "\n")
    assert auth.stdout.strip() == "OK", auth.stdout + auth.stderr
    wrong = redis.exec("redis-cli", "--user", user, "--askpass", "ping", stdin="not-the-password\n", check=False)
    assert "WRONGPASS" in wrong.stdout + wrong.stderr
    # The data volume (the claim, fsGroup-owned) holds the append-only file
    # the role turns on, written by redis.
    files = redis.exec("find", "/data/appendonlydir", "-type", "f", "-user", "redis", "-size", "+0").stdout.split()
    assert any(name.endswith(".incr.aof") for name in files), files
