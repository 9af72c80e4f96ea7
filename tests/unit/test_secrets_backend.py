"""The secrets backends (module_utils/secrets_backend.py and the engine's use of them,
plugins/plugin_utils/reconcile.py) in-process, over the real roles, with an in-memory
cluster and an in-memory KV store; the real OpenBao and External Secrets CRDs are
tests/cluster/test_secrets_backends.py's."""

import base64

import pytest

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from ansible_collections.neurallog.platform.plugins.action.plan import preflight
from ansible_collections.neurallog.platform.plugins.module_utils import secrets_backend as backend
from ansible_collections.neurallog.platform.plugins.plugin_utils import reconcile
from ansible_collections.neurallog.platform.plugins.plugin_utils.vault_store import VaultStore

from test_reconcile import ROLES, FakeCluster, applied


class FakeVault(VaultStore):
    """plugin_utils.vault_store.VaultStore with its KV engine in memory (the
    merge and write-back rule, merged and pending_write, are the real ones)."""

    mount = "secret"

    def __init__(self, entries=None):
        self.entries = dict(entries or {})    # path -> (data, version)
        self.versions = {}

    def path(self, namespace, name):
        return backend.kv_path("neurallog", namespace, name)

    def read(self, namespace, name):
        data, version = self.entries.get(self.path(namespace, name), (None, 0))
        self.versions[self.path(namespace, name)] = version
        return dict(data) if data else None

    def write(self, path, data, cas):
        assert self.entries.get(path, (None, 0))[1] == cas
        self.entries[path] = (dict(data), cas + 1)


def make_plan(cluster=None, backend_name="kubernetes", vault=None, components=("namespaces", "redis", "core_services"),
              rotate=None, external_secrets=None, task_vars=None):
    loader = DataLoader()
    plan = reconcile.Plan(Templar(loader=loader), loader, dict(task_vars or {}), ROLES, cluster=cluster,
                          components=list(components), secrets_backend=backend_name, vault=vault, rotate=rotate,
                          external_secrets=external_secrets)
    plan.validate()
    return plan.build(preflight=preflight)


def secret(plan, name):
    found = [o for o in applied(plan) if o["kind"] == "Secret" and o["metadata"]["name"] == name][0]
    return dict((k, base64.b64decode(v).decode()) for k, v in found["data"].items())


def test_vault_first_install_generates_once_and_writes_back_then_reads_back():
    vault = FakeVault()
    first = make_plan(FakeCluster(), "vault", vault)
    # every data service's credentials (the core services need them all), once each
    assert [w["path"] for w in first.vault_writes] == ["neurallog/neurallog-data/postgresql",
                                                       "neurallog/neurallog-data/redis",
                                                       "neurallog/neurallog-data/elasticsearch"]
    write = first.vault_writes[1]
    assert write["cas"] == 0
    assert sorted(write["data"]) == ["admin-password", "password", "probe-password", "replication-password"]
    for item in first.vault_writes:
        vault.write(item["path"], item["data"], item["cas"])
    # the workloads' Secret holds Vault's values
    assert dict((k, v) for k, v in secret(first, "redis").items() if k in write["data"]) == write["data"]
    # a second run reads them back: nothing to write, nothing pending
    second = make_plan(FakeCluster(applied(first)), "vault", vault)
    assert second.vault_writes == [] and second.phases() == []
    assert second.facts["_redis_passwords"] == write["data"]


def test_vault_values_win_and_a_switch_from_kubernetes_adopts_the_secrets():
    plain = make_plan(FakeCluster())
    live = applied(plain)
    # switching backends: Vault empty, the Secret's values are written, not regenerated
    vault = FakeVault()
    switched = make_plan(FakeCluster(live), "vault", vault)
    assert switched.facts["_redis_passwords"] == plain.facts["_redis_passwords"]
    assert switched.vault_writes[1]["data"] == plain.facts["_redis_passwords"]
    # a value changed in Vault is what the Secret gets
    changed = dict(plain.facts["_redis_passwords"], password="x" * 32)
    vault = FakeVault({"neurallog/neurallog-data/redis": (changed, 3)})
    from_vault = make_plan(FakeCluster(live), "vault", vault)
    assert from_vault.facts["_redis_passwords"] == changed
    assert [w for w in from_vault.vault_writes if w["path"].endswith("/redis")] == []
    assert secret(from_vault, "redis-credentials")["password"] == "x" * 32


