# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vault backend's KV version 2 entries, read and written by the plan in
the controller's process.

The login (token, AppRole or Kubernetes auth) is community.hashi_vault's
``vault_login``, run once per run by the plan action; with its token this
reads one entry per credential Secret through hvac, the library
community.hashi_vault itself drives. Reading here rather than with one
``vault_kv2_get`` task per entry keeps the plan one pass in one process:
the entries to read are only known once the roles' settings are templated,
and each module run would cost a Python process (docs/development.md,
"Why the phases are applied by neurallog.platform.apply")."""

from __future__ import annotations

from ansible_collections.neurallog.platform.plugins.module_utils import manifests as manifest_utils
from ansible_collections.neurallog.platform.plugins.module_utils.data_services import secret_data
from ansible_collections.neurallog.platform.plugins.module_utils.secrets_backend import kv_path

try:
    import hvac
    from hvac import exceptions as hvac_exceptions
except ImportError:  # pragma: no cover - reported when the vault backend is used
    hvac = None
    hvac_exceptions = None


class VaultStoreError(Exception):
    """Vault refused or could not be reached; the message names the setting."""


class VaultStore:
    """KV version 2 entries ``<path_prefix>/<namespace>/<name>`` of the
    engine mounted at ``kv_mount``."""

    def __init__(self, settings, token):
        if hvac is None:
            raise VaultStoreError("neurallog_secrets_backend=vault needs the Python library hvac on the controller "
                                  "(pip install hvac; requirements.txt lists it)")
        self.settings = settings
        self.mount = str(settings.get("kv_mount") or "secret").strip("/")
        self.prefix = settings.get("path_prefix") or ""
        verify = settings.get("ca_cert") or (settings.get("validate_certs", True) is not False)
        self.client = hvac.Client(url=settings["url"], token=token, verify=verify,
                                  namespace=settings.get("namespace") or None,
                                  timeout=int(settings.get("timeout") or 20))
        self.versions = {}   # path -> version read (0: no entry)

    def path(self, namespace, name):
        return kv_path(self.prefix, namespace, name)

    def _fail(self, what, path, exc):
        return VaultStoreError("Vault %s of %s/%s failed (neurallog_vault.url=%s, neurallog_vault.kv_mount=%s): %s: %s"
                               % (what, self.mount, path, self.settings.get("url"), self.mount,
                                  type(exc).__name__, exc))

    def read(self, namespace, name):
        """The entry's data (a dict) or None; its version is kept."""
        path = self.path(namespace, name)
        try:
            response = self.client.secrets.kv.v2.read_secret_version(path=path, mount_point=self.mount,
                                                                     raise_on_deleted_version=False)
        except hvac_exceptions.InvalidPath:
            self.versions[path] = 0
            return None
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise self._fail("read", path, exc)
        data = (response or {}).get("data") or {}
        metadata = data.get("metadata") or {}
        self.versions[path] = int(metadata.get("version") or 0)
        if metadata.get("deletion_time") or metadata.get("destroyed"):
            return None
        return dict(data.get("data") or {})

    def merged(self, namespace, name, stored):
        """The rule of the vault backend, for the platform's Secrets and the
        tenants' alike: ``(entry, secrets)`` where ``entry`` is the KV entry
        of ``namespace/name`` (or None) and ``secrets`` the Secret objects
        ``stored`` (read from the cluster) with Vault's values first; keys
        only the Secret has are adopted (a switch from the kubernetes
        backend rotates nothing)."""
        entry = self.read(namespace, name)
        data = dict(manifest_utils.first_object(stored).get("data") or {})
        data.update(secret_data(entry or {}))
        return entry, ([{"data": data}] if data else [])

    def pending_write(self, namespace, name, entry, keys, values):
        """The write back (path, data, check-and-set version) when the entry
        lacks or differs in one of ``keys`` from ``values`` (generated once,
        or adopted from the Secret); None when it holds them already."""
        if dict((key, (entry or {}).get(key)) for key in keys) == dict((key, values.get(key)) for key in keys):
            return None
        path = self.path(namespace, name)
        return {"path": path, "data": values, "cas": self.versions.get(path, 0)}

    def write(self, path, data, cas):
        """Write ``data`` as a new version of ``path``, only if the entry is
        still at version ``cas`` (0: only if it does not exist): a run never
        overwrites an entry another run or a person wrote meanwhile."""
        try:
            response = self.client.secrets.kv.v2.create_or_update_secret(path=path, secret=data, cas=cas,
                                                                         mount_point=self.mount)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise self._fail("write", path, exc)
        version = int(((response or {}).get("data") or {}).get("version") or 0)
        self.versions[path] = version
        return version

    def delete(self, path):
        """Delete the entry ``path``: its metadata and every version (an
        offboarded tenant's credentials, when purging)."""
        try:
            self.client.secrets.kv.v2.delete_metadata_and_all_versions(path=path, mount_point=self.mount)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise self._fail("delete", path, exc)
