# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of neurallog.platform.plan (documented in
plugins/modules/plan.py); the engine is plugins/plugin_utils/reconcile.py."""

from __future__ import annotations

import datetime
import glob
import os
import stat

import yaml

from ansible.errors import AnsibleError
from ansible.plugins.loader import lookup_loader

from ansible_collections.neurallog.platform.plugins.action.run_lock import default_holder
from ansible_collections.neurallog.platform.plugins.module_utils import gitops as gitops_utils
from ansible_collections.neurallog.platform.plugins.module_utils import manifests as manifest_utils
from ansible_collections.neurallog.platform.plugins.module_utils import oidc as oidc_utils
from ansible_collections.neurallog.platform.plugins.module_utils import openshift as openshift_utils
from ansible_collections.neurallog.platform.plugins.module_utils import run_lock as lock_utils
from ansible_collections.neurallog.platform.plugins.module_utils import secrets_backend as backend_utils
from ansible_collections.neurallog.platform.plugins.module_utils import undeclared as undeclared_utils
from ansible_collections.neurallog.platform.plugins.plugin_utils.compile_cache import CompileCache
from ansible_collections.neurallog.platform.plugins.plugin_utils.cluster import Cluster, ClusterError, ClusterLeaseStore
from ansible_collections.neurallog.platform.plugins.plugin_utils.reconcile import MANAGED_SELECTOR, Plan, PlanError
from ansible_collections.neurallog.platform.plugins.plugin_utils.controller_action import ControllerAction
from ansible_collections.neurallog.platform.plugins.plugin_utils.vault_store import VaultStore, VaultStoreError


ROLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "roles")


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _version_tuple(text):
    return tuple(int(part) for part in str(text).split(".")[:2])


def preflight(plan, discovery=True):
    """The OIDC setting, the cluster checks (Kubernetes version, optional
    APIs, StorageClass), then the OIDC client Secret and the identity
    provider's discovery document (``discovery``)."""
    try:
        oidc = oidc_utils.resolve(plan.value(plan.variables.get("neurallog_oidc")))
    except oidc_utils.OidcError as exc:
        raise PlanError(str(exc))
    plan.facts["oidc_settings"] = oidc
    plan.facts["_oidc_client_secret"] = ""
    _cluster_preflight(plan)
    if oidc["enabled"]:
        oidc_preflight(plan, oidc, discovery)


def oidc_preflight(plan, oidc, discovery=True):
    """OIDC: the client secret is in the secrets backend (or given), and the
    provider's discovery document passes module_utils/oidc's checks. Sets
    the private fact ``_oidc_client_secret``: the value the client Secret is
    written with ("" when the user's own Secret stays as it is)."""
    given = plan.value(plan.variables.get("neurallog_oidc_client_secret", "")) or ""
    ref = oidc["client_secret"]
    if ref:
        plan.facts["_oidc_client_secret"] = oidc_client_secret(plan, ref, given)
    if discovery and oidc["discovery_check"]:
        try:
            oidc_utils.check_discovery(oidc)
        except oidc_utils.OidcError as exc:
            raise PlanError("OIDC preflight, nothing changed: %s" % exc)