def test_rotation_changes_one_key_and_the_consumers_hash_only():
    vault = FakeVault()
    first = make_plan(FakeCluster(), "vault", vault)
    for item in first.vault_writes:
        vault.write(item["path"], item["data"], item["cas"])
    live = applied(first)
    rotated = make_plan(FakeCluster(live), "vault", vault, rotate={"service": "redis", "key": "password"})
    rotation = rotated.rotation
    old = first.facts["_redis_passwords"]
    assert rotation["old"] == old["password"] and rotation["new"] != old["password"]
    assert rotation["values"] == dict(old, password=rotation["new"])
    assert rotation["path"] == "neurallog/neurallog-data/redis" and rotation["version"] == 1
    # nothing written by the plan: the playbook writes after the server took it
    assert rotated.vault_writes == []
    pending = [(o["kind"], o["metadata"]["name"]) for p in rotated.phases() for o in p["objects"] + p["secrets"]]
    assert sorted(k for k, _n in pending) == ["Deployment"] * 8 + ["Secret", "Secret"]
    assert ("Secret", "redis") in pending and ("Secret", "redis-credentials") in pending


def test_external_secrets_no_value_and_every_secret_replaced():
    settings = {"store_name": "vault", "store_kind": "SecretStore", "key_prefix": "kv/",
                "store_provider": {"vault": {"server": "https://vault:8200"}}}
    components = ("namespaces", "postgresql", "redis", "elasticsearch", "core_services")
    plan = make_plan(FakeCluster(), "external-secrets", components=components, external_secrets=settings)
    objects = applied(plan)
    assert [o for o in objects if o["kind"] == "Secret"] == []
    external = dict(((o["metadata"]["namespace"], o["metadata"]["name"]), o) for o in objects
                    if o["kind"] == "ExternalSecret")
    assert sorted(external) == sorted([
        ("neurallog-data", "elasticsearch"), ("neurallog-data", "elasticsearch-ca"),
        ("neurallog-data", "elasticsearch-http-tls"), ("neurallog-data", "elasticsearch-transport-tls"),
        ("neurallog-data", "postgresql"), ("neurallog-data", "redis"),
        ("neurallog-system", "database-credentials"), ("neurallog-system", "elasticsearch-credentials"),
        ("neurallog-system", "redis-credentials")])
    stores = sorted(o["metadata"]["namespace"] for o in objects if o["kind"] == "SecretStore")
    assert stores == ["neurallog-data", "neurallog-system"]
    text = repr(objects)
    assert "NLXREF" not in text and "PRIVATE KEY" not in text
    database = external[("neurallog-system", "database-credentials")]["spec"]
    assert database["target"]["template"]["data"]["url"] == \
        "postgresql://neurallog:{{ .postgresql_password }}@postgresql.neurallog-data.svc:5432/neurallog"
    assert database["data"] == [{"secretKey": "postgresql_password", "remoteRef": {
        "key": "kv/neurallog-data/postgresql", "property": "password"}}]
    assert database["secretStoreRef"] == {"name": "vault", "kind": "SecretStore"}
    # the operator's Secret is not the platform's (never taken for an undeclared leftover)
    labels = database["target"]["template"]["metadata"]["labels"]
    assert "app.kubernetes.io/managed-by" not in labels and labels["app.kubernetes.io/name"] == "postgresql"
    # the same placeholders every run: the core services' hash does not move
    again = make_plan(FakeCluster(objects), "external-secrets", components=components, external_secrets=settings)
    # (Elasticsearch's bootstrap list still settles: the fake cluster runs no pod)
    assert [(p["objects"], p["secrets"]) for p in again.phases()] == [([], [])]


def test_placeholders_pass_password_checks_and_survive_url_quoting():
    from urllib.parse import quote
    holders = backend.Placeholders()
    value = holders.value("ns", "redis", "password")
    assert len(value) == 16 and value.isalnum() and quote(value) == value
    assert holders.value("ns", "redis", "password") == value
    assert holders.ref("x%sy" % value) == ("ns", "redis", "password")


