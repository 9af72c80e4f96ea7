# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PostgreSQL image (hack/images/postgres) as the postgresql role's pod
runs it: initialised from POSTGRES_PASSWORD_FILE and the role's
/docker-entrypoint-initdb.d script, the application user accepted with its
password over TCP, and a new container on the same data volume starts the
existing database without initialising it again."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

INIT_MARKER = "PostgreSQL init process complete"
SKIPPED = "PostgreSQL Database directory appears to contain a database; Skipping initialization"

# A second initdb.d script (the role ships one): counts how often
# initialisation ran, in the application database.
COUNT_SQL = """\\getenv app_database NEURALLOG_DB_NAME
\\connect :"app_database"
CREATE TABLE IF NOT EXISTS init_runs (at timestamptz NOT NULL DEFAULT now());
INSERT INTO init_runs DEFAULT VALUES;
"""


def _psql(container, user, password, database, sql, check=True):
    """psql over TCP (127.0.0.1); the password goes through standard input
    into PGPASSWORD, so it is in no argument list."""
    return container.exec("bash", "-c", 'read -r PGPASSWORD; export PGPASSWORD; exec "$@"', "psql",
                          "psql", "--no-psqlrc", "-At", "-h", "127.0.0.1", "-U", user, "-d", database, "-c", sql,
                          env={"PGCONNECT_TIMEOUT": "5"}, stdin=password + "\n", check=check)


def _start(launcher, keep_volumes=None):
    init = dict(launcher.rendered.get("ConfigMap", "postgresql-init")["data"])
    init["20-count-runs.sql"] = COUNT_SQL
    return launcher.start("postgresql", configmaps={"postgresql-init": init}, keep_volumes=keep_volumes)


def test_initialises_once_and_accepts_the_application_user(launcher, rendered):
    credentials = rendered.secret("database-credentials")
    passwords = rendered.secret("postgresql")
    postgres = _start(launcher)
    postgres.wait_ready(300)
    logs = postgres.logs()
    assert INIT_MARKER in logs and "running /docker-entrypoint-initdb.d/10-neurallog-init.sql" in logs, logs
    status = postgres.exec("cat", "/proc/1/status").stdout
    assert [line.split()[1] for line in status.splitlines() if line.startswith("Uid:")] == ["70"]

    # The application user, database and password the role's script made.
    app = _psql(postgres, credentials["username"], credentials["password"], credentials["database"],
                "SELECT current_user || ' ' || current_database()")
    assert app.stdout.strip() == "%s %s" % (credentials["username"], credentials["database"])
    refused = _psql(postgres, credentials["username"], "wrong-password", credentials["database"], "SELECT 1", check=False)
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr
    # The superuser's password came from POSTGRES_PASSWORD_FILE; TCP needs it.
    superuser = _psql(postgres, "postgres", passwords["postgres-password"], "postgres", "SHOW password_encryption")
    assert superuser.stdout.strip() == "scram-sha-256"
    assert _psql(postgres, "postgres", "wrong-password", "postgres", "SELECT 1", check=False).returncode != 0
    assert _psql(postgres, "postgres", passwords["postgres-password"], credentials["database"],
                 "SELECT count(*) FROM init_runs").stdout.strip() == "1"
    _psql(postgres, credentials["username"], credentials["password"], credentials["database"],
          "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before restart')")
    # The role's args (-c name=value) reached the server.
    args = launcher.rendered.container("postgresql").get("args", [])
    if args:
        name, value = args[1].split("=", 1)
        assert _psql(postgres, "postgres", passwords["postgres-password"], "postgres",
                     "SELECT setting FROM pg_settings WHERE name = '%s'" % name).stdout.strip() == value

    # A new container on the same data volume: no second initialisation.
    volumes = {"data": postgres.volumes["data"]}
    launcher.stop(postgres)
    again = _start(launcher, keep_volumes=volumes)
    again.wait_ready(300)
    logs = again.logs()
    assert SKIPPED in logs and INIT_MARKER not in logs, logs
    assert _psql(again, "postgres", passwords["postgres-password"], credentials["database"],
                 "SELECT count(*) FROM init_runs").stdout.strip() == "1"
    assert _psql(again, credentials["username"], credentials["password"], credentials["database"],
                 "SELECT v FROM kept").stdout.strip() == "before restart"


def test_file_and_plain_password_together_are_refused(launcher):
    postgres = launcher.run_image("postgresql", "postgres-both", extra=[
        "-e", "POSTGRES_PASSWORD=one-password-here", "-e", "POSTGRES_PASSWORD_FILE=/etc/hostname"])
    assert postgres.wait_exit(60) != 0
    assert "both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are set" in postgres.logs()


def test_uninitialised_without_password_is_refused(launcher):
    postgres = launcher.run_image("postgresql", "postgres-nopw")
    assert postgres.wait_exit(60) != 0
    assert "set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE" in postgres.logs()
