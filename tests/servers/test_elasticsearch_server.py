# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The elasticsearch.yml, certificates and password the elasticsearch role
renders, run by a real Elasticsearch (the pinned version's integ-test
distribution from Maven Central, hack/es-dist.sh, with x-pack-security) on
127.0.0.1: HTTPS with the role's CA and the `elastic` password works, a
wrong password, plain HTTP and a client without the CA are refused, and the
rendered readiness probe answers.

Only what a single local node needs differs from the pod: node name,
addresses, ports, single-node discovery. The password reaches the
keystore as the image's entrypoint puts it there: ELASTIC_PASSWORD_FILE
checked by Elastic's own bin/elasticsearch-env-from-file (mode 0600, as the
init container's prepare.sh writes it)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import os
import pwd
import re
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
import yaml

from ansible_collections.neurallog.platform.plugins.module_utils.secrets_backend import elasticsearch_password_hash
from server_helpers import find_binary, free_port, wait_for_port

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
JAVA_HOMES = ["/usr/lib/jvm/java-17-openjdk-amd64", "/usr/lib/jvm/java-17-openjdk-arm64"]

# What the image's entrypoint does with the password before starting
# Elasticsearch (docker-entrypoint.sh of the 8.x image).
ENTRYPOINT = """set -eo pipefail
cd "$ES_HOME"
source bin/elasticsearch-env-from-file
[ -f config/elasticsearch.keystore ] || bin/elasticsearch-keystore create
printf '%s' "$ELASTIC_PASSWORD" | bin/elasticsearch-keystore add -x bootstrap.password
unset ELASTIC_PASSWORD
exec bin/elasticsearch
"""


def _chown_tree(path, uid, gid):
    for root, dirs, files in os.walk(path):
        for name in [root] + [os.path.join(root, n) for n in dirs + files]:
            os.chown(name, uid, gid)


def _java_home():
    for home in JAVA_HOMES:
        if os.path.exists(os.path.join(home, "bin", "java")):
            return home
    pytest.fail("Java 17 not found (apt-get install -y openjdk-17-jre-headless)")