@pytest.mark.parametrize("settings,message", [
    ({}, "neurallog_vault.url must be the Vault/OpenBao address"),
    ({"url": "http://127.0.0.1:8200", "auth_method": "token"}, "neurallog_vault.token is required"),
    ({"url": "http://127.0.0.1:8200", "auth_method": "approle", "role_id": "r"}, "neurallog_vault.secret_id is required"),
    ({"url": "http://127.0.0.1:8200", "auth_method": "kubernetes"}, "neurallog_vault.kubernetes_role is required"),
    ({"url": "http://127.0.0.1:8200", "auth_method": "ldap"}, "neurallog_vault.auth_method must be one of token, approle, kubernetes"),
])
def test_vault_settings_problems_name_the_setting(settings, message):
    settings = dict({"kv_mount": "secret"}, **settings)
    assert any(message in problem for problem in backend.vault_settings_problems(settings))


def test_scram_verifier_has_postgresql_s_form():
    verifier = backend.scram_sha256_verifier("pencil", salt=b"0123456789abcdef")
    assert verifier == backend.scram_sha256_verifier("pencil", salt=b"0123456789abcdef")
    head, keys = verifier.split("$", 1)[1].split("$")
    assert head == "4096:" + base64.b64encode(b"0123456789abcdef").decode()
    assert [len(base64.b64decode(k)) for k in keys.split(":")] == [32, 32]
    assert backend.scram_sha256_verifier("pencil") != backend.scram_sha256_verifier("pencil")   # random salt


# -- one list of backends; OIDC's client secret in each -----------------------

def test_argument_specs_choices_are_the_one_list_of_backends():
    import os
    import yaml
    with open(os.path.join(ROLES, "globals", "meta", "argument_specs.yml")) as handle:
        specs = yaml.safe_load(handle)
    options = specs["argument_specs"]["main"]["options"]
    assert tuple(options["neurallog_secrets_backend"]["choices"]) == backend.BACKENDS


def test_an_unknown_backend_fails_naming_the_setting():
    with pytest.raises(backend.SecretRefError) as info:
        backend.check_backend("sops")
    assert str(info.value) == "neurallog_secrets_backend must be one of kubernetes, vault, external-secrets, got 'sops'"


OIDC = {"neurallog_oidc": {"enabled": True, "issuer": "https://idp.example/", "client_id": "neurallog",
                           "discovery_check": False}}
OIDC_PATH = "neurallog/neurallog-system/neurallog-oidc-client"


def test_oidc_client_secret_vault_read_from_kv_into_the_secret():
    vault = FakeVault({OIDC_PATH: ({"client-secret": "fr0m-the-kv"}, 2)})
    plan = make_plan(FakeCluster(), "vault", vault, task_vars=OIDC)
    assert secret(plan, "neurallog-oidc-client") == {"client-secret": "fr0m-the-kv"}
    assert [w for w in plan.vault_writes if w["path"] == OIDC_PATH] == []


def test_oidc_client_secret_vault_given_value_written_once():
    vault = FakeVault()
    given = dict(OIDC, neurallog_oidc_client_secret="g1ven-secret")
    first = make_plan(FakeCluster(), "vault", vault, task_vars=given)
    writes = [w for w in first.vault_writes if w["path"] == OIDC_PATH]
    assert writes == [{"path": OIDC_PATH, "data": {"client-secret": "g1ven-secret"}, "cas": 0}]
    for item in first.vault_writes:
        vault.write(item["path"], item["data"], item["cas"])
    assert secret(first, "neurallog-oidc-client") == {"client-secret": "g1ven-secret"}
    again = make_plan(FakeCluster(applied(first)), "vault", vault, task_vars=given)
    assert again.vault_writes == [] and again.phases() == []


def test_oidc_client_secret_vault_missing_fails_naming_the_setting_and_entry():
    with pytest.raises(reconcile.PlanError) as info:
        make_plan(FakeCluster(), "vault", FakeVault(), task_vars=OIDC)
    assert str(info.value) == (
        "OIDC preflight, nothing changed: neurallog_oidc.client_secret: the Vault entry "
        "secret/neurallog/neurallog-system/neurallog-oidc-client has no key client-secret holding the client secret; "
        "write it (bao kv put -mount=secret neurallog/neurallog-system/neurallog-oidc-client client-secret=<secret>) "
        "or set neurallog_oidc_client_secret (Ansible Vault) and the run writes it")


