# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The initialisation SQL the postgresql role renders, run against a real
PostgreSQL (Debian package) on 127.0.0.1 as an unprivileged user, the way the
postgres image's entrypoint runs it; then the core services' URL and the
readiness command are used against that server."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import pwd
import subprocess

import psycopg
import pytest

from server_helpers import find_binary, free_port

PG_PATTERNS = "/usr/lib/postgresql/*/bin/%s"


def _chown_tree(path, uid, gid):
    for root, dirs, files in os.walk(path):
        for name in [root] + [os.path.join(root, n) for n in dirs + files]:
            os.chown(name, uid, gid)


class PostgresServer(object):
    def __init__(self, base, superuser_password):
        self.bin = dict(
            (name, find_binary(name, [PG_PATTERNS % name]))
            for name in ("initdb", "pg_ctl", "psql", "pg_isready")
        )
        # PostgreSQL refuses to run as root: use an unprivileged account.
        self.user = None
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            self.user = (nobody.pw_uid, nobody.pw_gid)
        self.port = free_port()
        self.data = os.path.join(base, "data")
        self.socket_dir = os.path.join(base, "run")
        os.makedirs(self.socket_dir)
        pwfile = os.path.join(base, "pwfile")
        with open(pwfile, "w") as handle:
            handle.write(superuser_password + "\n")
        if self.user:
            _chown_tree(base, *self.user)
        self.run([self.bin["initdb"], "-D", self.data, "-U", "postgres", "--pwfile", pwfile,
                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8"])
        self.run([self.bin["pg_ctl"], "-D", self.data, "-l", os.path.join(base, "server.log"), "-w", "-t", "60",
                  "-o", "-c listen_addresses=127.0.0.1 -p %d -k %s" % (self.port, self.socket_dir), "start"])

    def run(self, command, env=None, check=True):
        kwargs = {}
        if self.user:
            kwargs = {"user": self.user[0], "group": self.user[1], "extra_groups": []}
        result = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                universal_newlines=True, timeout=120, check=False, **kwargs)
        if check:
            assert result.returncode == 0, "%s failed:\n%s" % (command[0], result.stdout)
        return result

    def entrypoint_psql(self, sql_file, env):
        """What docker-entrypoint.sh runs for each *.sql in initdb.d."""
        return self.run(
            [self.bin["psql"], "-v", "ON_ERROR_STOP=1", "--username", "postgres", "--no-password", "--no-psqlrc",
             "--dbname", "postgres", "--host", self.socket_dir, "--port", str(self.port), "-f", sql_file],
            env=env, check=False,
        )

    def stop(self):
        self.run([self.bin["pg_ctl"], "-D", self.data, "-m", "fast", "-w", "stop"], check=False)


@pytest.fixture
def postgres(rendered, server_dir):
    server = PostgresServer(server_dir, rendered.secret("postgresql")["postgres-password"])
    try:
        yield server
    finally:
        server.stop()


def _init_sql(rendered, server_dir):
    container = rendered.container("postgresql")
    mount = [m for m in container["volumeMounts"] if m["name"] == "init"][0]
    assert mount["mountPath"] == "/docker-entrypoint-initdb.d"
    scripts = rendered.get("ConfigMap", "postgresql-init")["data"]
    assert list(scripts) == ["10-neurallog-init.sql"]
    path = os.path.join(server_dir, "10-neurallog-init.sql")
    with open(path, "w") as handle:
        handle.write(scripts["10-neurallog-init.sql"])
    os.chmod(path, 0o644)
    return path


def _secret_files(rendered, directory):
    """The Secret volume's files, laid out in ``directory``; returns
    (mountPath in the pod, directory)."""
    container = rendered.container("postgresql")
    pod = rendered.get("StatefulSet", "postgresql")["spec"]["template"]["spec"]
    volume = [v for v in pod["volumes"] if v["name"] == "secrets"][0]["secret"]
    mount = [m for m in container["volumeMounts"] if m["name"] == "secrets"][0]["mountPath"]
    secret = rendered.secret(volume["secretName"])
    os.makedirs(directory)
    for item in volume["items"]:
        with open(os.path.join(directory, item["path"]), "w") as handle:
            handle.write(secret[item["key"]])
        os.chmod(os.path.join(directory, item["path"]), 0o440)
    return mount, directory


def _pod_env(rendered, secrets_dir, prefix="NEURALLOG_DB_"):
    """The container's environment (names starting with ``prefix``), paths
    into the Secret volume pointed at ``secrets_dir``. The pod spec holds
    no Secret reference: passwords come from files only."""
    env = {}
    mount, directory = _secret_files(rendered, secrets_dir)
    for item in rendered.container("postgresql")["env"]:
        assert "valueFrom" not in item, "%s comes from a Secret through the environment" % item["name"]
        if item["name"].startswith(prefix):
            env[item["name"]] = item["value"].replace(mount + "/", directory + "/")
    return env


def _connect(rendered, postgres):
    url = rendered.secret("database-credentials")["url"]
    info = psycopg.conninfo.conninfo_to_dict(url)
    assert info["host"] == "postgresql.neurallog-data.svc" and info["port"] == "5432"
    info.update(host="127.0.0.1", port=str(postgres.port))
    return psycopg.connect(**info)


def test_init_sql_creates_the_application_database_and_user(rendered, postgres, server_dir):
    sql = _init_sql(rendered, server_dir)
    env = dict(os.environ, **_pod_env(rendered, os.path.join(server_dir, "secrets")))
    if postgres.user:
        _chown_tree(os.path.join(server_dir, "secrets"), *postgres.user)
    credentials = rendered.secret("database-credentials")
    assert env["NEURALLOG_DB_NAME"] == credentials["database"] == "neurallog"
    assert env["NEURALLOG_DB_USER"] == credentials["username"] == "neurallog"
    assert "NEURALLOG_DB_PASSWORD" not in env
    with open(env["NEURALLOG_DB_PASSWORD_FILE"]) as handle:
        assert handle.read() == credentials["password"]

    first = postgres.entrypoint_psql(sql, env)
    assert first.returncode == 0, first.stdout
    assert credentials["password"] not in first.stdout
    # Idempotent: running it again (e.g. by hand after a restore) is safe.
    again = postgres.entrypoint_psql(sql, env)
    assert again.returncode == 0, again.stdout

    with _connect(rendered, postgres) as conn:
        row = conn.execute(
            "SELECT current_user, current_database(), r.rolsuper, r.rolcreatedb, pg_get_userbyid(d.datdba)"
            " FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND d.datname = current_database()"
        ).fetchone()
        assert row == ("neurallog", "neurallog", False, False, "neurallog")
        conn.execute("CREATE TABLE tenants (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO tenants VALUES (1, 'acme')")
        assert conn.execute("SELECT name FROM tenants").fetchone() == ("acme",)

    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=postgres.port, user="neurallog", password="wrong", dbname="neurallog")


