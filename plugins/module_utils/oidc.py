# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenID Connect: the ``neurallog_oidc`` setting checked and normalised,
the identity provider's discovery document checked (controller side, before
anything changes), the redirect URIs, the configuration of the service that
signs users in (auth-service) and the one groups prefix.

Every error names the setting (``neurallog_oidc.<field>``) and says what was
found and what was expected. No secret passes through here: the client
secret stays in its Secret (module_utils/secrets_backend)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import re
import socket
import ssl
import tempfile

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import urlsplit
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError, SSLValidationError, open_url

from ansible_collections.neurallog.platform.plugins.module_utils.secrets_backend import (
    SecretRefError, secret_env, secret_ref)

SETTING = "neurallog_oidc"
DEFAULTS = {
    "enabled": False,
    "issuer": "",
    "client_id": "",
    "client_secret": {"name": "neurallog-oidc-client", "key": "client-secret"},
    "scopes": ["openid", "profile", "email"],
    "username_claim": "email",
    "username_prefix": "oidc:",
    "groups_claim": "groups",
    "groups_prefix": "oidc:",
    "ca_bundle": "",
    "pkce": True,
    "service": "auth-service",
    "redirect_path": "/auth/callback",
    "discovery_check": True,
    "discovery_timeout": 10,
}
# Where auth-service finds the CA bundle (a ConfigMap mounted read-only).
CA_CONFIGMAP = "neurallog-oidc-ca"
CA_KEY = "ca.crt"
CA_DIR = "/etc/neurallog/oidc"
CA_HASH_ANNOTATION = "neurallog.io/oidc-ca-sha256"
# Kubernetes' own groups and users: a prefix starting so would let the IdP
# hand out system:masters.
SYSTEM_PREFIX = "system:"
CLAIM = re.compile(r"^[A-Za-z0-9_.:/-]+$")
SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 scope-token


class OidcError(ValueError):
    """The setting or the provider is not right; the message names the setting."""


def _fail(field, problem):
    raise OidcError("%s.%s: %s" % (SETTING, field, problem) if field else "%s: %s" % (SETTING, problem))


