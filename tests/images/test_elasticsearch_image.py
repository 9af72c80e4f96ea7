# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Elasticsearch image (hack/images/elasticsearch) as the elasticsearch
role's pod runs it: the init container `prepare`, then the node with the
role's elasticsearch.yml (security on, HTTPS and transport TLS with the
role's certificates), the password from ELASTIC_PASSWORD_FILE. One node
here, so single-node discovery instead of the seed hosts and bootstrap list."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import yaml

CURL = ["curl", "-sS", "--max-time", "10", "-K", "-", "-o", "/dev/stderr", "-w", "%{http_code}",
        "--cacert", "/usr/share/elasticsearch/config/http-certs/ca.crt"]


def single_node(rendered):
    """ConfigMap overrides that make the rendered node a cluster of one."""
    config = yaml.safe_load(rendered.get("ConfigMap", "elasticsearch-config")["data"]["elasticsearch.yml"])
    assert config.pop("discovery.seed_hosts")
    config["discovery.type"] = "single-node"
    data = dict(rendered.get("ConfigMap", "elasticsearch-config")["data"])
    data["elasticsearch.yml"] = yaml.safe_dump(config)
    return {"elasticsearch-config": data, "elasticsearch-bootstrap": {"initial-master-nodes": ""}}


def start_elasticsearch(launcher, aliases=()):
    return launcher.start("elasticsearch", configmaps=single_node(launcher.rendered), aliases=aliases,
                          env={"ES_JAVA_OPTS": "-Xms512m -Xmx512m"})


def get(container, password, path, scheme="https", user="elastic"):
    """(HTTP status, body) of a request from inside the container; the
    password goes to curl through its standard input."""
    result = container.exec(*(CURL + ["%s://127.0.0.1:9200%s" % (scheme, path)]), check=False,
                            stdin='user = "%s:%s"\n' % (user, password))
    return result.stdout.strip(), result.stderr


def test_security_and_tls_as_the_role_configures_them(launcher, rendered):
    password = rendered.secret("elasticsearch")["password"]
    node = start_elasticsearch(launcher)
    node.wait_ready(600)  # the role's readiness probe: HTTPS, the CA, the password file
    status = node.exec("cat", "/proc/1/status").stdout
    assert [line.split()[1] for line in status.splitlines() if line.startswith("Uid:")] == ["1000"]
    code, body = get(node, password, "/_cluster/health?wait_for_status=green&timeout=60s")
    assert code == "200" and json.loads(body)["status"] == "green", body
    code, body = get(node, password, "/_security/_authenticate")
    assert code == "200" and json.loads(body)["username"] == "elastic", body
    assert get(node, "wrong-password", "/_cluster/health")[0] == "401"
    assert get(node, password, "/_cluster/health", scheme="http")[0] == "000"  # plain HTTP is refused
    code, body = get(node, password, "/_nodes/_local/settings?filter_path=**.xpack.security")
    settings = json.loads(body)["nodes"].popitem()[1]["settings"]["xpack"]["security"]
    assert settings["enabled"] == "true" and settings["transport"]["ssl"]["enabled"] == "true", settings
    keystore = node.exec("elasticsearch-keystore", "list").stdout.split()
    assert "bootstrap.password" in keystore


def test_services_user_made_at_start_from_its_password_only(launcher, rendered):
    """The Secret `elasticsearch` holds the services' password and no file
    realm line (as an ExternalSecret or a Secret the user provides would):
    start.sh makes the line with the image's bin/elasticsearch-users, the
    password on its standard input. Right password 200, wrong one 401; the
    password is in no log, no command line, and the line is a hash."""
    secret = rendered.secret("elasticsearch")
    assert sorted(secret) == ["password", "services-password"]
    password = secret["services-password"]
    node = start_elasticsearch(launcher)
    node.wait_ready(600)
    code, body = get(node, password, "/_cluster/health?wait_for_status=green&timeout=60s", user="neurallog")
    assert code == "200" and json.loads(body)["status"] == "green", body
    code, body = get(node, password, "/_security/_authenticate", user="neurallog")
    assert code == "200" and json.loads(body)["username"] == "neurallog", body
    assert json.loads(body)["authentication_realm"]["type"] == "file", body
    assert get(node, "wrong-password", "/_cluster/health", user="neurallog")[0] == "401"
    users = node.exec("cat", "/usr/share/elasticsearch/config/users").stdout
    assert users.startswith("neurallog:$2") and password not in users, users
    assert node.exec("cat", "/usr/share/elasticsearch/config/users_roles").stdout == "neurallog:neurallog\n"
    assert password not in node.logs()
    commands = node.exec("sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '").stdout
    assert "elasticsearch" in commands and password not in commands
