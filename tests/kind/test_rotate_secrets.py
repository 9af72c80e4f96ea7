"""playbooks/rotate_secrets.yml with real containers: the server side of a
rotation (docs/secrets.md, "Rotation").

The platform is converged with site.yml (inventories/kind, namespaces of this
test's own, so nothing another test left in neurallog-* matters) on the kind
cluster. Then, for the services' Redis ACL user, the services' PostgreSQL
role and the services' Elasticsearch user in turn, rotate_secrets.yml runs and:

* the Secrets hold a new password (the data Secret and the core services'
  connection Secret);
* the data service accepts the new password and refuses the old one (Redis:
  on every Redis pod, primary and replicas; PostgreSQL: over TCP, SCRAM;
  Elasticsearch: _security/_authenticate answers 200, and 401 for the old);
* exactly the core services that read it rolled out (their pod templates'
  credentials hash moved) and every core service is Ready again: the stand-in's readiness authenticates to PostgreSQL,
  Redis and Elasticsearch with the URLs of its Secrets, so Ready means the
  new password works.

A last site.yml changes nothing. One converge for the module.

A stage of ``KIND_STAGES=1 make test`` (on the cluster of its ``kind up``
stage); alone, as root on a machine with Docker and the images built
(``hack/images/build.sh all``):
``NEURALLOG_CLUSTER_PREFIX=<you>- .venv/bin/pytest tests/kind/test_rotate_secrets.py``
(``NEURALLOG_KIND_KEEP=1`` keeps the cluster afterwards).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.neurallog.platform.plugins.plugin_utils.cache_dir import cache_dir

ROOT = Path(__file__).resolve().parents[2]
NAME = os.environ.get("NEURALLOG_KIND_CLUSTER") or os.environ.get("NEURALLOG_CLUSTER_PREFIX", "") + "kind-rotate"
CACHE = Path(cache_dir())
KUBECTL = CACHE / "bin" / "kubectl"
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
INVENTORY = ROOT / "inventories" / "kind"
SYSTEM, DATA = "rot-system", "rot-data"
SETTINGS = {"neurallog_namespace_system": SYSTEM, "neurallog_namespace_data": DATA,
            "neurallog_namespace_ingress": "rot-ingress", "neurallog_namespace_monitoring": "rot-monitoring"}


def CLUSTER_IMAGES() -> list[str]:  # noqa: N802 (the name tests/kind/conftest.py looks for)
    """The images inventories/kind deploys (built by hack/images)."""
    out = subprocess.run([sys.executable, str(ROOT / "hack" / "images" / "refs.py"), str(INVENTORY)],
                         capture_output=True, text=True, check=True).stdout
    return sorted(set(line.split()[1] for line in out.splitlines() if line.strip()))


def kubectl(kubeconfig: str, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run([str(KUBECTL), "--kubeconfig", kubeconfig, *args], capture_output=True, text=True,
                          check=False, **kw)
    if check:
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return done


def playbook(kubeconfig: str, name: str, **extra) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               K8S_AUTH_KUBECONFIG=kubeconfig, KUBECONFIG=kubeconfig)
    started = time.monotonic()
    done = subprocess.run([str(PLAYBOOK), "-i", str(INVENTORY), str(ROOT / name),
                           "-e", "ansible_python_interpreter=%s" % sys.executable,
                           "-e", json.dumps(dict(SETTINGS, **extra))],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=2400)
    done.output = done.stdout + done.stderr
    done.seconds = time.monotonic() - started
    return done


def recap(output: str) -> str:
    return [line for line in output.splitlines() if line.startswith("localhost ")][-1]


def secret(kubeconfig: str, namespace: str, name: str) -> dict:
    data = json.loads(kubectl(kubeconfig, "-n", namespace, "get", "secret", name, "-o", "json").stdout)["data"]
    return dict((key, base64.b64decode(value).decode()) for key, value in data.items())


def deployments(kubeconfig: str) -> dict:
    items = json.loads(kubectl(kubeconfig, "-n", SYSTEM, "get", "deployments", "-o", "json").stdout)["items"]
    return dict((d["metadata"]["name"], d) for d in items)


def ready(deployment: dict) -> bool:
    """Rolled out and Ready: the latest spec observed, every replica updated and ready."""
    status, spec = deployment.get("status") or {}, deployment["spec"]
    return (status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
            and status.get("updatedReplicas") == spec["replicas"] == status.get("readyReplicas"))


def not_ready_after(kubeconfig: str, seconds: int) -> dict:
    """The Deployments not ready within ``seconds`` (polled), with their status."""
    deadline = time.monotonic() + seconds
    while True:
        late = dict((n, d.get("status")) for n, d in deployments(kubeconfig).items() if not ready(d))
        if not late or time.monotonic() > deadline:
            return late
        time.sleep(2)


def credentials_hash(deployment: dict) -> str:
    return deployment["spec"]["template"]["metadata"]["annotations"]["neurallog.io/credentials-hash"]


def redis_auth(kubeconfig: str, pod: str, user: str, password: str) -> str:
    """PING as ``user`` inside ``pod`` (the password in the environment)."""
    done = kubectl(kubeconfig, "-n", DATA, "exec", pod, "-c", "redis", "--", "env", "REDISCLI_AUTH=" + password,
                   "redis-cli", "--no-auth-warning", "--user", user, "-h", "127.0.0.1", "-p", "6379", "PING",
                   check=False)
    return (done.stdout + done.stderr).strip()


def postgres_auth(kubeconfig: str, user: str, database: str, password: str) -> subprocess.CompletedProcess:
    """A TCP login (scram-sha-256) inside the PostgreSQL pod."""
    return kubectl(kubeconfig, "-n", DATA, "exec", "postgresql-0", "-c", "postgresql", "--", "env",
                   "PGPASSWORD=" + password, "psql", "-h", "127.0.0.1", "-U", user, "-d", database, "-At", "-c",
                   "SELECT current_user", check=False)


@pytest.fixture(scope="module")
def platform(cluster):
    started = time.monotonic()
    converge = playbook(cluster, "site.yml")
    assert converge.returncode == 0, converge.output[-6000:]
    print("\nsite.yml converge: %.0f s: %s" % (time.monotonic() - started, recap(converge.output)))
    assert all(ready(d) for d in deployments(cluster).values())
    yield cluster


def consumers(found: dict, env: str) -> list[str]:
    """The core services whose container reads ``env`` (REDIS_URL, DATABASE_URL)."""
    return sorted(name for name, d in found.items()
                  if any(e["name"] == env for e in d["spec"]["template"]["spec"]["containers"][0].get("env") or []))


def rotate(kubeconfig: str, name: str, env: str):
    before = deployments(kubeconfig)
    done = playbook(kubeconfig, "playbooks/rotate_secrets.yml", rotate_secret=name)
    assert done.returncode == 0, done.output[-6000:]
    print("rotate_secret=%s: %.0f s: %s" % (name, done.seconds, recap(done.output)))
    after = deployments(kubeconfig)
    # exactly the consumers rolled out, and every core service is Ready: its
    # readiness authenticates with the URLs of its Secrets
    assert sorted(after) == sorted(before)
    moved = sorted(n for n in after if credentials_hash(after[n]) != credentials_hash(before[n]))
    assert moved == consumers(before, env) and moved, (moved, consumers(before, env))
    print("rolled out: %s" % ", ".join(moved))
    # the run waited for the rollout; the status may lag a little behind
    late = not_ready_after(kubeconfig, 120)
    assert late == {}, late
    print("core services Ready: %s" % ", ".join(sorted(after)))
    return done


def test_rotate_redis_new_password_accepted_old_refused(platform):
    old = secret(platform, DATA, "redis")
    user = secret(platform, SYSTEM, "redis-credentials")["username"]
    pods = sorted(p for p in kubectl(platform, "-n", DATA, "get", "pods", "-l", "app.kubernetes.io/name=redis",
                                     "-o", "name").stdout.split())
    pods = [p.split("/", 1)[1] for p in pods]
    assert len(pods) == 3
    assert [redis_auth(platform, pod, user, old["password"]) for pod in pods] == ["PONG"] * 3

    done = rotate(platform, "redis", "REDIS_URL")
    new = secret(platform, DATA, "redis")
    assert new["password"] != old["password"]
    assert dict((k, v) for k, v in new.items() if k not in ("password", "auth.conf")) == \
        dict((k, v) for k, v in old.items() if k not in ("password", "auth.conf"))
    connection = secret(platform, SYSTEM, "redis-credentials")
    assert connection["password"] == new["password"] and new["password"] in connection["url"]
    assert old["password"] not in done.output and new["password"] not in done.output
    # every Redis pod, primary and replicas: the new password, never the old
    answers = dict((pod, (redis_auth(platform, pod, user, new["password"]),
                          redis_auth(platform, pod, user, old["password"]))) for pod in pods)
    print("redis %s: new password -> %s" % (user, ", ".join("%s %s" % (p, a[0]) for p, a in answers.items())))
    print("redis %s: old password -> %s" % (user, ", ".join("%s %s" % (p, a[1]) for p, a in answers.items())))
    for pod, (with_new, with_old) in answers.items():
        assert with_new == "PONG", (pod, with_new)
        assert re.search(r"WRONGPASS", with_old), (pod, with_old)
    # the Redis pods were not restarted: the change was made at runtime
    restarts = json.loads(kubectl(platform, "-n", DATA, "get", "pods", "-l", "app.kubernetes.io/name=redis",
                                  "-o", "json").stdout)["items"]
    assert all(sum(c.get("restartCount", 0) for c in p["status"]["containerStatuses"]) == 0 for p in restarts)


def test_rotate_postgresql_new_password_accepted_old_refused(platform):
    old = secret(platform, SYSTEM, "database-credentials")
    user, database = old["username"], old["database"]
    assert postgres_auth(platform, user, database, old["password"]).stdout.strip() == user

    done = rotate(platform, "postgresql", "DATABASE_URL")
    new = secret(platform, SYSTEM, "database-credentials")
    assert new["password"] != old["password"] and new["password"] in new["url"]
    assert secret(platform, DATA, "postgresql")["password"] == new["password"]
    assert old["password"] not in done.output and new["password"] not in done.output
    with_new = postgres_auth(platform, user, database, new["password"])
    with_old = postgres_auth(platform, user, database, old["password"])
    print("postgresql %s: new password -> rc %d %s" % (user, with_new.returncode, with_new.stdout.strip()))
    print("postgresql %s: old password -> rc %d %s" % (user, with_old.returncode, with_old.stderr.strip()))
    assert with_new.returncode == 0 and with_new.stdout.strip() == user
    assert with_old.returncode != 0 and "password authentication failed" in with_old.stderr


def elasticsearch_auth(kubeconfig: str, user: str, password: str) -> str:
    """The HTTP status of _security/_authenticate as ``user``, inside
    elasticsearch-0 (the password reaches curl through its standard input)."""
    done = kubectl(kubeconfig, "-n", DATA, "exec", "elasticsearch-0", "-c", "elasticsearch", "--", "env",
                   "P=" + password, "U=" + user, "sh", "-c",
                   'printf "user = \\"%s:%s\\"\\n" "$U" "$P" | curl -K - -s -o /dev/null -w "%{http_code}" '
                   '--cacert /usr/share/elasticsearch/config/http-certs/ca.crt '
                   'https://127.0.0.1:9200/_security/_authenticate', check=False)
    return done.stdout.strip() or done.stderr.strip()


HEALTH = """import json, urllib.error, urllib.request
try:
    answer = urllib.request.urlopen("http://127.0.0.1:8080/health", timeout=10)