def oidc_client_secret(plan, ref, given):
    """The value of OIDC's client Secret per secrets backend
    (module_utils/secrets_backend.py); PlanError naming the setting when it
    is nowhere."""
    namespace = plan.value(plan.variables["neurallog_namespace_system"])
    backend = plan.secrets_backend
    if backend == "external-secrets":
        key = backend_utils.remote_key(plan.external_secrets.get("key_prefix", ""), namespace, ref["name"])
        if given:
            raise PlanError(
                "OIDC preflight, nothing changed: neurallog_oidc_client_secret must be empty with "
                "neurallog_secrets_backend=external-secrets (no secret value passes through Ansible): put the "
                "client secret in the external store under %s, property %s; the ExternalSecret %s/%s reads it"
                % (key, ref["key"], namespace, ref["name"]))
        # a placeholder: the Secret becomes an ExternalSecret reading that entry
        return plan.placeholders.value(namespace, ref["name"], ref["key"])
    if backend == "vault":
        if plan.vault is None:
            # the kinds only (no login): any value makes the Secret
            return plan.placeholders.value(namespace, ref["name"], ref["key"])
        entry = plan.vault.read(namespace, ref["name"])
        path = plan.vault.path(namespace, ref["name"])
        stored = backend_utils.stored_value(ref, entry, backend)
        if given and given != stored:
            # the given value is written back once, like a generated credential
            plan.vault_writes.append({"path": path, "data": dict(entry or {}, **{ref["key"]: given}),
                                      "cas": plan.vault.versions.get(path, 0)})
            return given
        if stored is None:
            raise PlanError(
                "OIDC preflight, nothing changed: neurallog_oidc.client_secret: the Vault entry %s/%s has no key %s "
                "holding the client secret; write it (bao kv put -mount=%s %s %s=<secret>) or set "
                "neurallog_oidc_client_secret (Ansible Vault) and the run writes it"
                % (plan.vault.mount, path, ref["key"], plan.vault.mount, path, ref["key"]))
        return stored
    if given:
        return given
    if plan.cluster is not None:
        stored = plan.read_objects("Secret", namespace=namespace, name=ref["name"])
        if backend_utils.stored_value(ref, stored) is None:
            raise PlanError(
                "OIDC preflight, nothing changed: neurallog_oidc.client_secret: found %s, expected the Secret %s/%s with the key %s holding the "
                "client secret; create it (kubectl -n %s create secret generic %s --from-file=%s=<file>) or set "
                "neurallog_oidc_client_secret (Ansible Vault) and the run writes it"
                % ("no Secret" if not stored else "no key %s in it" % ref["key"], namespace, ref["name"], ref["key"],
                   namespace, ref["name"], ref["key"]))
    return ""


def _cluster_preflight(plan):
    """The cluster checks: Kubernetes version, optional APIs, StorageClass."""
    overrides = plan.value(plan.variables["preflight_capability_overrides"]) or {}
    forced = dict((key, value) for key, value in overrides.items() if value is not None)
    setting = plan.value(plan.variables.get("neurallog_openshift", "auto"))
    try:
        openshift_utils.forced(setting)
    except openshift_utils.OpenShiftSettingError as exc:
        raise PlanError(str(exc))
    if plan.cluster is None:
        capabilities = dict(plan.value(plan.variables["preflight_render_capabilities"]) or {})
        capabilities.update(forced)
        # render mode: OpenShift only when neurallog_openshift says so (or,
        # for the list of kinds, every optional API assumed on)
        capabilities["openshift"] = bool(capabilities.get("openshift")) if openshift_utils.forced(setting) is None \
            else openshift_utils.forced(setting)
        plan.facts.update(preflight_kubernetes_version="", preflight_capabilities=capabilities)
        return
    version = plan.cluster.version()
    minor = "".join(ch for ch in str(version.get("minor", "")) if ch.isdigit())
    server = "%s.%s" % (version.get("major"), minor)
    # the optional APIs and the kind that proves each (roles/preflight/vars)
    apis = plan.value(plan.variables["_preflight_capability_apis"])
    detected = dict((name, plan.cluster.served(api["api"], api["kind"])) for name, api in apis.items())
    capabilities = dict(detected)
    capabilities.update(forced)
    capabilities["openshift"], detected["openshift"] = openshift_utils.resolve(setting, plan.cluster.served)
    minimum = str(plan.value(plan.variables["preflight_min_kubernetes_version"]))
    missing = [name for name, on in capabilities.items() if on and not detected.get(name) and name != "openshift"]
    problems = []
    if capabilities["openshift"] and not detected["openshift"]:
        problems.append(openshift_utils.missing_message(setting))
    if _version_tuple(server) < _version_tuple(minimum):
        problems.append("Kubernetes %s is older than preflight_min_kubernetes_version (%s)." % (server, minimum))
    if missing:
        problems.append("preflight_capability_overrides turns on %s but the cluster lacks %s." % (
            ", ".join(missing), ", ".join("%s %s" % (apis[name]["api"], apis[name]["kind"]) for name in missing)))
    if problems:
        raise PlanError("Cluster not supported: " + " ".join(problems))
    classes = plan.cluster.list("storage.k8s.io/v1", "StorageClass")
    names = [c["metadata"]["name"] for c in classes]
    defaults = [c for c in classes if ((c["metadata"].get("annotations") or {})
                                       .get("storageclass.kubernetes.io/is-default-class") == "true")]
    wanted = plan.value(plan.variables["neurallog_storage_class"]) or ""
    if (wanted and wanted not in names) or (not wanted and not defaults):
        raise PlanError("StorageClass check: %s; available: %s." % (
            ("neurallog_storage_class is '%s' but the cluster has no such StorageClass" % wanted) if wanted else
            "neurallog_storage_class is empty and the cluster has no default StorageClass", ", ".join(names) or "none"))
    plan.facts.update(preflight_kubernetes_version=server, preflight_capabilities=capabilities)


