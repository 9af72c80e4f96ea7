# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugins/module_utils/oidc.py and secrets_backend.py without a provider:
the setting's checks (each names the field), the discovery checks on
documents given here (the real provider: tests/cluster/test_oidc_provider.py),
the auth-service configuration, the redirect URIs and the one groups prefix
of the tenants' RoleBindings."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import sys

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "collections"))

from ansible_collections.neurallog.platform.plugins.module_utils import oidc  # noqa: E402
from ansible_collections.neurallog.platform.plugins.module_utils import secrets_backend as secret_backend  # noqa: E402
from ansible_collections.neurallog.platform.plugins.module_utils import services  # noqa: E402
from ansible_collections.neurallog.platform.plugins.module_utils import tenant as t  # noqa: E402

REPO = os.path.join(os.path.dirname(__file__), "..", "..")
ISSUER = "https://idp.example.test/realms/neurallog"
IMAGE = "docker.io/library/redis:7.0.15-alpine"


def enabled(**more):
    setting = {"enabled": True, "issuer": ISSUER, "client_id": "neurallog"}
    setting.update(more)
    return setting


def error_of(setting):
    with pytest.raises(oidc.OidcError) as info:
        oidc.resolve(setting)
    return str(info.value)


# -- the setting -------------------------------------------------------------------