def test_readiness_command_answers_against_the_server(rendered, postgres):
    probe = rendered.container("postgresql")["readinessProbe"]["exec"]["command"]
    assert probe[0] == "pg_isready" and "--host=127.0.0.1" in probe
    command = [postgres.bin["pg_isready"]] + [
        "--port=%d" % postgres.port if arg.startswith("--port=") else arg for arg in probe[1:]
    ]
    assert postgres.run(command, check=False).returncode == 0
    postgres.stop()
    assert postgres.run(command, check=False).returncode != 0


def test_init_sql_refuses_to_run_without_its_environment(rendered, postgres, server_dir):
    sql = _init_sql(rendered, server_dir)
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("NEURALLOG_DB_"))
    result = postgres.entrypoint_psql(sql, env)
    assert result.returncode != 0
    assert "must be set" in result.stdout
    short = dict(env, NEURALLOG_DB_NAME="neurallog", NEURALLOG_DB_USER="neurallog", NEURALLOG_DB_PASSWORD="short")
    result = postgres.entrypoint_psql(sql, short)
    assert result.returncode != 0
    roles = postgres.run(
        [postgres.bin["psql"], "-tA", "-U", "postgres", "-h", postgres.socket_dir, "-p", str(postgres.port),
         "-d", "postgres", "-c", "SELECT count(*) FROM pg_roles WHERE rolname = 'neurallog'"]
    )
    assert roles.stdout.strip() == "0"


def test_rotation_verifier_sets_the_new_password(rendered, postgres, server_dir):
    """What rotate_secrets.yml runs in the PostgreSQL pod
    (roles/rotate_secrets/tasks/server_postgresql.yml): ALTER ROLE with the
    SCRAM-SHA-256 verifier of the new password (the password itself is on
    no command line): the new password logs in, the old one is refused."""
    from ansible_collections.neurallog.platform.plugins.module_utils.secrets_backend import scram_sha256_verifier
    sql = _init_sql(rendered, server_dir)
    env = dict(os.environ, **_pod_env(rendered, os.path.join(server_dir, "secrets")))
    if postgres.user:
        _chown_tree(os.path.join(server_dir, "secrets"), *postgres.user)
    assert postgres.entrypoint_psql(sql, env).returncode == 0
    old = rendered.secret("database-credentials")["password"]
    new = "N" * 8 + "ewPassw0rdNewPassw0rd"
    verifier = scram_sha256_verifier(new)
    assert verifier.startswith("SCRAM-SHA-256$4096:") and new not in verifier
    with _connect(rendered, postgres) as conn:
        conn.execute("ALTER ROLE neurallog PASSWORD '%s'" % verifier)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=postgres.port, user="neurallog", password=old, dbname="neurallog")
    with psycopg.connect(host="127.0.0.1", port=postgres.port, user="neurallog", password=new, dbname="neurallog") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("neurallog",)