def _backend_setting(plan, name):
    """A dict setting of the secrets backend: the keys given, the others
    from roles/globals' defaults."""
    merged = dict(plan.value(plan.roles["globals"].defaults.get(name) or {}))
    merged.update(plan.value(plan.variables.get(name) or {}) or {})
    return merged


def backend_problems(backend, vault_settings, external_settings, cluster):
    """What is wrong with the secrets backend's settings (messages naming
    the setting), for site.yml's plan and the tenants' alike: the backend
    itself (SecretRefError), ``neurallog_vault`` with vault,
    ``neurallog_external_secrets`` and the cluster's ExternalSecret API with
    external-secrets (``cluster`` None: render mode, not asked)."""
    backend_utils.check_backend(backend)
    if backend == "vault":
        return backend_utils.vault_settings_problems(vault_settings)
    if backend == "external-secrets":
        problems = backend_utils.external_secrets_problems(external_settings)
        if cluster is not None and not cluster.served(backend_utils.EXTERNAL_SECRETS_API, "ExternalSecret"):
            problems.append("neurallog_secrets_backend=external-secrets needs the External Secrets Operator's CRDs "
                            "(%s ExternalSecret), which the cluster does not serve" % backend_utils.EXTERNAL_SECRETS_API)
        return problems
    return []


def vault_login(settings, loader, templar):
    """Log in once (community.hashi_vault's vault_login lookup: token,
    AppRole, or Kubernetes auth through its jwt method on the kubernetes
    mount) and return the KV store with the token (``settings``:
    ``neurallog_vault`` with the defaults). PlanError naming the setting."""
    method = settings.get("auth_method") or "token"
    options = {"url": settings["url"], "timeout": int(settings.get("timeout") or 20)}
    if settings.get("ca_cert"):
        options["ca_cert"] = settings["ca_cert"]
    if settings.get("namespace"):
        options["namespace"] = settings["namespace"]
    if settings.get("validate_certs") is False:
        options["validate_certs"] = False
    if method == "token":
        options.update(auth_method="token", token=settings["token"], token_validate=True)
        named = "neurallog_vault.token"
    elif method == "approle":
        options.update(auth_method="approle", role_id=settings["role_id"], secret_id=settings["secret_id"])
        named = "neurallog_vault.role_id/secret_id"
    else:
        jwt_file = settings.get("kubernetes_jwt_file") or "/var/run/secrets/kubernetes.io/serviceaccount/token"
        try:
            with open(jwt_file) as handle:
                jwt = handle.read().strip()
        except OSError as exc:
            raise PlanError("neurallog_vault.kubernetes_jwt_file: cannot read %s (%s)" % (jwt_file, exc))
        options.update(auth_method="jwt", role_id=settings["kubernetes_role"], jwt=jwt)
        named = "neurallog_vault.kubernetes_role/kubernetes_jwt_file"
    if settings.get("auth_mount"):
        options["mount_point"] = settings["auth_mount"]
    elif method == "kubernetes":
        options["mount_point"] = "kubernetes"
    login = lookup_loader.get("community.hashi_vault.vault_login", loader=loader, templar=templar)
    if login is None:
        raise PlanError("neurallog_secrets_backend=vault needs the collection community.hashi_vault")
    try:
        response = login.run([], variables={}, **options)[0]
    except Exception as exc:  # pylint: disable=broad-exception-caught
        raise PlanError("Vault refused the login at %s (neurallog_vault.auth_method=%s; check %s): %s "
                        "Nothing was changed." % (settings["url"], method, named, " ".join(str(exc).split()).rstrip(".") + "."))
    token = ((response or {}).get("auth") or {}).get("client_token")
    if not token:
        raise PlanError("Vault at %s returned no token (neurallog_vault.auth_method=%s; check %s). Nothing was "
                        "changed." % (settings["url"], method, named))
    return VaultStore(settings, token)