def _bool(field, value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return value.lower() in ("true", "yes", "on", "1")
    _fail(field, "must be true or false, got %r" % (value,))


def _text(field, value, allow_empty=False):
    if value is None:
        value = ""
    if not isinstance(value, str):
        _fail(field, "must be a string, got %s" % type(value).__name__)
    if not allow_empty and not value:
        _fail(field, "is required when neurallog_oidc.enabled is true")
    if value != value.strip() or any(ch.isspace() for ch in value):
        _fail(field, "may not contain spaces, got %r" % value)
    return value


def _issuer(value):
    issuer = _text("issuer", value)
    parts = urlsplit(issuer)
    if parts.scheme != "https" or not parts.hostname:
        _fail("issuer", "must be an https:// URL (OpenID Connect Discovery requires TLS), got %r" % issuer)
    if parts.query or parts.fragment or "#" in issuer or "?" in issuer:
        _fail("issuer", "may not have a query or fragment, got %r" % issuer)
    return issuer


def _ca_bundle(value):
    if value is None:
        value = ""
    if not isinstance(value, str):
        _fail("ca_bundle", "must be PEM text (one or more certificates), got %s" % type(value).__name__)
    text = value.strip()
    if not text:
        return ""
    if "-----BEGIN CERTIFICATE-----" not in text:
        _fail("ca_bundle", "must be PEM certificates (-----BEGIN CERTIFICATE-----), not a file name or a key")
    try:
        ssl.create_default_context(cadata=text)
    except (ssl.SSLError, ValueError) as exc:
        _fail("ca_bundle", "is not a valid PEM certificate bundle: %s" % exc)
    return text + "\n"


def resolve(setting):
    """The normalised setting: DEFAULTS under ``setting``, every field
    checked (the client secret only as a reference). Disabled: the defaults
    with enabled false, other fields checked for type only."""
    if setting is None:
        setting = {}
    if not isinstance(setting, dict):
        _fail("", "must be a mapping (enabled, issuer, client_id, ...), got %s" % type(setting).__name__)
    unknown = sorted(set(setting) - set(DEFAULTS))
    if unknown:
        _fail("", "unknown key(s) %s; allowed: %s" % (", ".join(unknown), ", ".join(sorted(DEFAULTS))))
    merged = dict(DEFAULTS)
    merged.update(dict((k, v) for k, v in setting.items() if v is not None))
    out = {"enabled": _bool("enabled", merged["enabled"])}
    if not out["enabled"]:
        out.update((k, v) for k, v in DEFAULTS.items() if k != "enabled")
        out["groups_prefix"] = ""
        return out
    out["issuer"] = _issuer(merged["issuer"])
    out["client_id"] = _text("client_id", merged["client_id"])
    try:
        out["client_secret"] = secret_ref(SETTING + ".client_secret", merged["client_secret"], optional=True)
    except SecretRefError as exc:
        raise OidcError(str(exc))
    scopes = merged["scopes"]
    if isinstance(scopes, str):
        scopes = scopes.split()
    if not isinstance(scopes, list) or not scopes:
        _fail("scopes", "must be a non-empty list such as [openid, profile, email], got %r" % (merged["scopes"],))
    for index, scope in enumerate(scopes):
        if not isinstance(scope, str) or not SCOPE.fullmatch(scope):
            _fail("scopes[%d]" % index, "must be one scope name without spaces, got %r" % (scope,))
    if "openid" not in scopes:
        _fail("scopes", "must include openid (an OpenID Connect sign-in), got %s" % ", ".join(scopes))
    if len(set(scopes)) != len(scopes):
        _fail("scopes", "lists a scope twice: %s" % ", ".join(scopes))
    out["scopes"] = list(scopes)
    for field in ("username_claim", "groups_claim"):
        value = _text(field, merged[field])
        if not CLAIM.fullmatch(value):
            _fail(field, "must be a claim name (letters, digits, '_', '.', ':', '/', '-'), got %r" % value)
        out[field] = value
    for field in ("username_prefix", "groups_prefix"):
        value = _text(field, merged[field], allow_empty=True)
        if value.lower().startswith(SYSTEM_PREFIX):
            _fail(field, "may not start with 'system:' (Kubernetes' own users and groups), got %r" % value)
        out[field] = value
    out["ca_bundle"] = _ca_bundle(merged["ca_bundle"])
    out["pkce"] = _bool("pkce", merged["pkce"])
    if out["client_secret"] is None and not out["pkce"]:
        _fail("client_secret", "a public client (no client_secret.name) needs neurallog_oidc.pkce: true")
    out["service"] = _text("service", merged["service"])
    path = _text("redirect_path", merged["redirect_path"])
    if not path.startswith("/") or "?" in path or "#" in path:
        _fail("redirect_path", "must be a path starting with '/' (no query), got %r" % path)
    out["redirect_path"] = path
    out["discovery_check"] = _bool("discovery_check", merged["discovery_check"])
    timeout = merged["discovery_timeout"]
    if isinstance(timeout, bool) or not isinstance(timeout, (int, str)) or not str(timeout).isdigit() \
            or not 1 <= int(timeout) <= 120:
        _fail("discovery_timeout", "must be a number of seconds between 1 and 120, got %r" % (timeout,))
    out["discovery_timeout"] = int(timeout)
    return out


def groups_prefix(setting):
    """The prefix of every group name the IdP's groups claim becomes, in the
    tenants' RoleBindings as in kube-apiserver's --oidc-groups-prefix ("" when
    OIDC is off)."""
    return resolve(setting)["groups_prefix"]


def rbac_group(prefix, group):
    """The RBAC subject of the IdP group ``group``."""
    return "%s%s" % (prefix or "", group)


def redirect_uris(oidc, hosts, tls=True):
    """The redirect URIs to register at the IdP: one per host of the Ingress
    (and the OpenShift Routes, which have the same hosts), wildcard hosts left
    out (an IdP registers exact URIs)."""
    if not oidc.get("enabled"):
        return []
    scheme = "https" if tls else "http"
    out = []
    for host in hosts or []:
        host = str(host)
        if "*" in host:
            continue
        uri = "%s://%s%s" % (scheme, host, oidc["redirect_path"])
        if uri not in out:
            out.append(uri)
    return out


def service_config(oidc, uris):
    """The environment, volumes and pod annotations of the service that
    signs users in: {env, volumes, volume_mounts, annotations}."""
    if not oidc.get("enabled"):
        return {"env": [], "volumes": [], "volume_mounts": [], "annotations": {}}
    plain = [
        ("OIDC_ENABLED", "true"),
        ("OIDC_ISSUER_URL", oidc["issuer"]),
        ("OIDC_CLIENT_ID", oidc["client_id"]),
        ("OIDC_SCOPES", " ".join(oidc["scopes"])),
        ("OIDC_USERNAME_CLAIM", oidc["username_claim"]),
        ("OIDC_USERNAME_PREFIX", oidc["username_prefix"]),
        ("OIDC_GROUPS_CLAIM", oidc["groups_claim"]),
        ("OIDC_GROUPS_PREFIX", oidc["groups_prefix"]),
        ("OIDC_PKCE", "true" if oidc["pkce"] else "false"),
        ("OIDC_REDIRECT_URIS", ",".join(uris)),
    ]
    if oidc["pkce"]:
        plain.insert(-1, ("OIDC_PKCE_METHOD", "S256"))
    env = [{"name": name, "value": value} for name, value in plain]
    volumes, mounts, annotations = [], [], {}
    if oidc["client_secret"]:
        env.append(secret_env("OIDC_CLIENT_SECRET", oidc["client_secret"]))
    if oidc["ca_bundle"]:
        env.append({"name": "OIDC_CA_FILE", "value": "%s/%s" % (CA_DIR, CA_KEY)})
        volumes.append({"name": "oidc-ca", "configMap": {"name": CA_CONFIGMAP, "defaultMode": 0o444}})
        mounts.append({"name": "oidc-ca", "mountPath": CA_DIR, "readOnly": True})
        # a new CA rolls the pods (a mounted ConfigMap changes in place, but
        # the service reads it at start)
        annotations[CA_HASH_ANNOTATION] = hashlib.sha256(oidc["ca_bundle"].encode("utf-8")).hexdigest()
    return {"env": env, "volumes": volumes, "volume_mounts": mounts, "annotations": annotations}


# -- the discovery document ---------------------------------------------------

def discovery_url(issuer):
    """OpenID Connect Discovery 1.0, section 4: the issuer without its
    trailing slash, then /.well-known/openid-configuration."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


class FetchError(Exception):
    """A URL could not be read: ``tls`` tells a certificate problem apart."""

    def __init__(self, reason, tls=False, status=None):
        super(FetchError, self).__init__(reason)
        self.reason = reason
        self.tls = tls
        self.status = status


def _reason(exc):
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ssl.SSLCertVerificationError):
        return True, "certificate verify failed: %s" % (getattr(reason, "verify_message", None) or reason)
    if isinstance(reason, ssl.SSLError):
        return True, str(reason)
    if isinstance(reason, socket.timeout):
        return False, "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return False, reason.strerror.lower() if reason.strerror.endswith("refused") else reason.strerror
    return False, str(reason)


def fetch(url, timeout, ca_bundle=""):
    """GET ``url`` and return its body (bytes), trusting only ``ca_bundle``
    (PEM) when given, else the system's trust store; raises FetchError."""
    ca_path = None
    try:
        if ca_bundle:
            handle, ca_path = tempfile.mkstemp(prefix="neurallog-oidc-ca-", suffix=".pem")
            with os.fdopen(handle, "w") as out:
                out.write(ca_bundle)
        response = open_url(url, method="GET", timeout=timeout, ca_path=ca_path, follow_redirects="safe",
                            headers={"Accept": "application/json"}, use_netrc=False)
        return response.read()
    except HTTPError as exc:
        raise FetchError("HTTP %s %s" % (exc.code, exc.reason), status=exc.code)
    except SSLValidationError as exc:
        raise FetchError(str(exc), tls=True)
    except UrlsConnectionError as exc:
        raise FetchError(str(exc))
    except (URLError, OSError, ssl.SSLError) as exc:
        tls, reason = _reason(exc)
        raise FetchError(reason, tls=tls)
    finally:
        if ca_path:
            os.unlink(ca_path)


def _json(body):
    try:
        return json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
    except (ValueError, UnicodeDecodeError):
        return None


def _shorten(body, limit=80):
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    text = " ".join(text.split())
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


def _fetch_failure(oidc, url, exc, what):
    if exc.tls:
        if oidc["ca_bundle"]:
            return ("%s.ca_bundle: the TLS certificate of %s (%s) is not signed by the CA bundle given: %s; "
                    "expected the CA that issued the IdP's certificate" % (SETTING, url, what, exc.reason))
        return ("%s.ca_bundle: the TLS certificate of %s (%s) is not trusted by the system's CA store: %s; "
                "set neurallog_oidc.ca_bundle to the IdP's CA (PEM)" % (SETTING, url, what, exc.reason))
    return "%s.issuer: %s (%s) could not be fetched: %s" % (SETTING, url, what, exc.reason)


def check_discovery(oidc, fetcher=None):
    """Fetch the discovery document of ``oidc`` (resolved) and its JWKS and
    check them: the issuer byte for byte, a JWKS at jwks_uri, the scopes,
    S256 when PKCE is on. Returns a summary {issuer, jwks_uri, keys,
    authorization_endpoint}; raises OidcError naming the setting."""
    fetcher = fetcher or fetch
    url = discovery_url(oidc["issuer"])
    timeout = oidc["discovery_timeout"]
    try:
        body = fetcher(url, timeout, oidc["ca_bundle"])
    except FetchError as exc:
        raise OidcError(_fetch_failure(oidc, url, exc, "the discovery document"))
    document = _json(body)
    if not isinstance(document, dict):
        raise OidcError("%s.issuer: %s answered %s, expected the discovery document (a JSON object)"
                        % (SETTING, url, _shorten(body)))
    found = document.get("issuer")
    if found != oidc["issuer"]:
        hint = ""
        if isinstance(found, str) and found.rstrip("/") == oidc["issuer"].rstrip("/"):
            hint = " (only the trailing slash differs, and it counts: coreos/go-oidc #423)"
        raise OidcError("%s.issuer: the discovery document at %s names the issuer %r, expected %r; they must match "
                        "byte for byte%s: set neurallog_oidc.issuer to the document's issuer"
                        % (SETTING, url, found, oidc["issuer"], hint))
    problems = []
    jwks_uri = document.get("jwks_uri")
    keys = 0
    if not isinstance(jwks_uri, str) or not jwks_uri.startswith("https://"):
        problems.append("%s.issuer: the discovery document at %s has jwks_uri %r, expected an https:// URL"
                        % (SETTING, url, jwks_uri))
    else:
        try:
            jwks = _json(fetcher(jwks_uri, timeout, oidc["ca_bundle"]))
            if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
                problems.append("%s.issuer: jwks_uri %s answered %s, expected a JSON Web Key Set with at least one "
                                "key ({\"keys\": [...]})" % (SETTING, jwks_uri,
                                                             "no JSON" if jwks is None else _shorten(json.dumps(jwks))))
            else:
                keys = len(jwks["keys"])
        except FetchError as exc:
            problems.append(_fetch_failure(oidc, jwks_uri, exc, "jwks_uri of the discovery document"))
    supported = document.get("scopes_supported")
    if isinstance(supported, list):
        missing = [scope for scope in oidc["scopes"] if scope not in supported]
        if missing:
            problems.append("%s.scopes: %s not in the provider's scopes_supported (%s)"
                            % (SETTING, ", ".join(missing), ", ".join(str(s) for s in supported)))
    if oidc["pkce"]:
        methods = document.get("code_challenge_methods_supported")
        if not isinstance(methods, list) or "S256" not in methods:
            problems.append("%s.pkce: is true but the provider's code_challenge_methods_supported is %s, expected a "
                            "list holding S256 (RFC 8414: omitted means no PKCE); set neurallog_oidc.pkce: false "
                            "only for a provider without PKCE"
                            % (SETTING, "absent" if methods is None else json.dumps(methods)))
    if problems:
        raise OidcError("; ".join(problems))
    return {"issuer": found, "jwks_uri": jwks_uri, "keys": keys,
            "authorization_endpoint": document.get("authorization_endpoint", "")}
