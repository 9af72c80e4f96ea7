# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The start script the elasticsearch role renders passes
cluster.initial_master_nodes only for the first bootstrap: while the
bootstrap list is set and the node's data path is empty. Run with bash and a
stand-in for the image's entrypoint that prints its arguments."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess

import pytest
import yaml

from server_helpers import find_binary


@pytest.fixture
def start(rendered, server_dir):
    bash = find_binary("bash")
    script = os.path.join(server_dir, "start.sh")
    with open(script, "w") as handle:
        handle.write(rendered.get("ConfigMap", "elasticsearch-config")["data"]["start.sh"])
    entrypoint = os.path.join(server_dir, "entrypoint.sh")
    with open(entrypoint, "w") as handle:
        handle.write('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    os.chmod(entrypoint, 0o755)
    data = os.path.join(server_dir, "data")
    os.makedirs(data)
    bootstrap = os.path.join(server_dir, "initial-master-nodes")
    # the services' password (the Secret volume), the config folder, and a
    # stand-in for bin/elasticsearch-users that records what it gets
    services, config = os.path.join(server_dir, "services"), os.path.join(server_dir, "config")
    os.makedirs(services)
    os.makedirs(config)
    secret = rendered.secret("elasticsearch")
    with open(os.path.join(services, "services-password"), "w") as handle:
        handle.write(secret["services-password"])
    users_tool = os.path.join(server_dir, "elasticsearch-users")
    with open(users_tool, "w") as handle:
        handle.write('#!/bin/sh\nprintf "%%s\\n" "$*" > "%s/args"\ncat > "%s/stdin"\n'
                     'echo "$2:hash" > "$ES_PATH_CONF/users"\necho "$4:$2" > "$ES_PATH_CONF/users_roles"\n'
                     % (server_dir, server_dir))
    os.chmod(users_tool, 0o755)

    def run(nodes, data_files=()):
        with open(bootstrap, "w") as handle:
            handle.write(nodes)
        for name in data_files:
            os.makedirs(os.path.join(data, name), exist_ok=True)
        env = dict(os.environ, ES_DATA_DIR=data, ES_BOOTSTRAP_FILE=bootstrap, ES_ENTRYPOINT=entrypoint,
                   ES_SERVICES_DIR=services, ES_PATH_CONF=config, ES_USERS_TOOL=users_tool)
        result = subprocess.run([bash, script], env=env, stdout=subprocess.PIPE, universal_newlines=True, check=True)
        # the user made from the password, given twice on the tool's standard input only
        with open(os.path.join(server_dir, "args")) as handle:
            assert handle.read() == "useradd neurallog -r neurallog\n"
        with open(os.path.join(server_dir, "stdin")) as handle:
            assert handle.read() == "%s\n%s\n" % (secret["services-password"], secret["services-password"])
        with open(os.path.join(config, "users")) as handle:
            assert handle.read() == "neurallog:hash\n"
        return result.stdout.splitlines()

    return run


def test_first_bootstrap_gets_the_initial_masters(rendered, start):
    # Render mode renders what a running cluster has (the empty list); a
    # live first install's plan sets the first nodes' names (the role's
    # _elasticsearch_initial_masters; roles/elasticsearch/README.md, "Bootstrap").
    assert rendered.get("ConfigMap", "elasticsearch-bootstrap")["data"]["initial-master-nodes"] == ""
    nodes = "elasticsearch-0,elasticsearch-1,elasticsearch-2"
    assert start(nodes) == ["eswrapper", "-Ecluster.initial_master_nodes=" + nodes]
    assert start(nodes, ["lost+found"]) == ["eswrapper", "-Ecluster.initial_master_nodes=" + nodes]


def test_no_initial_masters_once_formed_or_with_data(start):
    assert start("") == ["eswrapper"]
    assert start("elasticsearch-0,elasticsearch-1,elasticsearch-2", ["_state"]) == ["eswrapper"]


def test_rendered_cluster_settings(rendered):
    config = yaml.safe_load(rendered.get("ConfigMap", "elasticsearch-config")["data"]["elasticsearch.yml"])
    assert config["discovery.seed_hosts"] == ["elasticsearch-headless:9300"]
    assert "cluster.initial_master_nodes" not in config
    assert config["xpack.security.enabled"] is True
    assert config["xpack.security.transport.ssl.enabled"] is True
    sts = rendered.get("StatefulSet", "elasticsearch")
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    env = dict((e["name"], e.get("value")) for e in sts["spec"]["template"]["spec"]["containers"][0]["env"])
    assert env["ES_JAVA_OPTS"] == "-Xms2048m -Xmx2048m"
    headless = rendered.get("Service", "elasticsearch-headless")["spec"]
    assert headless["publishNotReadyAddresses"] is True
    credentials = rendered.secret("elasticsearch-credentials")
    assert credentials["url"] == "https://neurallog:%s@elasticsearch.neurallog-data.svc:9200" % credentials["password"]
    assert credentials["password"] == rendered.secret("elasticsearch")["services-password"]
    assert credentials["ca.crt"] == rendered.secret("elasticsearch-http-tls")["ca.crt"]
    assert config["xpack.security.http.ssl.enabled"] is True
    assert config["xpack.security.http.ssl.certificate_authorities"] == ["http-certs/ca.crt"]


def test_read_only_root_and_no_secret_in_the_environment(rendered):
    pod = rendered.get("StatefulSet", "elasticsearch")["spec"]["template"]["spec"]
    assert pod["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    for container in pod["initContainers"] + pod["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        for item in container.get("env", []):
            assert "secretKeyRef" not in item.get("valueFrom", {}), item
    container = pod["containers"][0]
    env = dict((e["name"], e.get("value")) for e in container["env"])
    assert env["ELASTIC_PASSWORD_FILE"] == "/mnt/neurallog/runtime/elastic-password"
    writable = sorted(m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly"))
    assert writable == ["/tmp", "/usr/share/elasticsearch/config", "/usr/share/elasticsearch/data",
                        "/usr/share/elasticsearch/logs"]
    probe = container["readinessProbe"]["exec"]["command"][2]
    assert "https://127.0.0.1:9200/" in probe and "--cacert /usr/share/elasticsearch/config/http-certs/ca.crt" in probe
    for value in rendered.secret("elasticsearch").values():
        assert value not in repr(pod)


def test_prepare_script_copies_the_config_and_a_0600_password(rendered, server_dir):
    """The init container's script, run with bash: the image's config
    folder copied, the password from the Secret volume (mode 0440, as
    kubelet makes it with fsGroup) copied with mode 0600, which the image's
    entrypoint requires of ELASTIC_PASSWORD_FILE."""
    bash = find_binary("bash")
    script = os.path.join(server_dir, "prepare.sh")
    with open(script, "w") as handle:
        handle.write(rendered.get("ConfigMap", "elasticsearch-config")["data"]["prepare.sh"])
    home, copy, credentials, runtime = (os.path.join(server_dir, d) for d in ("home", "copy", "cred", "run"))
    for path in (os.path.join(home, "config", "jvm.options.d"), copy, credentials, runtime):
        os.makedirs(path)
    with open(os.path.join(home, "config", "jvm.options"), "w") as handle:
        handle.write("-Xss1m\n")
    password = rendered.secret("elasticsearch")["password"]
    with open(os.path.join(credentials, "elastic-password"), "w") as handle:
        handle.write(password)
    os.chmod(os.path.join(credentials, "elastic-password"), 0o440)
    target = os.path.join(runtime, "elastic-password")
    env = dict(os.environ, ES_HOME=home, ES_CONFIG_COPY=copy, ES_CREDENTIALS_DIR=credentials, ES_PASSWORD_FILE=target)
    for _round in (1, 2):  # a restarted init container finds its earlier copies
        subprocess.run([bash, script], env=env, check=True)
        assert sorted(os.listdir(copy)) == ["jvm.options", "jvm.options.d"]
        with open(target) as handle:
            assert handle.read() == password
        assert oct(os.stat(target).st_mode & 0o777) == "0o600"


def test_missing_services_password_stops_the_start_with_its_name(rendered, start, server_dir):
    """A Secret the user provides without services-password: the node does
    not start, and says which key of which Secret is missing."""
    os.unlink(os.path.join(server_dir, "services", "services-password"))
    with pytest.raises(subprocess.CalledProcessError):
        start("")
    script = os.path.join(server_dir, "start.sh")
    result = subprocess.run([find_binary("bash"), script], env=dict(
        os.environ, ES_SERVICES_DIR=os.path.join(server_dir, "services"), ES_PATH_CONF=os.path.join(server_dir, "config"),
        ES_DATA_DIR=os.path.join(server_dir, "data"), ES_BOOTSTRAP_FILE=os.path.join(server_dir, "none")),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert result.returncode == 1
    assert "key services-password of Secret elasticsearch is missing or empty" in result.stderr, result.stderr