def test_defaults_are_the_globals_role_defaults():
    """One place per default: module_utils fills what an inventory leaves
    out with the role's defaults (Ansible replaces a whole dict)."""
    with open(os.path.join(REPO, "roles", "globals", "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    assert defaults["neurallog_oidc"] == oidc.DEFAULTS
    with open(os.path.join(REPO, "roles", "globals", "meta", "argument_specs.yml")) as handle:
        spec = yaml.safe_load(handle)["argument_specs"]["main"]["options"]["neurallog_oidc"]["options"]
    assert sorted(spec) == sorted(oidc.DEFAULTS)
    assert dict((k, v.get("default")) for k, v in spec.items() if k != "client_secret") == \
        dict((k, v) for k, v in oidc.DEFAULTS.items() if k != "client_secret")


def test_disabled_needs_nothing_and_has_no_prefix():
    resolved = oidc.resolve({"enabled": False})
    assert resolved["enabled"] is False and resolved["groups_prefix"] == ""
    assert oidc.resolve(None)["enabled"] is False


def test_a_minimal_setting_gets_the_defaults():
    resolved = oidc.resolve(enabled())
    assert resolved["scopes"] == ["openid", "profile", "email"]
    assert resolved["client_secret"] == {"name": "neurallog-oidc-client", "key": "client-secret"}
    assert resolved["pkce"] is True and resolved["groups_prefix"] == "oidc:"


@pytest.mark.parametrize("setting, message", [
    ({"enabled": True, "client_id": "x"}, "neurallog_oidc.issuer: is required when neurallog_oidc.enabled is true"),
    (enabled(issuer="http://idp.example.test"), "neurallog_oidc.issuer: must be an https:// URL"),
    (enabled(issuer="https://idp.example.test/?x=1"), "neurallog_oidc.issuer: may not have a query or fragment"),
    (enabled(issuer="https://idp.example.test/ a"), "neurallog_oidc.issuer: may not contain spaces"),
    (enabled(client_id=""), "neurallog_oidc.client_id: is required"),
    (enabled(scopes=["profile"]), "neurallog_oidc.scopes: must include openid"),
    (enabled(scopes=[]), "neurallog_oidc.scopes: must be a non-empty list"),
    (enabled(scopes=["openid", "a b"]), "neurallog_oidc.scopes[1]: must be one scope name"),
    (enabled(scopes=["openid", "openid"]), "neurallog_oidc.scopes: lists a scope twice"),
    (enabled(groups_prefix="system:"), "neurallog_oidc.groups_prefix: may not start with 'system:'"),
    (enabled(username_prefix="System:x"), "neurallog_oidc.username_prefix: may not start with 'system:'"),
    (enabled(groups_claim="a b"), "neurallog_oidc.groups_claim: may not contain spaces"),
    (enabled(ca_bundle="/etc/ssl/ca.pem"), "neurallog_oidc.ca_bundle: must be PEM certificates"),
    (enabled(ca_bundle="-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"),
     "neurallog_oidc.ca_bundle: is not a valid PEM certificate bundle"),
    (enabled(pkce="maybe"), "neurallog_oidc.pkce: must be true or false"),
    (enabled(client_secret={"name": "", "key": "x"}, pkce=False),
     "neurallog_oidc.client_secret: a public client (no client_secret.name) needs neurallog_oidc.pkce: true"),
    (enabled(client_secret={"name": "Bad_Name", "key": "x"}), "neurallog_oidc.client_secret.name: must be a Secret name"),
    (enabled(client_secret={"name": "ok", "key": "a b"}), "neurallog_oidc.client_secret.key: must be a Secret key"),
    (enabled(client_secret={"name": "ok", "key": "k", "value": "x"}), "neurallog_oidc.client_secret: unknown key(s) value"),
    (enabled(scopes=["openid", "email\n"]), "neurallog_oidc.scopes[1]: must be one scope name"),
    (enabled(client_secret={"name": "oidc-client\n", "key": "k"}), "neurallog_oidc.client_secret.name: must be"),
    (enabled(client_secret={"name": "ok", "key": "k\n"}), "neurallog_oidc.client_secret.key: must be"),
    (enabled(redirect_path="callback"), "neurallog_oidc.redirect_path: must be a path starting with '/'"),
    (enabled(discovery_timeout=0), "neurallog_oidc.discovery_timeout: must be a number of seconds between 1 and 120"),
    (enabled(tenant="x"), "neurallog_oidc: unknown key(s) tenant; allowed:"),
    ("yes", "neurallog_oidc: must be a mapping"),
])
def test_bad_settings_name_the_field(setting, message):
    assert error_of(setting).startswith(message), error_of(setting)


def test_a_public_client_with_pkce_has_no_secret():
    resolved = oidc.resolve(enabled(client_secret={"name": "", "key": ""}))
    assert resolved["client_secret"] is None
    config = oidc.service_config(resolved, [])
    assert "OIDC_CLIENT_SECRET" not in [e["name"] for e in config["env"]]


# -- the discovery document ----------------------------------------------------------

def good_document(**more):
    document = {"issuer": ISSUER, "authorization_endpoint": ISSUER + "/auth", "token_endpoint": ISSUER + "/token",
                "jwks_uri": ISSUER + "/jwks", "scopes_supported": ["openid", "profile", "email", "groups"],
                "code_challenge_methods_supported": ["plain", "S256"]}
    document.update(more)
    return document


class Provider:
    """A fetcher answering from a dict of URL to body (bytes or JSON), or an
    exception; records what was asked and with which CA."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, url, timeout, ca_bundle=""):
        self.calls.append((url, timeout, ca_bundle))
        answer = self.answers.get(url)
        if answer is None:
            raise oidc.FetchError("HTTP 404 NOT FOUND", status=404)
        if isinstance(answer, Exception):
            raise answer
        return answer if isinstance(answer, bytes) else json.dumps(answer).encode("utf-8")


def provider(document=None, jwks=None, issuer=ISSUER):
    return Provider({issuer.rstrip("/") + "/.well-known/openid-configuration": document or good_document(),
                     ISSUER + "/jwks": jwks if jwks is not None else {"keys": [{"kty": "RSA", "kid": "1"}]}})


def discovery_error(setting, fetcher):
    with pytest.raises(oidc.OidcError) as info:
        oidc.check_discovery(oidc.resolve(setting), fetcher)
    return str(info.value)


def test_a_good_provider_passes():
    fetcher = provider()
    summary = oidc.check_discovery(oidc.resolve(enabled(scopes=["openid", "groups"])), fetcher)
    assert summary == {"issuer": ISSUER, "jwks_uri": ISSUER + "/jwks", "keys": 1,
                       "authorization_endpoint": ISSUER + "/auth"}
    assert [c[0] for c in fetcher.calls] == [ISSUER + "/.well-known/openid-configuration", ISSUER + "/jwks"]
    assert all(c[1] == 10 for c in fetcher.calls)


def test_the_discovery_url_drops_one_trailing_slash_of_the_issuer():
    assert oidc.discovery_url(ISSUER + "/") == ISSUER + "/.well-known/openid-configuration"


def test_a_trailing_slash_is_a_mismatch():
    """coreos/go-oidc #423: the document says ISSUER, the setting ISSUER/;
    the ID tokens' iss would not match the configured issuer."""
    message = discovery_error(enabled(issuer=ISSUER + "/"), provider())
    assert message == (
        "neurallog_oidc.issuer: the discovery document at %s/.well-known/openid-configuration names the issuer %r, "
        "expected %r; they must match byte for byte (only the trailing slash differs, and it counts: coreos/go-oidc "
        "#423): set neurallog_oidc.issuer to the document's issuer" % (ISSUER, ISSUER, ISSUER + "/"))


def test_the_document_with_a_trailing_slash_and_the_setting_without_is_a_mismatch_too():
    message = discovery_error(enabled(), provider(good_document(issuer=ISSUER + "/")))
    assert "names the issuer %r, expected %r" % (ISSUER + "/", ISSUER) in message and "#423" in message


def test_another_issuer_is_a_mismatch_without_the_slash_hint():
    message = discovery_error(enabled(), provider(good_document(issuer="https://other.example.test")))
    assert message.startswith("neurallog_oidc.issuer: the discovery document") and "#423" not in message


def test_not_json_is_named():
    fetcher = Provider({ISSUER + "/.well-known/openid-configuration": b"<html>login</html>"})
    assert discovery_error(enabled(), fetcher) == (
        "neurallog_oidc.issuer: %s/.well-known/openid-configuration answered '<html>login</html>', expected the "
        "discovery document (a JSON object)" % ISSUER)


def test_unreachable_and_tls_failures_name_issuer_or_ca_bundle():
    url = ISSUER + "/.well-known/openid-configuration"
    refused = Provider({url: oidc.FetchError("connection refused")})
    assert discovery_error(enabled(), refused) == (
        "neurallog_oidc.issuer: %s (the discovery document) could not be fetched: connection refused" % url)
    tls = Provider({url: oidc.FetchError("certificate verify failed: self-signed certificate", tls=True)})
    assert discovery_error(enabled(), tls).startswith(
        "neurallog_oidc.ca_bundle: the TLS certificate of %s (the discovery document) is not trusted by the "
        "system's CA store" % url)


def test_jwks_problems_scopes_and_pkce_are_reported_together():
    document = good_document(scopes_supported=["openid", "email"], code_challenge_methods_supported=["plain"])
    message = discovery_error(enabled(scopes=["openid", "groups", "profile"]), provider(document, {"keys": []}))
    parts = message.split("; ")
    assert parts[0].startswith("neurallog_oidc.issuer: jwks_uri %s/jwks answered" % ISSUER)
    assert "expected a JSON Web Key Set with at least one key" in parts[0]
    assert parts[1] == "neurallog_oidc.scopes: groups, profile not in the provider's scopes_supported (openid, email)"
    assert parts[2].startswith("neurallog_oidc.pkce: is true but the provider's code_challenge_methods_supported "
                               "is [\"plain\"], expected a list holding S256")


def test_pkce_needs_the_method_advertised_and_can_be_turned_off():
    document = good_document()
    del document["code_challenge_methods_supported"]
    assert "code_challenge_methods_supported is absent" in discovery_error(enabled(), provider(document))
    assert oidc.check_discovery(oidc.resolve(enabled(pkce=False)), provider(document))["keys"] == 1


def test_a_jwks_uri_that_is_not_https_is_refused():
    message = discovery_error(enabled(), provider(good_document(jwks_uri="http://idp.example.test/jwks")))
    assert "has jwks_uri 'http://idp.example.test/jwks', expected an https:// URL" in message


def test_scopes_are_not_checked_when_the_provider_lists_none():
    document = good_document()
    del document["scopes_supported"]
    assert oidc.check_discovery(oidc.resolve(enabled(scopes=["openid", "groups"])), provider(document))


def test_the_ca_bundle_is_what_the_fetcher_trusts():
    bundle = _test_ca()
    fetcher = provider()
    resolved = oidc.resolve(enabled(ca_bundle=bundle))
    oidc.check_discovery(resolved, fetcher)
    assert [c[2] for c in fetcher.calls] == [resolved["ca_bundle"]] * 2
    config = oidc.service_config(resolved, ["https://api.example.test/auth/callback"])
    assert {"name": "OIDC_CA_FILE", "value": "/etc/neurallog/oidc/ca.crt"} in config["env"]
    assert config["volumes"] == [{"name": "oidc-ca", "configMap": {"name": "neurallog-oidc-ca", "defaultMode": 0o444}}]
    assert len(config["annotations"]["neurallog.io/oidc-ca-sha256"]) == 64


# -- the configuration of auth-service and the redirect URIs ---------------------------

def test_redirect_uris_from_the_hosts_without_wildcards():
    resolved = oidc.resolve(enabled())
    hosts = ["api.example.test", "*.api.example.test", "api.example.test"]
    assert oidc.redirect_uris(resolved, hosts) == ["https://api.example.test/auth/callback"]
    assert oidc.redirect_uris(resolved, hosts, tls=False) == ["http://api.example.test/auth/callback"]
    assert oidc.redirect_uris(oidc.resolve({}), hosts) == []


def test_auth_service_environment():
    resolved = oidc.resolve(enabled(scopes=["openid", "groups"], groups_claim="roles", groups_prefix="idp:"))
    env = oidc.service_config(resolved, ["https://a.example.test/auth/callback", "https://b.example.test/auth/callback"])["env"]
    plain = dict((e["name"], e["value"]) for e in env if "value" in e)
    assert plain == {
        "OIDC_ENABLED": "true", "OIDC_ISSUER_URL": ISSUER, "OIDC_CLIENT_ID": "neurallog",
        "OIDC_SCOPES": "openid groups", "OIDC_USERNAME_CLAIM": "email", "OIDC_USERNAME_PREFIX": "oidc:",
        "OIDC_GROUPS_CLAIM": "roles", "OIDC_GROUPS_PREFIX": "idp:", "OIDC_PKCE": "true", "OIDC_PKCE_METHOD": "S256",
        "OIDC_REDIRECT_URIS": "https://a.example.test/auth/callback,https://b.example.test/auth/callback"}
    assert [e for e in env if "valueFrom" in e] == [{"name": "OIDC_CLIENT_SECRET", "valueFrom": {
        "secretKeyRef": {"name": "neurallog-oidc-client", "key": "client-secret"}}}]


def test_the_core_services_merge_the_configuration_into_the_named_service_only():
    config = oidc.service_config(oidc.resolve(enabled()), [])
    descriptions = {"auth-service": {}, "api-gateway": {}}
    defaults = {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}, "env": {"LOG_LEVEL": "info"}}
    resolved = services.resolve_services(descriptions, defaults, extras={"auth-service": config})
    by_name = dict((s["name"], s) for s in resolved)
    auth_env = [e["name"] for e in by_name["auth-service"]["env"]]
    assert auth_env[0] == "OIDC_ENABLED" and auth_env[-1] == "LOG_LEVEL" and "OIDC_CLIENT_SECRET" in auth_env
    assert [e["name"] for e in by_name["api-gateway"]["env"]] == ["LOG_LEVEL"]
    with pytest.raises(services.ServiceError) as info:
        services.resolve_services({"api-gateway": {}}, defaults,
                                  extras={"auth-service": dict(config, setting="neurallog_oidc.service")})
    assert str(info.value) == "neurallog_oidc.service: 'auth-service' is not an enabled core service; enabled: api-gateway"


# -- the secrets backend helper -------------------------------------------------------

def test_secret_backend_reads_writes_and_refers_to_the_same_key():
    ref = secret_backend.secret_ref("neurallog_oidc.client_secret", {"name": "oidc-client", "key": "secret"})
    obj = secret_backend.secret_object(ref, "ns", "v@lue", {"a": "b"})
    assert obj["metadata"] == {"name": "oidc-client", "namespace": "ns", "labels": {"a": "b"}}
    assert base64.b64decode(obj["data"]["secret"]) == b"v@lue"
    assert secret_backend.stored_value(ref, [obj]) == "v@lue"
    assert secret_backend.stored_value(ref, [dict(obj, data={"other": "eA=="})]) is None
    assert secret_backend.stored_value(ref, []) is None
    assert secret_backend.secret_env("X", ref) == {"name": "X", "valueFrom": {"secretKeyRef": {
        "name": "oidc-client", "key": "secret"}}}
    # vault: the KV entry of the Secret; external-secrets: never a value
    assert secret_backend.stored_value(ref, {"secret": "fr0m-kv"}, backend="vault") == "fr0m-kv"
    assert secret_backend.stored_value(ref, None, backend="vault") is None
    with pytest.raises(secret_backend.SecretRefError, match="no secret value passes through Ansible"):
        secret_backend.stored_value(ref, [obj], backend="external-secrets")
    with pytest.raises(secret_backend.SecretRefError) as info:
        secret_backend.stored_value(ref, [obj], backend="sops")
    assert str(info.value) == ("neurallog_secrets_backend must be one of kubernetes, vault, external-secrets, "
                               "got 'sops'")


# -- one groups prefix for the tenants' RoleBindings -------------------------------------

def tenant_bindings(tenants, oidc_setting):
    resources = t.build_resources(tenants, {"redis_image": IMAGE, "oidc": oidc_setting}, passwords={})["resources"]
    return dict(((o["metadata"]["namespace"], o["metadata"]["name"]), [s["name"] for s in o["subjects"]])
                for o in resources if o["kind"] == "RoleBinding")


def test_tenant_groups_get_the_prefix_when_oidc_is_on():
    bindings = tenant_bindings([{"id": "acme", "admin_groups": ["acme-admins"]}], enabled(groups_prefix="idp:"))
    assert bindings[("tenant-acme", "tenant-admin")] == ["idp:acme-admins"]
    assert bindings[("tenant-acme", "tenant-member")] == ["idp:tenant-acme-members"]


def test_tenant_groups_are_as_written_when_oidc_is_off():
    bindings = tenant_bindings([{"id": "acme", "admin_groups": ["acme-admins"]}], {"enabled": False})
    assert bindings[("tenant-acme", "tenant-admin")] == ["acme-admins"]


def test_a_group_given_with_the_prefix_is_refused_naming_it():
    with pytest.raises(t.TenantError) as info:
        tenant_bindings([{"id": "acme", "admin_groups": ["oidc:acme-admins"]}], enabled())
    assert info.value.errors == [
        "tenants[acme].admin_groups[0]: 'oidc:acme-admins' already starts with neurallog_oidc.groups_prefix 'oidc:': "
        "give the identity provider's group name, the prefix is added once (as kube-apiserver's "
        "--oidc-groups-prefix does)"]
    with pytest.raises(t.TenantError) as info:
        t.build_resources([{"id": "acme"}], {"redis_image": IMAGE, "oidc": enabled(),
                                             "admin_group_format": "oidc:{tenant}-admins"}, passwords={})
    assert info.value.errors[0].startswith("admin_group_format: 'oidc:{tenant}-admins' already starts with")


def test_a_bad_oidc_setting_fails_the_tenants_naming_it():
    with pytest.raises(t.TenantError) as info:
        tenant_bindings([{"id": "acme"}], enabled(groups_prefix="system:x"))
    assert info.value.errors == ["neurallog_oidc.groups_prefix: may not start with 'system:' (Kubernetes' own users "
                                 "and groups), got 'system:x'"]


# -- render mode: site.yml with OIDC, no cluster, no provider ----------------------------

def render_site(out, values, *extra):
    import subprocess
    varfile = out.parent / ("%s-vars.json" % out.name)
    varfile.write_text(json.dumps(values))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               K8S_AUTH_KUBECONFIG=str(out.parent / "no-such-kubeconfig"), KUBECONFIG=str(out.parent / "none"))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "site.yml", "-i", "inventories/local",
           "-e", "neurallog_render_dir=%s" % out, "-e", "@%s" % varfile] + [a for e in extra for a in ("-e", e)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout + proc.stderr


def test_render_mode_with_oidc(tmp_path):
    """auth-service's environment and the CA ConfigMap in the manifests, the
    client secret only in secrets/ (or only named with render_secrets none),
    the redirect URIs in the summary, the same bytes on a re-render."""
    secret = "render-client-secret-" + os.urandom(6).hex()
    values = {"neurallog_oidc": enabled(discovery_check=False, ca_bundle=_test_ca()),
              "neurallog_oidc_client_secret": secret}
    first = render_site(tmp_path / "first", values)
    assert secret not in first
    assert ('register the redirect URIs https://api.neurallog.test/auth/callback at the identity provider'
            in " ".join(first.split()))
    texts = dict((str(p.relative_to(tmp_path / "first")), p.read_text()) for p in (tmp_path / "first").rglob("*.yaml"))
    assert [name for name, text in texts.items() if secret in text or base64.b64encode(secret.encode()).decode() in text] \
        == ["secrets/core_services.yaml"]
    docs = [d for d in yaml.safe_load_all(texts["core_services.yaml"]) if d]
    auth = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "auth-service"][0]
    env = dict((e["name"], e.get("value")) for e in auth["spec"]["template"]["spec"]["containers"][0]["env"])
    assert env["OIDC_ISSUER_URL"] == ISSUER and env["OIDC_REDIRECT_URIS"] == "https://api.neurallog.test/auth/callback"
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"] == ["neurallog-oidc-ca"]

    # a re-render of the folder reads its credentials back (secrets/), so
    # the consumers' credentials hash, and every file, stays the same
    render_site(tmp_path / "first", values)
    names = sorted(str(p.relative_to(tmp_path / "first")) for p in (tmp_path / "first").rglob("*.yaml"))
    assert names == sorted(texts)
    for name in texts:
        assert (tmp_path / "first" / name).read_text() == texts[name], name

    render_site(tmp_path / "none", values, "neurallog_render_secrets=none")
    required = (tmp_path / "none" / "required-secrets" / "core_services.txt").read_text()
    assert "neurallog-system/neurallog-oidc-client (Opaque): client-secret" in required
    assert not any(secret in p.read_text() for p in (tmp_path / "none").rglob("*") if p.is_file())


def _test_ca():
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u"render CA")])
    # fixed dates: the same bytes on every render of this test
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(start).not_valid_after(start + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
