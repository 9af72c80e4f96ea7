"""OIDC against a real OpenID Connect provider on loopback: the PyPI package
oidc-provider-mock (requirements-dev.txt) served over HTTPS on 127.0.0.1
with a certificate of a CA made here.

Four preflight cases, each through site.yml on the local cluster:
- a good provider: the preflight passes, site.yml converges with
  auth-service's environment, the CA ConfigMap and the client Secret
  carrying the settings, the summary prints the redirect URIs, and a second
  run changes nothing, and no verbosity prints the client secret;
- an issuer mismatch (a trailing slash), an unreachable provider (a closed
  loopback port) and a wrong CA: each fails naming the setting, before
  anything is changed (no namespace, no Lease).
A fifth: PKCE on against this provider, which does not advertise S256
(it does not implement PKCE), fails naming neurallog_oidc.pkce.

The platform goes into namespaces of its own (Platform of
test_safety_rails); one converge serves the module."""

import base64
import datetime
import json
import os
import re
import socket
import ssl
import threading

import pytest
import werkzeug.serving
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client
from test_safety_rails import Platform

import oidc_provider_mock  # requirements-dev.txt; missing, the module fails (never skips)

CLIENT_SECRET = "oidc-client-secret-" + base64.b32encode(os.urandom(10)).decode("ascii").lower()


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_server_cert(ca_key, ca_cert):
    import ipaddress
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(u"127.0.0.1")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(u"127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    """The provider on https://127.0.0.1:<port>, its CA and another CA."""
    folder = tmp_path_factory.mktemp("oidc")
    ca_key, ca_cert = make_ca(u"neurallog test IdP CA")
    dummy_key, wrong_ca = make_ca(u"some other CA")
    key, cert = make_server_cert(ca_key, ca_cert)
    (folder / "server.crt").write_text(pem(cert) + pem(ca_cert))
    (folder / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(folder / "server.crt"), str(folder / "server.key"))
    server = werkzeug.serving.make_server("127.0.0.1", 0, oidc_provider_mock.app(),
                                          threaded=True, ssl_context=context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield {"url": "https://127.0.0.1:%d" % server.server_port, "ca": pem(ca_cert), "wrong_ca": pem(wrong_ca)}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def platform(api_client):
    platform = Platform(api_client)
    yield platform
    for name in platform.namespaces:
        try:
            platform.core.delete_namespace(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


def closed_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def oidc_setting(provider, **more):
    # The mock does not implement PKCE (no code_challenge_methods_supported):
    # pkce is off here, and its refusal is the fifth case.
    setting = {"enabled": True, "issuer": provider["url"], "client_id": "neurallog-test",
               "ca_bundle": provider["ca"], "pkce": False, "scopes": ["openid", "profile", "email"]}
    setting.update(more)
    return setting


def site(platform, tmp_path, setting, *args, **more):
    """site.yml (or ``playbook``) with the OIDC settings from a vars file
    (the client secret stays off the command line)."""
    playbook = more.pop("playbook", os.path.join("playbooks", "site.yml"))
    values = {"neurallog_oidc": setting, "neurallog_oidc_client_secret": CLIENT_SECRET}
    values.update(more)
    path = tmp_path / ("oidc-%s.json" % os.urandom(4).hex())
    path.write_text(json.dumps(values))
    return platform.run(playbook, "-e", "@%s" % path, *args)


def recap(output):
    found = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=0\s+failed=(\d+)", output)
    assert found, output[-3000:]
    return {"ok": int(found.group(1)), "changed": int(found.group(2)), "failed": int(found.group(3))}


def refused(platform, tmp_path, setting, expected, **more):
    """site.yml fails with ``expected`` (a regular expression) in its
    message, and nothing of the platform exists afterwards."""
    before = platform.versions()
    run = site(platform, tmp_path, setting, **more)
    assert run.returncode != 0, run.output[-3000:]
    found = re.search(r"(?:OIDC preflight, nothing changed: )?(%s)" % expected, run.output)
    assert found, run.output[-3000:]
    assert platform.versions() == before == {}
    assert platform.lease() is None
    assert CLIENT_SECRET not in run.output
    print("\n%s" % found.group(0))
    return found.group(1)


def test_issuer_mismatch_trailing_slash(platform, provider, tmp_path):
    url = provider["url"]
    message = refused(platform, tmp_path, oidc_setting(provider, issuer=url + "/"), r"neurallog_oidc\.issuer: [^\n\"]*")
    assert message == (
        "neurallog_oidc.issuer: the discovery document at %s/.well-known/openid-configuration names the issuer "
        "'%s', expected '%s/'; they must match byte for byte (only the trailing slash differs, and it counts: "
        "coreos/go-oidc #423): set neurallog_oidc.issuer to the document's issuer" % (url, url, url))


def test_unreachable_provider(platform, provider, tmp_path):
    url = "https://127.0.0.1:%d" % closed_port()
    message = refused(platform, tmp_path, oidc_setting(provider, issuer=url), r"neurallog_oidc\.issuer: [^\n\"]*")
    assert message == ("neurallog_oidc.issuer: %s/.well-known/openid-configuration (the discovery document) could "
                       "not be fetched: connection refused" % url)


def test_wrong_ca(platform, provider, tmp_path):
    url = provider["url"]
    message = refused(platform, tmp_path, oidc_setting(provider, ca_bundle=provider["wrong_ca"]),
                      r"neurallog_oidc\.ca_bundle: [^\n\"]*")
    assert message.startswith("neurallog_oidc.ca_bundle: the TLS certificate of %s/.well-known/openid-configuration "
                              "(the discovery document) is not signed by the CA bundle given: certificate verify "
                              "failed" % url), message
    assert message.endswith("expected the CA that issued the IdP's certificate")


def test_pkce_without_s256_at_the_provider(platform, provider, tmp_path):
    message = refused(platform, tmp_path, oidc_setting(provider, pkce=True), r"neurallog_oidc\.pkce: [^\n\"]*")
    assert message.startswith("neurallog_oidc.pkce: is true but the provider's code_challenge_methods_supported is "
                              "absent, expected a list holding S256")


def test_missing_client_secret(platform, provider, tmp_path):
    """No value given and no Secret in the secrets backend."""
    message = refused(platform, tmp_path, oidc_setting(provider), r"neurallog_oidc\.client_secret: [^\n\"]*",
                      neurallog_oidc_client_secret="")
    assert message == (
        "neurallog_oidc.client_secret: found no Secret, expected the Secret {ns}/neurallog-oidc-client with the key "
        "client-secret holding the client secret; create it (kubectl -n {ns} create secret generic "
        "neurallog-oidc-client --from-file=client-secret=<file>) or set neurallog_oidc_client_secret (Ansible "
        "Vault) and the run writes it".format(ns=platform.system))


def test_good_provider_converges_and_reruns_unchanged(platform, provider, tmp_path, apps):
    setting = oidc_setting(provider, scopes=["openid", "email"], groups_claim="groups", groups_prefix="oidc:")
    first = site(platform, tmp_path, setting, "-vvv")
    assert first.returncode == 0, first.output[-3000:]
    # at any verbosity: neither the value nor its base64 form
    assert CLIENT_SECRET not in first.output
    assert base64.b64encode(CLIENT_SECRET.encode("utf-8")).decode("ascii") not in first.output
    redirect = "https://api.neurallog.test/auth/callback"
    assert ('OIDC (%s, client neurallog-test, groups prefix "oidc:"): register the redirect URIs %s at the '
            "identity provider" % (provider["url"], redirect)) in " ".join(first.output.split())

    deployment = apps.read_namespaced_deployment("auth-service", platform.system)
    pod = deployment.spec.template
    container = pod.spec.containers[0]
    env = dict((e.name, e.value) for e in container.env if e.value is not None)
    assert {k: v for k, v in env.items() if k.startswith("OIDC_")} == {
        "OIDC_ENABLED": "true", "OIDC_ISSUER_URL": provider["url"], "OIDC_CLIENT_ID": "neurallog-test",
        "OIDC_SCOPES": "openid email", "OIDC_USERNAME_CLAIM": "email", "OIDC_USERNAME_PREFIX": "oidc:",
        "OIDC_GROUPS_CLAIM": "groups", "OIDC_GROUPS_PREFIX": "oidc:", "OIDC_PKCE": "false",
        "OIDC_REDIRECT_URIS": redirect, "OIDC_CA_FILE": "/etc/neurallog/oidc/ca.crt"}
    secret_ref = [e.value_from.secret_key_ref for e in container.env if e.name == "OIDC_CLIENT_SECRET"][0]
    assert (secret_ref.name, secret_ref.key) == ("neurallog-oidc-client", "client-secret")
    stored = platform.core.read_namespaced_secret("neurallog-oidc-client", platform.system)
    assert base64.b64decode(stored.data["client-secret"]).decode("utf-8") == CLIENT_SECRET
    ca = platform.core.read_namespaced_config_map("neurallog-oidc-ca", platform.system)
    assert ca.data["ca.crt"].strip() == provider["ca"].strip()
    assert [m.mount_path for m in container.volume_mounts if m.name == "oidc-ca"] == ["/etc/neurallog/oidc"]
    assert len(pod.metadata.annotations["neurallog.io/oidc-ca-sha256"]) == 64
    # only auth-service gets the settings
    gateway = apps.read_namespaced_deployment("api-gateway", platform.system).spec.template.spec.containers[0]
    assert not [e for e in gateway.env or [] if e.name.startswith("OIDC_")]

    before = platform.versions()
    second = site(platform, tmp_path, setting)
    assert second.returncode == 0, second.output[-3000:]
    assert recap(second.output)["changed"] == 0, second.output[-3000:]
    assert platform.versions() == before

    # The same prefix on the tenants' RoleBindings: the IdP's group names
    # as the groups claim carries them, prefixed once.
    tenant = "o" + os.urandom(3).hex()
    try:
        run = site(platform, tmp_path, setting, playbook=os.path.join("playbooks", "tenants.yml"), tenant_wait=False,
                   tenant_list=[{"id": tenant, "admin_groups": ["%s-admins" % tenant]}])
        assert run.returncode == 0, run.output[-3000:]
        rbac = client.RbacAuthorizationV1Api(platform.core.api_client)
        subjects = dict((name, [s.name for s in rbac.read_namespaced_role_binding(name, "tenant-" + tenant).subjects])
                        for name in ("tenant-admin", "tenant-member"))
        assert subjects == {"tenant-admin": ["oidc:%s-admins" % tenant],
                            "tenant-member": ["oidc:tenant-%s-members" % tenant]}
    finally:
        try:
            platform.core.delete_namespace("tenant-" + tenant)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