def test_oidc_client_secret_external_secrets_an_externalsecret():
    settings = {"store_name": "vault", "store_kind": "ClusterSecretStore", "key_prefix": "kv/"}
    plan = make_plan(FakeCluster(), "external-secrets", task_vars=OIDC, external_secrets=settings)
    objects = applied(plan)
    assert [o for o in objects if o["kind"] == "Secret"] == []
    found = [o for o in objects if o["kind"] == "ExternalSecret" and o["metadata"]["name"] == "neurallog-oidc-client"]
    assert found[0]["metadata"]["namespace"] == "neurallog-system"
    spec = found[0]["spec"]
    assert spec["target"]["template"]["data"] == {"client-secret": "{{ .neurallog_oidc_client_client_secret }}"}
    assert spec["data"] == [{"secretKey": "neurallog_oidc_client_client_secret", "remoteRef": {
        "key": "kv/neurallog-system/neurallog-oidc-client", "property": "client-secret"}}]
    with pytest.raises(reconcile.PlanError, match="neurallog_oidc_client_secret must be empty with "
                                                  "neurallog_secrets_backend=external-secrets"):
        make_plan(FakeCluster(), "external-secrets", task_vars=dict(OIDC, neurallog_oidc_client_secret="x"),
                  external_secrets=settings)


def test_oidc_client_secret_kubernetes_a_secret_or_the_users_own():
    given = make_plan(FakeCluster(), task_vars=dict(OIDC, neurallog_oidc_client_secret="g1ven-secret"))
    assert secret(given, "neurallog-oidc-client") == {"client-secret": "g1ven-secret"}
    with pytest.raises(reconcile.PlanError, match="expected the Secret neurallog-system/neurallog-oidc-client"):
        make_plan(FakeCluster(), task_vars=OIDC)


# -- Elasticsearch: the services' own user ------------------------------------

ES = ("namespaces", "postgresql", "redis", "elasticsearch", "core_services")


def _es_claim():
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {
        "name": "data-elasticsearch-0", "namespace": "neurallog-data",
        "labels": {"app.kubernetes.io/name": "elasticsearch", "app.kubernetes.io/instance": "elasticsearch"}}}


def test_elasticsearch_services_connect_as_their_own_user():
    plan = make_plan(FakeCluster(), components=ES)
    passwords = plan.facts["_elasticsearch_passwords"]
    assert sorted(passwords) == ["password", "services-password"]
    assert passwords["password"] != passwords["services-password"]
    credentials = secret(plan, "elasticsearch-credentials")
    assert credentials["username"] == "neurallog" and credentials["password"] == passwords["services-password"]
    assert credentials["url"].startswith("https://neurallog:%s@" % passwords["services-password"])
    assert passwords["password"] not in credentials["url"]


def test_an_install_before_the_services_user_moves_to_it_in_one_rollout():
    first = make_plan(FakeCluster(), components=ES)
    live = applied(first)
    for obj in live:   # as an install made before the services' user left them
        if obj["kind"] == "Secret" and obj["metadata"]["name"] == "elasticsearch":
            for key in ("services-password",):
                del obj["data"][key]
    upgraded = make_plan(FakeCluster(live + [_es_claim()]), components=ES)   # the volume exists: no refusal
    passwords = upgraded.facts["_elasticsearch_passwords"]
    assert passwords["password"] == first.facts["_elasticsearch_passwords"]["password"]   # `elastic` kept
    assert len(passwords["services-password"]) == 32
    assert secret(upgraded, "elasticsearch-credentials")["url"].startswith("https://neurallog:")
    # and the next run keeps it
    again = make_plan(FakeCluster(applied(upgraded) + [_es_claim()]), components=ES)
    assert again.facts["_elasticsearch_passwords"] == passwords
    assert [o for p in again.phases() for o in p["objects"] + p["secrets"]] == []
    # a lost Secret is still refused, whatever key came later
    lost = [o for o in live if not (o["kind"] == "Secret" and o["metadata"]["name"] == "elasticsearch")]
    with pytest.raises(reconcile.PlanError, match="lock the platform out"):
        make_plan(FakeCluster(lost + [_es_claim()]), components=ES)


