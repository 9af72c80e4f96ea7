# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenID Connect filters (module_utils/oidc.py): the redirect URIs, the
configuration of the service that signs users in and the objects it reads.

Imports its module_utils inside the filters (docs/development.md)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError


def _oidc_redirect_uris(oidc, hosts, tls=True):
    from ansible_collections.neurallog.platform.plugins.module_utils.oidc import redirect_uris

    return redirect_uris(oidc or {}, list(hosts or []), bool(tls))


def _oidc_service_config(oidc, uris):
    from ansible_collections.neurallog.platform.plugins.module_utils.oidc import service_config

    if not (oidc or {}).get("enabled"):
        return {}
    return {oidc["service"]: dict(service_config(oidc, list(uris or [])), setting="neurallog_oidc.service")}


def _oidc_objects(oidc, namespace, labels=None, client_secret=""):
    """The CA bundle's ConfigMap and, when the value is given, the client
    secret's Secret (through the secrets backend helper)."""
    from ansible_collections.neurallog.platform.plugins.module_utils import oidc as oidc_utils
    from ansible_collections.neurallog.platform.plugins.module_utils.secrets_backend import secret_object

    oidc = oidc or {}
    if not oidc.get("enabled"):
        return []
    labels = dict(labels or {})
    out = []
    if oidc.get("ca_bundle"):
        out.append({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": oidc_utils.CA_CONFIGMAP, "namespace": namespace, "labels": labels},
                    "data": {oidc_utils.CA_KEY: oidc["ca_bundle"]}})
    if oidc.get("client_secret") and client_secret:
        if not isinstance(client_secret, str):
            raise AnsibleFilterError("neurallog_oidc_client_secret: must be a string")
        out.append(secret_object(oidc["client_secret"], namespace, client_secret, labels))
    return out


class FilterModule(object):
    """OpenID Connect helpers."""

    def filters(self):
        return {
            "oidc_redirect_uris": _oidc_redirect_uris,
            "oidc_service_config": _oidc_service_config,
            "oidc_objects": _oidc_objects,
        }