GITOPS_NO_SECRETS = "neurallog_gitops writes no Secret"


def gitops_settings(plan, render_dir):
    """The neurallog_gitops settings, checked (PlanError naming the
    setting) before anything is written."""
    names = ["neurallog_gitops", "neurallog_gitops_repo_url", "neurallog_gitops_revision", "neurallog_gitops_path",
             "neurallog_gitops_namespace", "neurallog_gitops_project", "neurallog_gitops_interval",
             "neurallog_gitops_prune", "neurallog_common_labels"]
    settings = gitops_utils.settings_from(dict((n, plan.value(plan.variables[n])) for n in names if n in plan.variables))
    try:
        gitops_utils.validate(settings, render_dir)
    except gitops_utils.GitOpsSettingError as exc:
        raise PlanError(str(exc))
    return settings


def _write(path, content, mode, changed):
    """Write ``content`` to ``path`` with ``mode`` unless it holds it already."""
    old = None
    if os.path.exists(path):
        with open(path) as handle:
            old = handle.read()
    if old != content:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        changed.append(path)
    if stat.S_IMODE(os.stat(path).st_mode) != mode:
        os.chmod(path, mode)
        if path not in changed:
            changed.append(path)


def _folder(path, mode, changed):
    if not os.path.isdir(path):
        os.makedirs(path, mode)
        changed.append(path)
    if stat.S_IMODE(os.stat(path).st_mode) != mode:
        os.chmod(path, mode)


def _unlink(path, changed):
    if os.path.exists(path):
        os.unlink(path)
        changed.append(path)


def required_secrets_text(name, secrets, why="neurallog_render_secrets=none"):
    """The list of the Secrets ``name`` needs and that were not rendered
    (``why``): namespace/name (type): keys, no value."""
    lines = ["# Secrets %s needs and that were not rendered (%s):" % (name, why),
             "# create them, under these names, before applying (kubectl, External Secrets, Sealed "
             "Secrets, ...)."]
    for secret in secrets:
        keys = sorted(set(list((secret.get("data") or {}).keys()) + list((secret.get("stringData") or {}).keys())))
        lines.append("%s/%s (%s): %s" % (secret["metadata"].get("namespace"), secret["metadata"]["name"],
                                         secret.get("type") or "Opaque", ", ".join(keys)))
    return "\n".join(lines) + "\n"


def render(plan, render_dir, secrets_mode, gitops=None):
    """Write each selected role's objects to <dir>/<role>.yaml, its Secrets to
    <dir>/secrets/<role>.yaml (0700/0600) or, with secrets_mode none, the list
    of Secrets the user provides to <dir>/required-secrets/<role>.txt. With
    ``gitops`` (neurallog_gitops argocd or flux) the layer folders and the
    tool's objects instead (write_gitops)."""
    if gitops and gitops["tool"] != "none":
        return write_gitops([(name, plan.roles[name].phase, plan.objects.get(name, [])) for name in plan.selected],
                            render_dir, gitops)
    return write_render([(name, plan.objects.get(name, [])) for name in plan.selected], render_dir, secrets_mode)