def test_rotation_of_elasticsearch_changes_the_services_password_only():
    vault = FakeVault()
    first = make_plan(FakeCluster(), "vault", vault, components=ES)
    for item in first.vault_writes:
        vault.write(item["path"], item["data"], item["cas"])
    rotated = make_plan(FakeCluster(applied(first)), "vault", vault, components=ES,
                        rotate={"service": "elasticsearch", "key": "services-password"})
    old = first.facts["_elasticsearch_passwords"]
    rotation = rotated.rotation
    assert rotation["old"] == old["services-password"] and rotation["new"] != rotation["old"]
    assert rotation["values"] == dict(old, **{"services-password": rotation["new"]})   # `elastic` unchanged
    assert rotation["path"] == "neurallog/neurallog-data/elasticsearch" and rotation["version"] == 1
    pending = [(o["kind"], o["metadata"]["name"]) for p in rotated.phases() for o in p["objects"] + p["secrets"]]
    # the Secrets and the consumers, never the Elasticsearch StatefulSet (no restart of the nodes)
    assert ("Secret", "elasticsearch") in pending and ("Secret", "elasticsearch-credentials") in pending
    assert ("StatefulSet", "elasticsearch") not in pending
    assert sorted(set(k for k, _n in pending)) == ["Deployment", "Secret"]
    assert secret(rotated, "elasticsearch-credentials")["url"].startswith("https://neurallog:%s@" % rotation["new"])


def test_elasticsearch_password_hash_has_the_pbkdf2_form():
    import hashlib
    hashed = backend.elasticsearch_password_hash("pencil", salt=b"s" * 32)
    prefix, salt, key = hashed.split("$")
    assert prefix == "{PBKDF2}10000" and base64.b64decode(salt) == b"s" * 32
    assert base64.b64decode(key) == hashlib.pbkdf2_hmac("sha512", b"pencil", b"s" * 32, 10000, 32)
    # the salt derived from the password: a re-rendered Secret is the same
    assert backend.elasticsearch_password_hash("pencil") == backend.elasticsearch_password_hash("pencil")
    assert backend.elasticsearch_password_hash("pencil").split("$")[1] != \
        backend.elasticsearch_password_hash("pencil2").split("$")[1]


def test_elasticsearch_secret_holds_passwords_only_in_every_backend():
    """No file realm line in the Secret `elasticsearch` (each node makes it
    from services-password when it starts): the kubernetes and vault Secrets
    and the ExternalSecret name the same two keys, the ExternalSecret reads
    both from the store and templates nothing else (no `users` line made of a
    placeholder)."""
    assert sorted(secret(make_plan(FakeCluster(), components=ES), "elasticsearch")) == ["password", "services-password"]
    assert sorted(secret(make_plan(FakeCluster(), "vault", FakeVault(), components=ES),
                         "elasticsearch")) == ["password", "services-password"]
    settings = {"store_name": "vault", "store_kind": "ClusterSecretStore", "key_prefix": "kv/"}
    plan = make_plan(FakeCluster(), "external-secrets", components=ES, external_secrets=settings)
    spec = [o for o in applied(plan) if o["kind"] == "ExternalSecret"
            and o["metadata"]["name"] == "elasticsearch"][0]["spec"]
    assert spec["target"]["template"]["data"] == {"password": "{{ .elasticsearch_password }}",
                                                  "services-password": "{{ .elasticsearch_services_password }}"}
    assert spec["data"] == [
        {"secretKey": "elasticsearch_password", "remoteRef": {"key": "kv/neurallog-data/elasticsearch", "property": "password"}},
        {"secretKey": "elasticsearch_services_password",
         "remoteRef": {"key": "kv/neurallog-data/elasticsearch", "property": "services-password"}}]
    assert backend.required_remote_entries([o for o in applied(plan) if o["kind"] == "ExternalSecret"])[
        "kv/neurallog-data/elasticsearch"] == ["password", "services-password"]
    # the pods mount services-password for start.sh, nothing else of the Secret
    sts = [o for o in applied(plan) if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "elasticsearch"][0]
    volume = [v for v in sts["spec"]["template"]["spec"]["volumes"] if v["name"] == "services-credentials"][0]
    assert volume["secret"]["items"] == [{"key": "services-password", "path": "services-password"}]