@pytest.fixture(scope="module")
def elasticsearch(rendered):
    result = subprocess.run([os.path.join(REPO, "hack", "es-dist.sh")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, timeout=1200, check=False)
    assert result.returncode == 0, "hack/es-dist.sh failed:\n" + result.stderr
    # Not under pytest's tmp folder: that one is private to root.
    base = tempfile.mkdtemp(prefix="neurallog-elasticsearch-")
    os.chmod(base, 0o755)
    subprocess.run([find_binary("unzip"), "-q", result.stdout.strip(), "-d", base], check=True)
    home = os.path.join(base, os.listdir(base)[0])
    config_dir = os.path.join(home, "config")

    config = yaml.safe_load(rendered.get("ConfigMap", "elasticsearch-config")["data"]["elasticsearch.yml"])
    http_port, transport_port = free_port(), free_port()
    assert config.pop("discovery.seed_hosts")
    config.update({"node.name": "elasticsearch-0", "network.host": "127.0.0.1", "http.port": http_port,
                   "transport.port": transport_port, "discovery.type": "single-node"})
    with open(os.path.join(config_dir, "elasticsearch.yml"), "w") as handle:
        yaml.safe_dump(config, handle)
    # The services' role (ConfigMap, subPath) and user: the file realm. The
    # pod's start.sh makes the user's line with the image's
    # bin/elasticsearch-users (tests/images); here, the line rotate_secrets
    # writes (the integration distribution has no such tool).
    services_password = rendered.secret("elasticsearch")["services-password"]
    files = {"roles.yml": rendered.get("ConfigMap", "elasticsearch-config")["data"]["roles.yml"],
             "users": "neurallog:%s\n" % elasticsearch_password_hash(services_password),
             "users_roles": "neurallog:neurallog\n"}
    for name, text in files.items():
        with open(os.path.join(config_dir, name), "w") as handle:
            handle.write(text)
    # The Secret volumes, at the paths elasticsearch.yml names.
    pod = rendered.get("StatefulSet", "elasticsearch")["spec"]["template"]["spec"]
    mounts = dict((m["name"], m["mountPath"]) for m in pod["containers"][0]["volumeMounts"])
    for volume in pod["volumes"]:
        if "secret" not in volume or not mounts.get(volume["name"], "").startswith("/usr/share/elasticsearch/config/"):
            continue
        target = os.path.join(config_dir, mounts[volume["name"]][len("/usr/share/elasticsearch/config/"):])
        os.makedirs(target)
        for key, value in rendered.secret(volume["secret"]["secretName"]).items():
            with open(os.path.join(target, key), "w") as handle:
                handle.write(value)
    # The password file as prepare.sh leaves it (mode 0600).
    password = rendered.secret("elasticsearch")["password"]
    password_file = os.path.join(base, "elastic-password")
    with open(password_file, "w") as handle:
        handle.write(password)
    os.chmod(password_file, 0o600)
    tmp = os.path.join(base, "tmp")
    os.makedirs(tmp)

    run_as = {}
    if os.geteuid() == 0:  # Elasticsearch refuses to run as root
        nobody = pwd.getpwnam("nobody")
        run_as = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        _chown_tree(base, nobody.pw_uid, nobody.pw_gid)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ES_HOME": home, "ES_JAVA_HOME": _java_home(),
           "ES_JAVA_OPTS": "-Xms512m -Xmx512m", "ES_TMPDIR": tmp, "HOME": base, "LANG": "C.UTF-8",
           "ELASTIC_PASSWORD_FILE": password_file}
    log_path = os.path.join(base, "console.log")
    log = open(log_path, "w")
    process = subprocess.Popen([find_binary("bash"), "-c", ENTRYPOINT], env=env, stdout=log,
                               stderr=subprocess.STDOUT, **run_as)
    server = {"port": http_port, "home": home, "password": password, "password_file": password_file,
              "ca": os.path.join(config_dir, "http-certs", "ca.crt"), "log": log_path, "env": env, "run_as": run_as}
    try:
        wait_for_port(http_port, process, timeout=300)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if _get(server, "/_cluster/health?wait_for_status=yellow&timeout=5s")[0] == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(1)
        yield server
    except AssertionError:
        with open(log_path) as handle:
            raise AssertionError("Elasticsearch did not start:\n" + handle.read()[-6000:])
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        shutil.rmtree(base, ignore_errors=True)


def _get(server, path, password=None, cafile=None, scheme="https", host="127.0.0.1", user="elastic", body=None):
    context = ssl.create_default_context(cafile=server["ca"] if cafile is None else cafile)
    request = urllib.request.Request("%s://%s:%d%s" % (scheme, host, server["port"], path), data=body)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    auth = "%s:%s" % (user, server["password"] if password is None else password)
    request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, context=context if scheme == "https" else None, timeout=30) as answer:
            return answer.status, answer.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8")


def test_https_with_the_ca_and_the_password(elasticsearch):
    status, body = _get(elasticsearch, "/_security/_authenticate")
    assert status == 200 and '"username":"elastic"' in body
    # The name the services use is in the certificate: verify against it.
    status, body = _get(elasticsearch, "/_cluster/health", host="localhost")
    assert status == 200 and '"status"' in body
    assert _get(elasticsearch, "/_cluster/health", password="not-the-password")[0] == 401


def test_plain_http_and_unknown_ca_are_refused(elasticsearch):
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        _get(elasticsearch, "/", scheme="http")
    default_trust = ssl.get_default_verify_paths().cafile or ssl.get_default_verify_paths().capath
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        _get(elasticsearch, "/", cafile=default_trust if default_trust and os.path.isfile(default_trust) else "")