def write_render(groups, render_dir, secrets_mode):
    """render() of ``groups``, a list of (name, objects): the files are named
    after each group. Returns the paths written or removed."""
    changed = []
    folders = [(render_dir, 0o750), (os.path.join(render_dir, "secrets"), 0o700) if secrets_mode == "file"
               else (os.path.join(render_dir, "required-secrets"), 0o750)]
    for folder, mode in folders:
        _folder(folder, mode, changed)
    for name, group in groups:
        stamped = manifest_utils.stamp_applied_hash(group)
        objects = [o for o in stamped if o.get("kind") != "Secret"]
        secrets = [o for o in stamped if o.get("kind") == "Secret"]
        paths = {"objects": os.path.join(render_dir, name + ".yaml"),
                 "secrets": os.path.join(render_dir, "secrets", name + ".yaml"),
                 "required": os.path.join(render_dir, "required-secrets", name + ".txt")}
        keep = set()
        if objects:
            _write(paths["objects"], manifest_utils.to_manifest_stream(objects), 0o640, changed)
            keep.add("objects")
        if secrets and secrets_mode == "file":
            _write(paths["secrets"], manifest_utils.to_manifest_stream(secrets), 0o600, changed)
            keep.add("secrets")
        if secrets and secrets_mode == "none":
            _write(paths["required"], required_secrets_text(name, secrets), 0o640, changed)
            keep.add("required")
        for what, path in paths.items():
            if what not in keep:
                _unlink(path, changed)
    return changed


