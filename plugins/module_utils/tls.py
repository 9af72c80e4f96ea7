# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificates the collection makes itself (python cryptography), kept once made.

- ``tls_secret_values``: the ingress's self-signed certificate. A stored one is
  kept as long as it still covers the wanted host names and is not about to
  expire, so a re-run never replaces it.
- ``elasticsearch_tls``: Elasticsearch's CA and the transport and HTTP
  certificates it signs; stored values are kept, the HTTP certificate is
  issued again only when it lacks a wanted name.

Every certificate is built by ``_certificate``; cryptography is imported
only when a certificate is read or made."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import datetime

from ansible_collections.neurallog.platform.plugins.module_utils.manifests import first_object

RENEW_BEFORE_DAYS = 30


def _crypto():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    return x509, hashes, serialization, ec, rsa, ExtendedKeyUsageOID, NameOID


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _stored(existing, keys):
    """The decoded ``keys`` of a stored Secret, or None unless all are there."""
    data = first_object(existing).get("data") or {}
    if all(data.get(k) for k in keys):
        return dict((k, base64.b64decode(data[k]).decode("utf-8")) for k in keys)
    return None


def _load(cert_pem):
    x509 = _crypto()[0]
    return x509.load_pem_x509_certificate(cert_pem.encode("ascii") if not isinstance(cert_pem, bytes) else cert_pem)


def certificate_names(cert_pem):
    """(DNS names, IP addresses) of a PEM certificate's subjectAltName."""
    x509 = _crypto()[0]
    try:
        san = _load(cert_pem).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return sorted(san.get_values_for_type(x509.DNSName)), sorted(str(a) for a in san.get_values_for_type(x509.IPAddress))


def certificate_hosts(cert_pem):
    """DNS names of a PEM certificate's subjectAltName."""
    return certificate_names(cert_pem)[0]


def _not_after(cert_pem):
    cert = _load(cert_pem)
    not_after = getattr(cert, "not_valid_after_utc", None)
    if not_after is None:  # cryptography < 42
        not_after = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    return not_after


def _pem(cert=None, key=None):
    serialization = _crypto()[2]
    if cert is not None:
        return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def _certificate(common_name, key, days, dns_names=(), ip_addresses=(), issuer=None, ca=False,
                 client_auth=False, organization=None):
    """A certificate for ``key``: self-signed, or signed by ``issuer`` (a
    ``{ca.crt, ca.key}`` dict of PEMs). A CA may sign certificates; a leaf
    is for servers (and clients with ``client_auth``)."""
    import ipaddress

    x509, hashes, serialization, _ec, _rsa, eku, name_oid = _crypto()
    attributes = [x509.NameAttribute(name_oid.COMMON_NAME, common_name[:64])]
    if organization:
        attributes.append(x509.NameAttribute(name_oid.ORGANIZATION_NAME, organization))
    subject = x509.Name(attributes)
    if issuer is None:
        issuer_name, signing_key = subject, key
    else:
        issuer_name = _load(issuer["ca.crt"]).subject
        signing_key = serialization.load_pem_private_key(issuer["ca.key"].encode("ascii"), password=None)
    start = _now() - datetime.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=int(days)))
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    else:
        names = [x509.DNSName(n) for n in dns_names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
        usages = [eku.SERVER_AUTH, eku.CLIENT_AUTH] if client_auth else [eku.SERVER_AUTH]
        builder = (builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(usages), critical=False))
    return builder.sign(signing_key, hashes.SHA256())


def _ec_key():
    ec = _crypto()[3]
    return ec.generate_private_key(ec.SECP256R1())


def _rsa_key():
    rsa = _crypto()[4]
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# ---------------------------------------------------------------------------
# The ingress's self-signed certificate
# ---------------------------------------------------------------------------

def generate_self_signed(hosts, days=825, organization="NeuralLog"):
    """``{'tls.crt': PEM, 'tls.key': PEM}`` for a new self-signed certificate."""
    if not hosts:
        raise ValueError("a certificate needs at least one host name")
    key = _ec_key()
    cert = _certificate(hosts[0], key, days, dns_names=hosts, organization=organization)
    return {"tls.crt": _pem(cert=cert), "tls.key": _pem(key=key)}


def _still_good(cert_pem, hosts):
    if _not_after(cert_pem) - _now() < datetime.timedelta(days=RENEW_BEFORE_DAYS):
        return False
    return set(hosts) <= set(certificate_hosts(cert_pem))


def tls_secret_values(existing, hosts, days=825):
    """Stored ``tls.crt``/``tls.key`` when they still cover ``hosts``, else new ones.

    ``existing`` is a k8s_info result, its ``resources`` list, a Secret or None."""
    stored = _stored(existing, ("tls.crt", "tls.key"))
    if stored:
        try:
            if _still_good(stored["tls.crt"], hosts):
                return stored
        except ValueError:
            pass  # unreadable certificate: replace it
    return generate_self_signed(list(hosts), days)


# ---------------------------------------------------------------------------
# Elasticsearch: a CA and the certificates it signs
# ---------------------------------------------------------------------------

def _new_ca(common_name, days):
    key = _rsa_key()
    return {"ca.crt": _pem(cert=_certificate(common_name, key, days, ca=True)), "ca.key": _pem(key=key)}


def _issue(ca, common_name, dns_names, ip_addresses, days):
    """``ca.crt``, ``tls.crt``, ``tls.key`` of a certificate signed by ``ca``."""
    key = _rsa_key()
    cert = _certificate(common_name, key, days, dns_names, ip_addresses, issuer=ca, client_auth=True)
    return {"ca.crt": ca["ca.crt"], "tls.crt": _pem(cert=cert), "tls.key": _pem(key=key)}


def _covers(tls, ca_cert, dns_names, ip_addresses):
    """Whether a stored certificate was signed by ``ca_cert`` and names every
    wanted host; a certificate that does not is issued again."""
    try:
        dns, ips = certificate_names(tls["tls.crt"])
    except ValueError:
        return False
    return tls["ca.crt"] == ca_cert and set(dns_names) | set(ip_addresses) <= set(dns) | set(ips)


def elasticsearch_tls(existing_ca, existing_transport, existing_http, common_name, transport_dns_names,
                      http_dns_names, http_ip_addresses=("127.0.0.1",), days=3650):
    """Keep or generate Elasticsearch's CA and certificates.

    Returns ``{"ca": {ca.crt, ca.key}, "transport": {ca.crt, tls.crt, tls.key},
    "http": {ca.crt, tls.crt, tls.key}}``. Every ``existing_*`` is a Secret
    (or k8s_info result, or None); stored values are kept, so a re-run
    never re-issues. The transport certificate is kept whenever it is
    complete. The HTTP certificate is signed by the kept CA and issued again
    only when it is missing or lacks a wanted name. Installs whose CA key
    was never stored (made before the CA Secret existed) keep their
    transport certificates and get a new CA for the HTTP layer."""
    ca = _stored(existing_ca, ("ca.crt", "ca.key"))
    transport = _stored(existing_transport, ("ca.crt", "tls.crt", "tls.key"))
    if ca is None:
        ca = _new_ca(common_name + " CA", days)
    if transport is None:
        transport = _issue(ca, common_name, transport_dns_names, (), days)
    http = _stored(existing_http, ("ca.crt", "tls.crt", "tls.key"))
    if http is None or not _covers(http, ca["ca.crt"], http_dns_names, http_ip_addresses):
        http = _issue(ca, common_name, http_dns_names, http_ip_addresses, days)
    return {"ca": ca, "transport": transport, "http": http}