except urllib.error.HTTPError as error:
    answer = error
print(answer.read().decode())
"""


def health(kubeconfig: str, service: str) -> dict:
    """A core service's /health, asked inside one of its pods (no NetworkPolicy in the way)."""
    done = kubectl(kubeconfig, "-n", SYSTEM, "exec", "deploy/" + service, "--", "python3", "-c", HEALTH, check=False)
    return json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr.strip()}


def test_rotate_elasticsearch_new_password_accepted_old_refused(platform):
    old = secret(platform, SYSTEM, "elasticsearch-credentials")
    user = old["username"]
    elastic = secret(platform, DATA, "elasticsearch")["password"]
    assert user == "neurallog" and old["password"] != elastic and old["url"].startswith("https://neurallog:")
    assert elasticsearch_auth(platform, user, old["password"]) == "200"

    done = rotate(platform, "elasticsearch", "ELASTICSEARCH_URL")
    new = secret(platform, SYSTEM, "elasticsearch-credentials")
    assert new["password"] != old["password"] and new["password"] in new["url"]
    data = secret(platform, DATA, "elasticsearch")
    assert data["services-password"] == new["password"] and data["password"] == elastic   # `elastic` unchanged
    assert old["password"] not in done.output and new["password"] not in done.output
    with_new, with_old = elasticsearch_auth(platform, user, new["password"]), elasticsearch_auth(platform, user, old["password"])
    print("elasticsearch %s: new password -> HTTP %s, old password -> HTTP %s" % (user, with_new, with_old))
    assert with_new == "200" and with_old == "401"
    assert elasticsearch_auth(platform, "elastic", elastic) == "200"
    # the consumers report Elasticsearch healthy with the new password
    reports = dict((name, health(platform, name)) for name in consumers(deployments(platform), "ELASTICSEARCH_URL"))
    for name, report in reports.items():
        print("%s /health: %s" % (name, json.dumps(report.get("checks", report).get("elasticsearch"))))
        assert report.get("status") == "ok" and report["checks"]["elasticsearch"]["ok"], (name, report)


def test_site_yml_after_the_rotations_changes_nothing(platform):
    again = playbook(platform, "site.yml")
    assert again.returncode == 0, again.output[-4000:]
    print("site.yml after the rotations: %.0f s: %s" % (again.seconds, recap(again.output)))
    assert re.search(r"changed=0\s+unreachable=0\s+failed=0", recap(again.output)), recap(again.output)