def rendered_kinds(render_dir):
    """kind -> number of objects in the render folder's manifests (the
    plain render's files and secrets/, or the GitOps layers), in the order
    of the sorted files."""
    paths = sorted(glob.glob(os.path.join(glob.escape(render_dir), "*.yaml")))
    paths += sorted(glob.glob(os.path.join(glob.escape(render_dir), gitops_utils.LAYERS_DIR, "*", "*.yaml")))
    paths += sorted(glob.glob(os.path.join(glob.escape(render_dir), "secrets", "*.yaml")))
    counts = {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for path in paths:
        try:
            with open(path) as handle:
                docs = list(yaml.load_all(handle, Loader=loader))
        except (OSError, yaml.YAMLError):
            continue
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind"):
                counts[doc["kind"]] = counts.get(doc["kind"], 0) + 1
    return counts


def write_files(render_dir, files, changed):
    """{relative path: objects} written as YAML streams (0640, folders 0750);
    an empty list removes the file, and its folder once empty."""
    for relative in sorted(files):
        path = os.path.join(render_dir, *relative.split("/"))
        if files[relative]:
            folder = render_dir
            for part in relative.split("/")[:-1]:
                folder = os.path.join(folder, part)
                _folder(folder, 0o750, changed)
            _write(path, manifest_utils.to_manifest_stream(files[relative]), 0o640, changed)
        else:
            _unlink(path, changed)
            folder = os.path.dirname(path)
            if os.path.isdir(folder) and not os.listdir(folder):
                os.rmdir(folder)


def present_layers(render_dir):
    """The layer folders that hold objects, as written."""
    base = os.path.join(render_dir, gitops_utils.LAYERS_DIR)
    if not os.path.isdir(base):
        return []
    return sorted(f for f in os.listdir(base)
                  if any(n.endswith(".yaml") for n in os.listdir(os.path.join(base, f))))


def write_gitops(groups, render_dir, gitops):
    """GitOps render (module_utils/gitops.py): ``groups`` [(name, phase,
    objects)] into layers/<layer>/<name>.yaml, no Secret written (their list
    in required-secrets/<name>.txt), then gitops/bootstrap.yaml and
    gitops/apps/layers.yaml for the layers that hold objects. Returns the
    paths written or removed."""
    changed = []
    _folder(render_dir, 0o750, changed)
    _folder(os.path.join(render_dir, "required-secrets"), 0o750, changed)
    plain = []
    for name, phase, group in groups:
        stamped = manifest_utils.stamp_applied_hash(group)
        plain.append((name, phase, [o for o in stamped if o.get("kind") != "Secret"]))
        secrets = [o for o in stamped if o.get("kind") == "Secret"]
        required = os.path.join(render_dir, "required-secrets", name + ".txt")
        if secrets:
            _write(required, required_secrets_text(name, secrets, GITOPS_NO_SECRETS), 0o640, changed)
        else:
            _unlink(required, changed)
        # the plain render's file of the group (a folder rendered before without neurallog_gitops)
        _unlink(os.path.join(render_dir, name + ".yaml"), changed)
    write_files(render_dir, gitops_utils.split_layers(plain), changed)
    write_files(render_dir, {
        gitops_utils.TOOL_DIR + "/bootstrap.yaml": gitops_utils.bootstrap_objects(gitops),
        gitops_utils.APPS_DIR + "/layers.yaml": gitops_utils.layer_objects(gitops, present_layers(render_dir)),
    }, changed)
    return changed


class ActionModule(ControllerAction):
    NAME = "plan"

    def run(self, tmp=None, task_vars=None):
        # NEURALLOG_PROFILE=<file>: cProfile statistics of the plan written
        # there (make bench-profile).
        # The compiled templates of earlier runs (plugin_utils/compile_cache.py;
        # NEURALLOG_COMPILE_CACHE=0 turns it off).
        cache = None
        if os.environ.get("NEURALLOG_COMPILE_CACHE", "1") != "0":
            cache = CompileCache()
            cache.install()
        profile_to = os.environ.get("NEURALLOG_PROFILE")
        try:
            if not profile_to:
                return self._plan(tmp, task_vars)
            import cProfile
            profiler = cProfile.Profile()
            try:
                return profiler.runcall(self._plan, tmp, task_vars)
            finally:
                profiler.dump_stats(profile_to)
        finally:
            if cache is not None:
                cache.save()

    def _plan(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self.validated_args()
        task_vars = task_vars or {}
        check_mode = bool(self._task.check_mode)
        render_dir = str(self._templar.template(task_vars.get("neurallog_render_dir", "")) or "")
        if args["mode"] == "kinds":
            served = None
            if not render_dir:
                kubeconfig = args["kubeconfig"] or self._templar.template(task_vars.get("neurallog_kubeconfig", "")) or None
                context = args["context"] or self._templar.template(task_vars.get("neurallog_context", "")) or None
                try:
                    served = Cluster(kubeconfig, context, timeout=args["timeout"]).served
                except ClusterError as exc:
                    raise AnsibleError(str(exc))
            return self._kinds(result, task_vars, served)
        run_tags = task_vars.get("ansible_run_tags") or ["all"]
        skip_tags = task_vars.get("ansible_skip_tags") or []
        # GitOps output without a render folder: said before any cluster is reached
        missing = gitops_utils.render_dir_error(
            str(self._templar.template(task_vars.get("neurallog_gitops", "none")) or "none"), render_dir)
        if missing:
            raise AnsibleError("Invalid GitOps settings: %s." % missing)
        cluster = None
        if not render_dir:
            kubeconfig = args["kubeconfig"] or self._templar.template(task_vars.get("neurallog_kubeconfig", "")) or None
            context = args["context"] or self._templar.template(task_vars.get("neurallog_context", "")) or None
            try:
                cluster = Cluster(kubeconfig, context, timeout=args["timeout"])
            except ClusterError as exc:
                raise AnsibleError(str(exc))
        backend = str(self._templar.template(task_vars.get("neurallog_secrets_backend", "kubernetes")) or "kubernetes")
        plan = Plan(self._templar, self._loader, task_vars, ROLES_DIR, cluster=cluster, render_dir=render_dir,
                    run_tags=run_tags, skip_tags=skip_tags, check_mode=check_mode,
                    components=args["components"] or None,
                    reset_credentials=self._templar.template(task_vars.get("neurallog_reset_credentials") or []),
                    secrets_backend=backend, rotate=args["rotate"] or None)
        plan.external_secrets = _backend_setting(plan, "neurallog_external_secrets")
        lock = None
        vault = None
        try:
            plan.validate()
            self._check_backend(plan)
            gitops = gitops_settings(plan, render_dir)
            if backend == "vault":
                # after the settings' checks, before the preflight (which
                # reads OIDC's client secret from it) and the lock: a refused
                # login changes nothing
                vault = plan.vault = self._vault_store(plan, task_vars)
            plan.check(preflight=preflight)
            if cluster is not None and args["lock"]:
                lock = self._lock(plan, args["run"], check_mode, task_vars.get("inventory_hostname", ""))
            plan.build()
            if plan.rotation is not None:
                plan.rotation["settings"] = dict((name, plan.value(plan.variables[name]))
                                                 for name in (args["rotate"].get("settings") or []))
            if vault is not None and plan.vault_writes and not check_mode:
                # generated once, written back before anything is applied
                for write in plan.vault_writes:
                    vault.write(write["path"], write["data"], write["cas"])
            phases = plan.phases()
            notes = plan.notes()
            warnings = plan.warnings()
            full_run = set(run_tags) == {"all"} and not skip_tags and not args["components"]
            undeclared = {"remove": [], "keep": []}
            if cluster is not None and full_run:
                undeclared = self._undeclared(plan)
        except (PlanError, ClusterError, VaultStoreError) as exc:
            self._release(plan, lock)
            raise AnsibleError(str(exc))
        except Exception:
            self._release(plan, lock)
            raise
        prune = bool(plan.value(plan.variables.get("neurallog_prune", False))) and bool(undeclared["remove"])
        # a fleet run names the cluster each warning is about
        host = str(task_vars.get("inventory_hostname") or "localhost")
        for warning in warnings:
            self._display.warning(warning if host == "localhost" else "%s: %s" % (host, warning))
        rendered = []
        if render_dir:
            secrets_mode = plan.value(plan.variables.get("neurallog_render_secrets", "file"))
            if not check_mode:
                rendered = render(plan, render_dir, secrets_mode, gitops)
        if lock is not None and not phases and not prune:
            self._release(plan, lock)
            lock = None
        result.update(
            changed=bool(rendered),
            phases=phases,
            selected=plan.selected,
            pending=sum(len(p["objects"]) + len(p["secrets"]) for p in phases),
            undeclared=undeclared,
            prune=prune,
            notes=notes,
            plan_warnings=warnings,
            rendered=rendered,
            rendered_kinds=rendered_kinds(render_dir) if render_dir and not check_mode else {},
            lock=lock,
            kubernetes_version=plan.facts.get("preflight_kubernetes_version", ""),
            capabilities=plan.facts.get("preflight_capabilities", {}),
            facts=dict((k, v) for k, v in plan.facts.items() if k in plan.public_facts()),
            requests=cluster.requests if cluster else 0,
            secrets_backend=backend,
            vault_written=[write["path"] for write in plan.vault_writes] if not check_mode else [],
            vault_versions=dict(vault.versions) if vault is not None else {},
            rotation=plan.rotation,
            vault=self._vault_connection(plan, vault) if (vault is not None and plan.rotation) else None,
            external_secrets=backend_utils.required_remote_entries(
                [o for o in plan.declared() if o.get("kind") == "ExternalSecret"]),
        )
        # Pending Secrets (passwords, TLS keys) are in the phases: then the
        # result is never shown, at any verbosity (the apply tasks are no_log
        # too); it is still registered. A failure's message stays visible.
        result["_ansible_no_log"] = any(phase["secrets"] for phase in phases) or bool(plan.rotation)
        return result

    def _check_backend(self, plan):
        """The secrets backend's settings, before any change or login."""
        try:
            problems = backend_problems(plan.secrets_backend, self._vault_settings(plan), plan.external_secrets,
                                        plan.cluster)
        except backend_utils.SecretRefError as exc:
            raise PlanError("Invalid secrets backend settings (nothing was changed): %s" % exc)
        if plan.rotate and plan.secrets_backend == "external-secrets":
            problems.append("neurallog_secrets_backend=external-secrets: credentials never pass through Ansible, so "
                            "rotate them in the external store (the ExternalSecrets refresh the Secrets)")
        if problems:
            raise PlanError("Invalid secrets backend settings (nothing was changed):\n- " + "\n- ".join(problems))

    def _vault_settings(self, plan):
        return _backend_setting(plan, "neurallog_vault")

    def _vault_store(self, plan, task_vars):
        return vault_login(self._vault_settings(plan), self._loader, self._templar)

    def _vault_connection(self, plan, vault):
        """What the rotation's write needs (community.hashi_vault.vault_kv2_write):
        the address, the token of this run's login, the engine."""
        settings = self._vault_settings(plan)
        return {"url": settings["url"], "token": vault.client.token, "engine_mount_point": vault.mount,
                "ca_cert": settings.get("ca_cert") or None, "namespace": settings.get("namespace") or None,
                "validate_certs": settings.get("validate_certs", True) is not False}

    def _kinds(self, result, task_vars, served=None):
        """Every kind the platform's objects can have: what the roles render
        with these settings (no cluster, every optional API on) and the kinds
        the undeclared-object search knows, namespaced ones only; with
        ``served`` (a cluster's), only the kinds that cluster serves."""
        # the backend decides whether the credentials are Secrets or ExternalSecrets
        backend = str(self._templar.template(task_vars.get("neurallog_secrets_backend", "kubernetes")) or "kubernetes")
        plan = Plan(self._templar, self._loader, task_vars, ROLES_DIR, cluster=None, render_dir="",
                    run_tags=["all"], skip_tags=[], secrets_backend=backend)
        plan.external_secrets = _backend_setting(plan, "neurallog_external_secrets")
        try:
            plan.validate()
            apis = plan.value(plan.variables["_preflight_capability_apis"])
            plan.facts["preflight_render_capabilities"] = dict((name, True) for name in apis)
            # the kinds only: no request to the identity provider
            plan.build(preflight=lambda p: preflight(p, discovery=False))
        except PlanError as exc:
            raise AnsibleError(str(exc))
        kinds = []
        for obj in plan.declared():
            entry = {"api_version": obj.get("apiVersion", "v1"), "kind": obj["kind"]}
            if (obj.get("metadata") or {}).get("namespace") and entry not in kinds:
                kinds.append(entry)
        for entry in plan.value(plan.variables["k8s_apply_undeclared_kinds"]):
            entry = {"api_version": entry["api_version"], "kind": entry["kind"]}
            if entry not in kinds:
                kinds.append(entry)
        if served is not None:
            kinds = [k for k in kinds if served(k["api_version"], k["kind"])]
        result.update(changed=False, kinds=kinds)
        return result

    def _lock(self, plan, run, check_mode, cluster=""):
        name = plan.value(plan.variables["run_lock_name"]) if "run_lock_name" in plan.variables else "neurallog-lock"
        namespace = plan.value(plan.variables["neurallog_namespace_system"])
        duration = int(plan.value(plan.variables["neurallog_lock_duration"]))
        if duration < 30:
            raise PlanError("neurallog_lock_duration must be at least 30 seconds, got %s" % duration)
        labels = plan.value(plan.variables["neurallog_common_labels"])
        holder = default_holder(run, cluster)
        store = ClusterLeaseStore(plan.cluster, labels)
        try:
            if check_mode:
                lock_utils.check(store, name, namespace, holder, _now)
                return None
            outcome = lock_utils.acquire(store, name, namespace, holder, duration, _now, labels=labels,
                                         break_lock=bool(plan.value(plan.variables["neurallog_lock_break"])))
        except lock_utils.LockRefused as exc:
            raise PlanError(str(exc))
        for warning in outcome.get("warnings", []):
            self._display.warning(warning)
        return {"holder": holder, "renewed_at": _now().timestamp(), "duration": duration, "name": name,
                "namespace": namespace}

    def _release(self, plan, lock):
        if lock is None:
            return
        try:
            lock_utils.release(ClusterLeaseStore(plan.cluster), lock["name"], lock["namespace"], lock["holder"])
        except Exception as exc:  # pylint: disable=broad-exception-caught
            self._display.warning("The run lock could not be released: %s" % exc)

    def _undeclared(self, plan):
        kinds = plan.value(plan.variables["k8s_apply_undeclared_kinds"])
        namespaces = plan.value(plan.variables["k8s_apply_undeclared_namespaces"])
        keep_in = plan.value(plan.variables["k8s_apply_undeclared_keep_secrets_in"])
        live = []
        for kind in kinds:
            live.extend(item for item in plan.cluster.list(kind["api_version"], kind["kind"], None, MANAGED_SELECTOR)
                        if (item.get("metadata") or {}).get("namespace") in namespaces)
        declared = undeclared_utils.object_keys(plan.declared())
        return undeclared_utils.undeclared_objects(live, declared, keep_in)