def test_the_services_ca_and_url_reach_the_server(rendered, elasticsearch, tmp_path):
    """The core services' view: ca.crt and the URL of elasticsearch-credentials."""
    credentials = rendered.secret("elasticsearch-credentials")
    match = re.match(r"^https://neurallog:([^@]+)@elasticsearch\.neurallog-data\.svc:9200$", credentials["url"])
    assert match and match.group(1) == rendered.secret("elasticsearch")["services-password"]
    assert match.group(1) != elasticsearch["password"]
    ca = tmp_path / "ca.crt"
    ca.write_text(credentials["ca.crt"])
    assert _get(elasticsearch, "/_cluster/health", cafile=str(ca), user="neurallog", password=match.group(1))[0] == 200


def test_services_user_has_its_role_and_no_more(rendered, elasticsearch):
    """The services' own user (file realm, role of the same name): the
    cluster's health and the platform's indices, nothing else."""
    password = rendered.secret("elasticsearch")["services-password"]

    def call(path, body=None, secret=password):
        return _get(elasticsearch, path, user="neurallog", password=secret, body=body)[0]

    status, body = _get(elasticsearch, "/_security/_authenticate", user="neurallog", password=password)
    assert status == 200 and '"roles":["neurallog"]' in body
    assert call("/_cluster/health") == 200
    assert call("/neurallog-logs/_doc", b'{"message": "hello"}') == 201
    assert call("/neurallog-logs/_search") == 200
    assert call("/other-index/_doc", b'{"message": "hello"}') == 403
    assert call("/_security/user") == 403
    assert call("/_cluster/health", secret=elasticsearch["password"]) == 401   # not elastic's password


def test_rotation_line_replaces_the_password(rendered, elasticsearch):
    """rotate_secrets' server side: the new `users` line written into the
    config folder (as roles/rotate_secrets/tasks/server_elasticsearch.yml
    does); the node reloads it: the new password works, the old one is refused."""
    old = rendered.secret("elasticsearch")["services-password"]
    new = "NewPassword0123456789abcdefghij"
    users = os.path.join(elasticsearch["home"], "config", "users")
    with open(users) as handle:
        kept = handle.read()
    try:
        # the command of the rotation's task, its `$` escaped as there
        command = ('cd "$1" && printf "%%s:%%s\\n" neurallog "%s" > users.tmp && mv -f users.tmp users && echo OK'
                   % elasticsearch_password_hash(new).replace("$", "\\$"))
        done = subprocess.run(["sh", "-c", command, "sh", os.path.dirname(users)], check=True,
                              stdout=subprocess.PIPE, universal_newlines=True, **elasticsearch["run_as"])
        assert done.stdout.strip() == "OK"
        with open(users) as handle:
            assert handle.read() == "neurallog:%s\n" % elasticsearch_password_hash(new)
        deadline = time.time() + 30
        while time.time() < deadline and _get(elasticsearch, "/_security/_authenticate", user="neurallog",
                                              password=new)[0] != 200:
            time.sleep(1)
        assert _get(elasticsearch, "/_security/_authenticate", user="neurallog", password=new)[0] == 200
        assert _get(elasticsearch, "/_security/_authenticate", user="neurallog", password=old)[0] == 401
    finally:
        with open(users, "w") as handle:
            handle.write(kept)


def test_rendered_readiness_probe_answers(rendered, elasticsearch):
    probe = rendered.container("elasticsearch")["readinessProbe"]["exec"]["command"]
    assert probe[:2] == ["bash", "-c"]
    script = (probe[2].replace("/mnt/neurallog/runtime/elastic-password", elasticsearch["password_file"])
              .replace("/usr/share/elasticsearch/config/", elasticsearch["home"] + "/config/")
              .replace("127.0.0.1:9200/", "127.0.0.1:%d/" % elasticsearch["port"]))
    assert elasticsearch["password"] not in script

    def run():
        return subprocess.run(["bash", "-c", script], env=elasticsearch["env"], check=False, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, **elasticsearch["run_as"]).returncode

    assert run() == 0
    # Against a wrong password the same probe fails.
    with open(elasticsearch["password_file"]) as handle:
        kept = handle.read()
    try:
        with open(elasticsearch["password_file"], "w") as handle:
            handle.write("not-the-password")
        assert run() != 0
    finally:
        with open(elasticsearch["password_file"], "w") as handle:
            handle.write(kept)
