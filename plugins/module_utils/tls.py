# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Self-signed TLS certificate for the ingress, generated once.

``tls_secret_values`` keeps a stored certificate as long as it still covers
the wanted host names and is not about to expire, so a re-run never replaces
it; otherwise it generates a new self-signed one (python cryptography)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import datetime

RENEW_BEFORE_DAYS = 30


def _crypto():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    return x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def certificate_hosts(cert_pem):
    """DNS names of a PEM certificate's subjectAltName."""
    x509 = _crypto()[0]
    cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii") if not isinstance(cert_pem, bytes) else cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return sorted(san.get_values_for_type(x509.DNSName))


def _still_good(cert_pem, hosts):
    x509 = _crypto()[0]
    cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
    not_after = getattr(cert, "not_valid_after_utc", None)
    if not_after is None:  # cryptography < 42
        not_after = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    if not_after - _now() < datetime.timedelta(days=RENEW_BEFORE_DAYS):
        return False
    return set(hosts) <= set(certificate_hosts(cert_pem))


def generate_self_signed(hosts, days=825, organization="NeuralLog"):
    """``{'tls.crt': PEM, 'tls.key': PEM}`` for a new self-signed certificate."""
    if not hosts:
        raise ValueError("a certificate needs at least one host name")
    x509, hashes, serialization, ec, eku, name_oid = _crypto()
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(name_oid.COMMON_NAME, hosts[0][:64]),
        x509.NameAttribute(name_oid.ORGANIZATION_NAME, organization),
    ])
    start = _now() - datetime.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([eku.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return {
        "tls.crt": cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        "tls.key": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii"),
    }


def tls_secret_values(existing, hosts, days=825):
    """Stored ``tls.crt``/``tls.key`` when they still cover ``hosts``, else new ones.

    ``existing`` is a k8s_info result, its ``resources`` list, a Secret or None."""
    if isinstance(existing, dict) and "resources" in existing:
        existing = existing["resources"]
    if isinstance(existing, list):
        existing = existing[0] if existing else None
    data = (existing or {}).get("data") or {}
    if data.get("tls.crt") and data.get("tls.key"):
        cert = base64.b64decode(data["tls.crt"]).decode("ascii")
        try:
            if _still_good(cert, hosts):
                return {"tls.crt": cert, "tls.key": base64.b64decode(data["tls.key"]).decode("ascii")}
        except ValueError:
            pass  # unreadable certificate: replace it
    return generate_self_signed(list(hosts), days)
