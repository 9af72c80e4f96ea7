# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of neurallog.platform.tenant_plan (documented in
plugins/modules/tenant_plan.py): the plan of any number of tenants, in one
process, on the engine's building blocks (plugin_utils/cluster.py's Cluster,
module_utils/manifests' stamp and comparison, module_utils/tenant.py for the
tenants themselves)."""

from __future__ import annotations

import base64
import os

import yaml

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.neurallog.platform.plugins.action.plan import (
    GITOPS_NO_SECRETS, ROLES_DIR, _folder, _unlink, _write, backend_problems, present_layers, required_secrets_text,
    vault_login, write_files, write_render)
from ansible_collections.neurallog.platform.plugins.module_utils import secrets_backend as backend_utils
from ansible_collections.neurallog.platform.plugins.module_utils import gitops as gitops_utils
from ansible_collections.neurallog.platform.plugins.module_utils import manifests as manifest_utils
from ansible_collections.neurallog.platform.plugins.module_utils import openshift as openshift_utils
from ansible_collections.neurallog.platform.plugins.module_utils import tenant as tenant_utils
from ansible_collections.neurallog.platform.plugins.plugin_utils.cluster import Cluster, ClusterError
from ansible_collections.neurallog.platform.plugins.plugin_utils.controller_action import ControllerAction
from ansible_collections.neurallog.platform.plugins.plugin_utils.reconcile import PlanError
from ansible_collections.neurallog.platform.plugins.plugin_utils.vault_store import VaultStoreError

# The tenant's credential in the secrets backend: the Redis Secret's password
# (auth.conf and url are made from it), entry <prefix>tenant-<id>/redis-credentials.
CREDENTIAL_KEYS = ["password"]


class ActionModule(ControllerAction):
    NAME = "tenant_plan"

    def _var(self, task_vars, name, default=None):
        return self._templar.template(task_vars[name]) if name in task_vars else default

    def settings(self, task_vars):
        """The tenant settings from the task's variables (the role's
        defaults under the inventory's values), named as module_utils/tenant
        names them (ROLE_SETTINGS)."""
        settings = {}
        defaults = tenant_utils.DEFAULT_SETTINGS
        for setting, (_role, variable) in tenant_utils.ROLE_SETTINGS.items():
            if variable in task_vars:
                value = self._var(task_vars, variable)
                # a switch given as text (-e neurallog_tenant_data_access=true)
                # means what the module's bool option made of it
                if isinstance(defaults.get(setting), bool) and isinstance(value, str):
                    try:
                        value = boolean(value, strict=True)
                    except TypeError:
                        pass  # the validation names the setting
                settings[setting] = value
        refs = self._var(task_vars, "neurallog_image_refs", {}) or {}
        settings["redis_image"] = refs.get("redis", "")
        return settings

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self.validated_args()
        task_vars = task_vars or {}
        check_mode = bool(self._task.check_mode)
        render_dir = str(self._var(task_vars, "neurallog_render_dir", "") or "")
        tenants = args["tenants"]
        cluster = None
        gitops = gitops_utils.settings_from(dict(
            (name, self._var(task_vars, name)) for name in (
                "neurallog_gitops", "neurallog_gitops_repo_url", "neurallog_gitops_revision", "neurallog_gitops_path",
                "neurallog_gitops_namespace", "neurallog_gitops_project", "neurallog_gitops_interval",
                "neurallog_gitops_prune", "neurallog_common_labels") if name in task_vars))
        try:
            gitops_utils.validate(gitops, render_dir)
        except gitops_utils.GitOpsSettingError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        try:
            if args["purge_credentials"]:
                result.update(self._purge(args["purge_credentials"], task_vars, check_mode))
                return result
            if not render_dir:
                cluster = Cluster(self._var(task_vars, "neurallog_kubeconfig") or None,
                                  self._var(task_vars, "neurallog_context") or None, timeout=args["timeout"])
            result.update(self._plan(cluster, render_dir, tenants, args, task_vars, check_mode, gitops))
        except tenant_utils.TenantError as exc:
            result.update(failed=True, msg="Invalid tenant settings: %s" % exc, errors=exc.errors)
        except (ClusterError, VaultStoreError) as exc:
            result.update(failed=True, msg=str(exc))
        except PlanError as exc:
            result.update(failed=True, msg=str(exc))
        result["requests"] = cluster.requests if cluster else 0
        return result

    def _plan(self, cluster, render_dir, tenants, args, task_vars, check_mode, gitops):
        out = {"changed": False}
        namespaces, secrets = [], []
        if cluster is not None:
            # One list per kind: the tenant namespaces (ownership, the prune
            # check, check mode) and the tenants' Secrets (stored passwords).
            namespaces = cluster.list("v1", "Namespace", None, tenant_utils.TENANT_NAMESPACE_SELECTOR)
            if args["undeclared"]:
                prune = tenant_utils.prune_check(tenant_utils.declared_ids(tenants), namespaces, args["prune"],
                                                 args["prune_threshold"], args["prune_confirm"])
                out["prune"] = prune
                if prune["refusal"]:
                    out.update(failed=True, msg=prune["refusal"])
                    return out
        settings = self.settings(task_vars)
        try:
            settings["openshift"], detected = openshift_utils.resolve(
                settings.get("openshift", "auto"), cluster.served if cluster is not None else None)
        except openshift_utils.OpenShiftSettingError as exc:
            out.update(failed=True, msg=str(exc))
            return out
        if settings["openshift"] and detected is False:
            out.update(failed=True, msg=openshift_utils.missing_message(task_vars.get("neurallog_openshift")))
            return out
        valid = tenant_utils.validate_tenants(tenants, settings)
        ids = [tenant["id"] for tenant in valid]
        backend, backend_settings = self._backend(cluster, task_vars)
        vault = vault_login(backend_settings, self._loader, self._templar) if backend == "vault" else None
        if backend == "external-secrets":
            secrets = []   # no secret value passes through Ansible
        elif cluster is not None:
            secrets = cluster.list("v1", "Secret", None, tenant_utils.live_selector(ids)) if ids else []
        else:
            secrets = manifest_utils.rendered_secrets(render_dir, name=tenant_utils.REDIS_SECRET)
        placeholders = backend_utils.Placeholders()
        passwords, entries = tenant_passwords(valid, backend, secrets, vault, placeholders)
        built = tenant_utils.build_resources(tenants, settings, passwords=passwords, existing_secrets=secrets,
                                             live_namespaces=namespaces)
        writes = vault_write_backs(vault, entries, built["resources"]) if vault is not None else []
        if writes and not check_mode:
            # generated once, written back (check-and-set) before anything is applied
            for write in writes:
                vault.write(write["path"], write["data"], write["cas"])
        if backend == "external-secrets":
            built["resources"] = backend_utils.external_objects(
                built["resources"], placeholders, backend_settings, settings.get("common_labels") or {})
        out.update(
            secrets_backend=backend,
            vault_written=[write["path"] for write in writes] if not check_mode else [],
            vault_versions=dict(vault.versions) if vault is not None else {},
            external_secrets=backend_utils.required_remote_entries(
                [obj for obj in built["resources"] if obj.get("kind") == "ExternalSecret"]),
            tenants=built["tenants"],
            namespaces=[ns for tenant in built["tenants"] for ns in tenant["namespaces"]],
            generated_passwords=built["generated_passwords"],
            objects=len(built["resources"]) + len(built["admission_resources"]),
            phases=[], new_namespaces=[], pending=0, rendered=[],
        )
        if cluster is None:
            if not check_mode:
                secrets_mode = self._var(task_vars, "neurallog_render_secrets", "file") or "file"
                if gitops["tool"] != "none":
                    out["rendered"] = write_gitops_tenants(built, tenants, render_dir, gitops)
                else:
                    out["rendered"] = write_render(tenant_utils.render_groups(built), render_dir, secrets_mode)
                out["changed"] = bool(out["rendered"])
            return out
        everything = built["admission_resources"] + built["resources"]
        groups = []
        if args["compare"]:
            for api_version, kind, selector in tenant_utils.live_reads(everything, ids):
                items = namespaces if kind == "Namespace" else cluster.list(api_version, kind, None, selector)
                groups.append({"kind": kind, "items": items})
        planned = tenant_utils.pending_phases(
            built, groups, compare=args["compare"], wait_timeout=args["wait_timeout"] if args["wait"] else None,
            existing_namespaces=[ns["metadata"]["name"] for ns in namespaces] if check_mode else None)
        out.update(planned)
        out["pending"] = sum(len(phase["objects"]) + len(phase["secrets"]) for phase in planned["phases"])
        return out

    def _purge(self, tenant_ids, task_vars, check_mode):
        """Offboarding with purge: the tenants' credentials entries deleted
        from Vault (the other backends hold nothing of theirs to delete)."""
        backend, backend_settings = self._backend(None, task_vars)
        out = {"changed": False, "secrets_backend": backend, "vault_deleted": []}
        if backend != "vault":
            return out
        vault = vault_login(backend_settings, self._loader, self._templar)
        for tenant_id in tenant_ids:
            root = "tenant-%s" % tenant_id
            if vault.read(root, tenant_utils.REDIS_SECRET) is None and not vault.versions.get(vault.path(
                    root, tenant_utils.REDIS_SECRET)):
                continue
            if not check_mode:
                vault.delete(vault.path(root, tenant_utils.REDIS_SECRET))
            out["vault_deleted"].append(vault.path(root, tenant_utils.REDIS_SECRET))
        out["changed"] = bool(out["vault_deleted"])
        return out

    def _backend(self, cluster, task_vars):
        """``neurallog_secrets_backend`` and its settings (``neurallog_vault``
        or ``neurallog_external_secrets``, the keys given over roles/globals'
        defaults), checked as site.yml's plan checks them (plan.py
        backend_problems): PlanError naming the setting, before any change."""
        backend = str(self._var(task_vars, "neurallog_secrets_backend", "kubernetes") or "kubernetes")
        name = {"vault": "neurallog_vault", "external-secrets": "neurallog_external_secrets"}.get(backend)
        settings = {}
        if name:
            with open(os.path.join(ROLES_DIR, "globals", "defaults", "main.yml")) as handle:
                settings = dict(yaml.safe_load(handle).get(name) or {})
            settings.update(self._var(task_vars, name, {}) or {})
        try:
            problems = backend_problems(backend, settings, settings, cluster)
        except backend_utils.SecretRefError as exc:
            problems = [str(exc)]
        if problems:
            raise PlanError("Invalid secrets backend settings (nothing was changed):\n- " + "\n- ".join(problems))
        return backend, settings


def tenant_passwords(valid, backend, secrets, vault, placeholders):
    """The Redis password of each tenant (normalised, Redis on) that the
    backend decides, for build_resources' ``passwords``, and the Vault
    entries read (tenant id -> (root namespace, entry)). external-secrets: a
    placeholder (the Secret becomes an ExternalSecret reading
    ``<key_prefix>tenant-<id>/redis-credentials``, property ``password``);
    vault: the entry's value first, else the Secret's (VaultStore.merged,
    the platform's rule); else none here (the Secret's or a new one)."""
    passwords, entries = {}, {}
    for tenant in valid:
        if not tenant["redis"]["enabled"]:
            continue
        root = tenant["namespaces"][0][0]
        if backend == "external-secrets":
            passwords[tenant["id"]] = placeholders.value(root, tenant_utils.REDIS_SECRET, "password")
        elif vault is not None:
            stored = [obj for obj in secrets if (obj.get("metadata") or {}).get("namespace") == root
                      and (obj.get("metadata") or {}).get("name") == tenant_utils.REDIS_SECRET]
            entry, merged = vault.merged(root, tenant_utils.REDIS_SECRET, stored)
            entries[tenant["id"]] = (root, entry)
            passwords[tenant["id"]] = _decoded(merged, "password")
    return passwords, entries


def vault_write_backs(vault, entries, resources):
    """The entries to write back (VaultStore.pending_write): each tenant
    whose entry lacks the password its Secret is made with (generated once,
    or adopted from the Secret)."""
    writes = []
    for tenant_id, (root, entry) in sorted(entries.items()):
        made = [obj for obj in resources if obj["kind"] == "Secret" and obj["metadata"]["namespace"] == root
                and obj["metadata"]["name"] == tenant_utils.REDIS_SECRET]
        write = vault.pending_write(root, tenant_utils.REDIS_SECRET, entry, CREDENTIAL_KEYS,
                                    {"password": _decoded(made, "password")})
        if write:
            writes.append(write)
    return writes


def _decoded(secrets, key):
    """The value of ``key`` in the first of ``secrets`` (base64 data), or None."""
    encoded = (manifest_utils.first_object(secrets).get("data") or {}).get(key)
    return base64.b64decode(encoded).decode("utf-8") if encoded else None


def write_gitops_tenants(built, tenants, render_dir, gitops):
    """GitOps render of tenants (module_utils/gitops.py): per tenant
    tenants/<id>/tenant.yaml (the tenant as declared: what the Argo CD
    ApplicationSet's git files generator reads) and tenants/<id>/manifests/
    (its objects), the shared admission policies in tenants/admission/, the
    tenants' Secrets only listed (required-secrets/tenant-<id>.txt), and
    gitops/apps/tenants.yaml. Other tenants' folders are kept (onboarding
    one tenant renders only its own). Returns the paths written or removed."""
    changed = []
    _folder(render_dir, 0o750, changed)
    _folder(os.path.join(render_dir, "required-secrets"), 0o750, changed)
    stamped = dict(built, resources=manifest_utils.stamp_applied_hash(built["resources"]),
                   admission_resources=manifest_utils.stamp_applied_hash(built["admission_resources"]))
    plain = dict(stamped, resources=[o for o in stamped["resources"] if o.get("kind") != "Secret"])
    write_files(render_dir, gitops_utils.tenant_groups(plain, built["tenants"]), changed)
    declared = dict((str(t.get("id")), t) for t in tenants if isinstance(t, dict))
    for summary in built["tenants"]:
        tenant_id = summary["id"]
        folder = os.path.join(render_dir, gitops_utils.TENANTS_DIR, tenant_id)
        _write(os.path.join(folder, gitops_utils.TENANT_FILE),
               manifest_utils.to_manifest_stream([declared.get(tenant_id, {"id": tenant_id})]),
               0o640, changed)
        secrets = [o for o in stamped["resources"] if o.get("kind") == "Secret"
                   and ((o.get("metadata") or {}).get("labels") or {}).get("tenant") == tenant_id]
        required = os.path.join(render_dir, "required-secrets", "tenant-%s.txt" % tenant_id)
        if secrets:
            _write(required, required_secrets_text("tenant " + tenant_id, secrets, GITOPS_NO_SECRETS), 0o640, changed)
        else:
            _unlink(required, changed)
    base = os.path.join(render_dir, gitops_utils.TENANTS_DIR)
    ids = sorted(name for name in os.listdir(base)
                 if os.path.isfile(os.path.join(base, name, gitops_utils.TENANT_FILE)))
    write_files(render_dir, {gitops_utils.APPS_DIR + "/tenants.yaml": gitops_utils.tenant_objects(
        gitops, ids, gitops_utils.first_layer_app(present_layers(render_dir)))}, changed)
    return changed
