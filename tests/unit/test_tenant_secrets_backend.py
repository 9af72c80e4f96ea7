"""The tenants' Redis credentials through the secrets backends
(plugins/action/tenant_plan.py tenant_passwords and vault_write_backs, on
plugin_utils/vault_store.py's rule and module_utils/secrets_backend.py's
ExternalSecrets), in-process with an in-memory KV store; the real OpenBao and
External Secrets CRDs are tests/cluster/test_secrets_backends.py's."""

import base64

from ansible_collections.neurallog.platform.plugins.action.tenant_plan import tenant_passwords, vault_write_backs
from ansible_collections.neurallog.platform.plugins.module_utils import secrets_backend as backend
from ansible_collections.neurallog.platform.plugins.module_utils import tenant as t

from test_secrets_backend import FakeVault

TENANTS = [{"id": "demo", "tier": "small"}, {"id": "acme", "tier": "small"}]
PATH = "neurallog/tenant-demo/redis-credentials"
SETTINGS = dict(t.DEFAULT_SETTINGS, redis_image="registry.local/redis:7.0.15")


def secret_values(resources, namespace):
    secret = [o for o in resources if o["kind"] == "Secret" and o["metadata"]["namespace"] == namespace][0]
    return dict((key, base64.b64decode(value).decode()) for key, value in secret["data"].items())


def plan(vault, secrets=()):
    """build_resources with the passwords the vault backend decides, and the
    write backs (applied to the fake store as the action does)."""
    valid = t.validate_tenants(TENANTS, SETTINGS)
    passwords, entries = tenant_passwords(valid, "vault", list(secrets), vault, backend.Placeholders())
    built = t.build_resources(TENANTS, SETTINGS, passwords=passwords, existing_secrets=list(secrets))
    writes = vault_write_backs(vault, entries, built["resources"])
    for write in writes:
        vault.write(write["path"], write["data"], write["cas"])
    return built, writes


def test_vault_generates_once_writes_back_then_reads_back():
    vault = FakeVault()
    built, writes = plan(vault)
    assert sorted(w["path"] for w in writes) == ["neurallog/tenant-acme/redis-credentials", PATH]
    assert [w["cas"] for w in writes] == [0, 0]   # only if still absent
    password = vault.entries[PATH][0]["password"]
    assert vault.entries[PATH] == ({"password": password}, 1)
    values = secret_values(built["resources"], "tenant-demo")
    assert values["password"] == password and ">%s " % password in values["auth.conf"]
    # a re-run reads the entry: same Secret, nothing written
    again, writes = plan(vault)
    assert writes == [] and again["generated_passwords"] == []
    assert secret_values(again["resources"], "tenant-demo") == values
    assert vault.entries[PATH][1] == 1


def test_vault_value_wins_and_a_kubernetes_secret_is_adopted():
    vault = FakeVault({PATH: ({"password": "v" * 32}, 3)})
    secret = {"kind": "Secret", "metadata": {"name": "redis-credentials", "namespace": "tenant-acme"},
              "data": {"password": base64.b64encode(b"k" * 32).decode()}}
    other = dict(secret, metadata={"name": "redis-credentials", "namespace": "tenant-demo"})
    built, writes = plan(vault, [secret, other])
    assert secret_values(built["resources"], "tenant-demo")["password"] == "v" * 32   # Vault's, not the Secret's
    # acme's Secret (switch from the kubernetes backend): adopted, written once, nothing rotated
    assert secret_values(built["resources"], "tenant-acme")["password"] == "k" * 32
    assert [(w["path"], w["data"], w["cas"]) for w in writes] == [
        ("neurallog/tenant-acme/redis-credentials", {"password": "k" * 32}, 0)]
    assert built["generated_passwords"] == []


def test_external_secrets_every_tenant_secret_is_an_externalsecret_without_a_value():
    valid = t.validate_tenants(TENANTS, SETTINGS)
    placeholders = backend.Placeholders()
    passwords, entries = tenant_passwords(valid, "external-secrets", [], None, placeholders)
    assert entries == {}
    built = t.build_resources(TENANTS, SETTINGS, passwords=passwords)
    assert built["generated_passwords"] == []
    settings = {"store_name": "neurallog", "store_kind": "SecretStore", "key_prefix": "neurallog/",
                "store_provider": {"vault": {"server": "http://127.0.0.1:8200"}}}
    objects = backend.external_objects(built["resources"], placeholders, settings, {"team": "x"})
    assert [o for o in objects if o["kind"] == "Secret"] == []
    assert "NLXREF" not in str([o for o in objects if o["kind"] != "ExternalSecret"])
    external = dict((o["metadata"]["namespace"], o) for o in objects if o["kind"] == "ExternalSecret")
    assert sorted(external) == ["tenant-acme", "tenant-demo"]
    spec = external["tenant-demo"]["spec"]
    assert external["tenant-demo"]["metadata"]["name"] == t.REDIS_SECRET   # the workloads' Secret name
    assert spec["data"] == [{"secretKey": "redis_credentials_password",
                             "remoteRef": {"key": "neurallog/tenant-demo/redis-credentials", "property": "password"}}]
    template = spec["target"]["template"]["data"]
    assert template["password"] == "{{ .redis_credentials_password }}"
    assert template["url"].startswith("redis://neurallog:{{ .redis_credentials_password }}@redis.tenant-demo.svc")
    assert ">{{ .redis_credentials_password }} " in template["auth.conf"]
    # one SecretStore per tenant namespace, before its ExternalSecret
    stores = [o["metadata"]["namespace"] for o in objects if o["kind"] == "SecretStore"]
    assert stores == ["tenant-demo", "tenant-acme"]
    assert backend.required_remote_entries(list(external.values())) == {
        "neurallog/tenant-acme/redis-credentials": ["password"], PATH: ["password"]}
