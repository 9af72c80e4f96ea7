# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reconcile engine: one plan of the whole platform, in one process.

Each platform role describes itself as data in ``meta/plan.yml`` (see
docs/development.md, "The plan of a role"): the tags that select it, its
phase, its checks, what it reads from the cluster, its credentials, the facts
it derives and the templates that make its objects. Together with the
role's ``defaults/``, ``vars/``, ``templates/`` and ``meta/argument_specs.yml``
that is all the engine needs; the roles stay the one source of every
default, template and argument spec.

``Plan.build()`` validates every role's settings, reads the cluster once
(``Cluster``), keeps or generates credentials, renders every selected role's
objects, refuses changes the API server would reject, compares with the
cluster and returns what is pending per phase and what to wait for."""

from __future__ import annotations

import collections
import os

import yaml

from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.template import trust_as_template

from ansible_collections.neurallog.platform.plugins.module_utils import manifests as manifest_utils
from ansible_collections.neurallog.platform.plugins.module_utils import secrets_backend as backend_utils
from ansible_collections.neurallog.platform.plugins.module_utils import undeclared as undeclared_utils
from ansible_collections.neurallog.platform.plugins.module_utils.data_services import (
    lost_credentials, statefulset_immutable_changes)
from ansible_collections.neurallog.platform.plugins.plugin_utils.cluster import ClusterError

# The platform's roles in the order their objects are applied. Roles that
# make no objects (globals, preflight, summary) only contribute settings.
SETTING_ROLES = ["globals", "preflight", "summary", "k8s_apply"]
COMPONENTS = ["namespaces", "network_policies", "postgresql", "redis", "elasticsearch", "core_services",
              "ingress", "scaling", "monitoring"]
PHASES = ["namespaces", "policies", "data", "core", "edge"]
# The platform's own objects: tenant objects (label `tenant`) are the tenant
# plan's, and a cluster with many tenants must not slow site.yml down.
MANAGED_SELECTOR = "app.kubernetes.io/managed-by=neurallog.platform,!tenant"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
PLAN_KEYS = {"tags", "phase", "checks", "reads", "credentials", "facts", "manifests", "immutable", "wait",
             "settled", "report", "notes", "warnings"}


class PlanError(AnsibleError):
    """A setting or the cluster stops the run before anything changes."""


def _load_yaml(loader, path):
    if not os.path.exists(path):
        return None
    # unsafe: the cached data itself, not a deep copy (it is never modified)
    return loader.load_from_file(path, unsafe=True, trusted_as_template=True)


class Role:
    """The data of one role: defaults, vars, plan, argument spec, templates."""

    def __init__(self, loader, roles_dir, name):
        self.name = name
        self.path = os.path.join(roles_dir, name)
        if not os.path.isdir(self.path):
            raise PlanError("role %s not found in %s" % (name, roles_dir))
        self.defaults = _load_yaml(loader, os.path.join(self.path, "defaults", "main.yml")) or {}
        self.vars = _load_yaml(loader, os.path.join(self.path, "vars", "main.yml")) or {}
        # plain data, no templates: the validator copies it, tags would make that slow
        spec_path = os.path.join(self.path, "meta", "argument_specs.yml")
        spec = {}
        if os.path.exists(spec_path):
            with open(spec_path) as handle:
                spec = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        self.spec = ((spec.get("argument_specs") or {}).get("main") or {}).get("options") or {}
        self.plan = _load_yaml(loader, os.path.join(self.path, "meta", "plan.yml")) or {}
        unknown = set(self.plan) - PLAN_KEYS
        if unknown:
            raise PlanError("%s/meta/plan.yml: unknown keys %s" % (name, ", ".join(sorted(unknown))))
        self.tags = list(self.plan.get("tags") or [name])
        self.phase = self.plan.get("phase") or "core"
        if self.phase not in PHASES:
            raise PlanError("%s/meta/plan.yml: phase %r is not one of %s" % (name, self.phase, ", ".join(PHASES)))
        self.templates = os.path.join(self.path, "templates")


def selected(tags, run_tags, skip_tags):
    """Whether a role with ``tags`` runs under --tags/--skip-tags."""
    tags = set(tags)
    run_tags = set(run_tags or ["all"])
    if tags & set(skip_tags or []):
        return False
    return "all" in run_tags or bool(tags & run_tags)


class Plan:
    """See the module description. ``templar`` is the action's templar,
    ``task_vars`` the task's variables, ``cluster`` a Cluster or None (render
    mode), ``render_dir`` the render folder or ""."""

    def __init__(self, templar, loader, task_vars, roles_dir, cluster=None, render_dir="", run_tags=None,
                 skip_tags=None, check_mode=False, components=None, reset_credentials=None, secrets_backend="kubernetes",
                 vault=None, external_secrets=None, rotate=None):
        self.loader = loader
        self.roles_dir = roles_dir
        self.cluster = cluster
        self.render_dir = render_dir or ""
        self.check_mode = check_mode
        names = SETTING_ROLES + COMPONENTS
        self.roles = collections.OrderedDict((name, Role(loader, roles_dir, name)) for name in names)
        wanted = set(components) if components else None
        self.selected = [name for name in COMPONENTS
                         if (wanted is None or name in wanted)
                         and selected(self.roles[name].tags, run_tags, skip_tags)]
        self.reset_credentials = set(reset_credentials or [])
        # Where credentials live (module_utils/secrets_backend.py): the vault
        # backend's store (plugin_utils/vault_store.py) and the entries this
        # run writes to it; the external-secrets settings and placeholders.
        self.secrets_backend = secrets_backend or "kubernetes"
        self.vault = vault
        self.vault_writes = []
        self.external_secrets = external_secrets or {}
        self.placeholders = backend_utils.Placeholders()
        self.secret_stores = set()
        # rotate: {service, key}: that credential gets a new value (rotation)
        self.rotate = rotate or None
        self.rotation = None
        defaults, role_vars = {}, {}
        for role in self.roles.values():
            defaults.update(role.defaults)
            role_vars.update(role.vars)
        self.facts = {}
        self.variables = collections.ChainMap(self.facts, role_vars, dict(task_vars), defaults)
        self.templar = templar.copy_with_new_env(available_variables=self.variables)
        self.objects = collections.OrderedDict()   # role -> [objects]
        self.settled = {}                           # role -> [objects applied once its workloads are Ready]
        self.no_log = {}                            # role -> set of object keys that hold secrets
        self.log = []

    # -- templating ----------------------------------------------------------
    def value(self, expression, role=None):
        """An expression or a value of a plan file, templated."""
        return self.templar.template(expression)

    def condition(self, conditional):
        if conditional is None:
            return True
        if isinstance(conditional, list):
            return all(self.condition(c) for c in conditional)
        if isinstance(conditional, bool):
            return conditional
        return self.templar.evaluate_conditional(conditional)

    def render_template(self, role, name, extra=None):
        path = os.path.join(role.templates, name)
        if not os.path.exists(path):
            raise PlanError("%s: template %s not found" % (role.name, path))
        with open(path) as handle:
            text = trust_as_template(handle.read())
        # lookups inside the template (template, file) search the role first
        layer = dict(extra or {}, ansible_search_path=[role.path], role_path=role.path, role_name=role.name)
        templar = self.templar.copy_with_new_env(
            available_variables=self.variables.new_child(layer), searchpath=[role.templates])
        from ansible._internal._templating._engine import TemplateOptions  # pylint: disable=import-outside-toplevel
        out = templar._engine.template(text, options=TemplateOptions(escape_backslashes=False))
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            docs = list(yaml.load_all(str(out), Loader=loader))
        except yaml.YAMLError as exc:
            raise PlanError("%s: template %s does not render to YAML: %s" % (role.name, name, exc))
        return [doc for doc in docs if isinstance(doc, dict) and doc]

    # -- steps ----------------------------------------------------------------
    def validate(self):
        """Every role's argument spec, against the inventory and the defaults."""
        errors = []
        for name in self.value(self.variables["preflight_validated_roles"]):
            role = self.roles.get(name)
            if role is None or not role.spec:
                continue
            params = {}
            for option in role.spec:
                if option in self.variables:
                    params[option] = self.templar.template(self.variables[option])
            result = ArgumentSpecValidator(role.spec).validate(params, validate_role_argument_spec=True)
            errors.extend("%s: %s" % (role.name, msg) for msg in result.error_messages)
        if errors:
            raise PlanError("Invalid settings (checked against the roles' argument specs before anything "
                            "changes):\n- " + "\n- ".join(errors))

    def run_checks(self, role):
        for check in role.plan.get("checks") or []:
            if not self.condition(check.get("when")):
                continue
            that = check.get("that")
            that = that if isinstance(that, list) else [that]
            for condition in that:
                if not self.condition(condition):
                    msg = check.get("fail_msg") or ("%s: check failed: %s" % (role.name, condition))
                    raise PlanError(" ".join(str(self.value(msg)).split()))

    def read(self, role):
        for read in role.plan.get("reads") or []:
            if not self.condition(read.get("when")):
                self.facts[read["var"]] = []
                continue
            spec = self.value({key: value for key, value in read.items() if key not in ("var", "when", "optional")})
            try:
                self.facts[read["var"]] = self.read_objects(**spec)
            except ClusterError as exc:
                # optional: a read the run may be refused (RBAC) is None
                if not read.get("optional") or "HTTP 403" not in str(exc):
                    raise
                self.facts[read["var"]] = None

    def read_objects(self, kind, api_version="v1", namespace=None, name=None, label_selector=None):
        if kind == "Secret" and self.secrets_backend == "external-secrets":
            # no secret value passes through Ansible: the store holds them
            return []
        if self.cluster is None:
            if kind == "Secret":
                return manifest_utils.rendered_secrets(self.render_dir, name=name, namespace=namespace)
            return []
        if name:
            found = self.cluster.get(api_version, kind, namespace, name)
            return [found] if found else []
        return list(self.cluster.list(api_version, kind, namespace, label_selector))

    def credentials(self, role):
        for entry in role.plan.get("credentials") or []:
            if not self.condition(entry.get("when")):
                continue
            spec = self.value({key: value for key, value in entry.items() if key not in ("when",)})
            service = spec.get("service", role.name)
            if self.values_unknown():
                self.facts[spec["fact"]] = self.placeholders.values(spec["namespace"], spec["name"], spec["keys"])
                continue
            stored = self.read_objects("Secret", namespace=spec["namespace"], name=spec["name"])
            entry_data = None
            if self.vault is not None:
                # Vault's values first; keys only the Secret has are adopted
                # (a switch from the kubernetes backend rotates nothing).
                entry_data, stored = self.vault.merged(spec["namespace"], spec["name"], stored)
            if self.cluster is not None and spec.get("claims_selector"):
                claims = self.cluster.list("v1", "PersistentVolumeClaim", spec["namespace"], spec["claims_selector"])
                refusal = lost_credentials(stored, spec["keys"], claims, service, spec["name"],
                                           spec["namespace"], spec.get("copy_name", ""), spec.get("copy_namespace", ""),
                                           service in self.reset_credentials, spec.get("added_keys") or ())
                if refusal:
                    raise PlanError(refusal)
            length = int(spec.get("length", 32))
            values = manifest_utils.secret_values(stored, spec["keys"], length)
            if self.rotate and self.rotate.get("service") == service and self.rotate.get("key") in values:
                key = self.rotate["key"]
                old = values[key]
                values = dict(values, **{key: manifest_utils.generate_password(length)})
                self.rotation = {"service": service, "key": key, "namespace": spec["namespace"], "name": spec["name"],
                                 "old": old, "new": values[key], "values": values}
                if self.vault is not None:
                    path = self.vault.path(spec["namespace"], spec["name"])
                    self.rotation.update(path=path, version=self.vault.versions.get(path, 0))
            elif self.vault is not None:
                write = self.vault.pending_write(spec["namespace"], spec["name"], entry_data, spec["keys"], values)
                if write:
                    self.vault_writes.append(write)
            self.facts[spec["fact"]] = values

    def values_unknown(self):
        """Credentials the run never knows, so they get placeholders: the
        external-secrets backend's, and render mode's with
        neurallog_render_secrets=none or a GitOps render (neurallog_gitops)
        and the Secrets as the store (the user creates the Secrets; a generated value would be thrown away, and the
        consumers' credentials hash would change with every render)."""
        if self.secrets_backend == "external-secrets":
            return True
        if self.cluster is not None or self.secrets_backend != "kubernetes":
            return False
        return (self.value(self.variables.get("neurallog_render_secrets", "file")) == "none"
                or self.value(self.variables.get("neurallog_gitops", "none")) != "none")

    def derive(self, role):
        for fact in role.plan.get("facts") or []:
            for name, expression in fact.items():
                self.facts[name] = self.value(expression)

    def render_entries(self, role, entries):
        """The objects of a list of manifests entries, and the keys of those
        that are applied with no_log."""
        objects, secret_keys = [], set()
        for entry in entries or []:
            if not self.condition(entry.get("when")):
                continue
            if "template" in entry:
                docs = self.render_template(role, entry["template"])
            else:
                docs = [doc for doc in (self.value(entry["objects"]) or []) if doc]
            objects.extend(docs)
            if entry.get("no_log"):
                secret_keys.update(undeclared_utils.object_keys(docs))
        secret_keys.update(undeclared_utils.object_keys([o for o in objects if o.get("kind") == "Secret"]))
        return objects, secret_keys

    def render(self, role):
        objects, self.no_log[role.name] = self.render_entries(role, role.plan.get("manifests"))
        if self.secrets_backend == "external-secrets":
            objects = self.external_objects(objects)
        self.objects[role.name] = objects
        settled, settled_secrets = self.render_entries(role, role.plan.get("settled"))
        if settled_secrets:
            raise PlanError("%s/meta/plan.yml: settled may not hold Secrets" % role.name)
        self.settled[role.name] = settled
        # Facts about what the role renders (the summary's reports): only for
        # rendered roles, with the role's objects as `_objects`.
        for fact in role.plan.get("report") or []:
            for name, expression in fact.items():
                self.facts[name] = self.templar.copy_with_new_env(
                    available_variables=self.variables.new_child({"_objects": objects})).template(expression)

    def external_objects(self, objects):
        """The external-secrets backend: every Secret replaced by the
        ExternalSecret of the same name (module_utils/secrets_backend.py
        external_objects, the tenants' rule too)."""
        return backend_utils.external_objects(objects, self.placeholders, self.external_secrets,
                                              self.value(self.variables["neurallog_common_labels"]), self.secret_stores)

    def check_immutable(self, role):
        rule = role.plan.get("immutable")
        if not rule or self.cluster is None:
            return
        for desired in self.objects.get(role.name, []):
            if desired.get("kind") != "StatefulSet":
                continue
            metadata = desired.get("metadata") or {}
            live = self.read_objects("StatefulSet", "apps/v1", metadata.get("namespace"), metadata.get("name"))
            changes = statefulset_immutable_changes(live, desired)
            if changes:
                msg = self.templar.copy_with_new_env(
                    available_variables=self.variables.new_child({"_changes": changes, "_statefulset": desired})
                ).template(rule["fail_msg"])
                raise PlanError(" ".join(str(msg).split()))

    # -- the whole plan ---------------------------------------------------------
    def check(self, preflight=None):
        """The cluster checks (``preflight(plan)``) and every role's checks:
        reads only, so a bad setting fails before the run lock is taken (a
        first run's lock creates the system namespace). Call validate() first.
        The settings-only roles' checks come before the cluster checks, which
        use their settings (preflight_min_kubernetes_version)."""
        for name in SETTING_ROLES:
            self.run_checks(self.roles[name])
        if preflight:
            preflight(self)
        for name in COMPONENTS:
            self.run_checks(self.roles[name])
        self.checked = True

    def build(self, preflight=None):
        """Check (unless check() ran), read, render, compare."""
        if not getattr(self, "checked", False):
            self.check(preflight)
        # Every role's credentials and facts are known to the others (the core
        # services need the data services' passwords) even when the tags leave
        # its objects out; then only the selected roles are rendered.
        for name in COMPONENTS:
            role = self.roles[name]
            self.read(role)
            self.credentials(role)
            self.derive(role)
        # Roles that make no objects may derive facts too (the summary's
        # settings), from everything the components derived.
        for name in SETTING_ROLES:
            self.derive(self.roles[name])
        for name in self.selected:
            self.render(self.roles[name])
            self.check_immutable(self.roles[name])
        return self

    def notes(self):
        """The `notes` of the selected roles whose `when` holds, templated:
        what a run should tell without failing (an optional API missing)."""
        out = []
        for name in self.selected:
            for note in self.roles[name].plan.get("notes") or []:
                if self.condition(note.get("when")):
                    out.append(" ".join(str(self.value(note["msg"])).split()))
        return out

    def warnings(self):
        """The `warnings` of the selected roles whose `when` holds: each
        `msgs` a list of texts (an expression), shown as warnings."""
        out = []
        for name in self.selected:
            for entry in self.roles[name].plan.get("warnings") or []:
                if self.condition(entry.get("when")):
                    msgs = self.value(entry["msgs"]) or []
                    out.extend(" ".join(str(msg).split()) for msg in ([msgs] if isinstance(msgs, str) else msgs))
        return out

    def public_facts(self):
        """The derived facts that may be shown (names without a leading
        underscore; credentials and connection settings have one)."""
        return [name for name in self.facts if not name.startswith("_")]

    def declared(self):
        out = []
        for name in self.selected:
            out.extend(self.objects.get(name, []))
        return out

    def unsettled(self, name, stamped):
        """The role's ``settled`` objects (stamped) whose declared version has
        other content: what its workloads' readiness still has to settle."""
        declared = dict((undeclared_utils.object_key(o), o) for o in stamped)
        out = []
        for obj in manifest_utils.stamp_applied_hash(self.settled.get(name, [])):
            before = declared.get(undeclared_utils.object_key(obj))
            if before is not None and manifest_utils.applied_hash(before) != manifest_utils.applied_hash(obj):
                out.append(obj)
        return out

    def phases(self):
        """[{name, objects, secrets, wait, settled}] of the pending objects, in
        order; a phase with nothing pending or settling is left out; nothing in
        render mode. ``settled`` holds a role's ``settled`` objects that
        replace, once the role's workloads are Ready, a declared object with
        other content (e.g. Elasticsearch's bootstrap list, cleared once the
        cluster has formed); while one is declared, the run waits for all the
        role's workloads, even when none is pending (a run stopped before its
        wait leaves the list behind); a later plan declares them as they are."""
        if self.cluster is None:
            return []
        stamped = {name: manifest_utils.stamp_applied_hash(self.objects.get(name, [])) for name in self.selected}
        everything = [obj for name in self.selected for obj in stamped[name]]
        groups, seen = [], set()
        for obj in everything:
            api_version, kind = obj.get("apiVersion", "v1"), obj.get("kind")
            if (api_version, kind) in seen:
                continue
            seen.add((api_version, kind))
            groups.append({"kind": kind, "items": self.cluster.list(api_version, kind, None, MANAGED_SELECTOR)})
        pending_keys = set(undeclared_utils.object_keys(manifest_utils.pending_objects(everything, groups)))
        # Check mode: a dry run in a namespace this run would create fails;
        # such objects are only named ("would create"), as `deferred`.
        existing = None
        if self.check_mode:
            existing = [(n.get("metadata") or {}).get("name") for n in self.cluster.list("v1", "Namespace")]
        out = []
        for phase in PHASES:
            objects, secrets, waits, settled = [], [], [], []
            for name in self.selected:
                role = self.roles[name]
                if role.phase != phase:
                    continue
                wait = role.plan.get("wait") or {}
                wait_on = self.condition(wait.get("when")) if wait else False
                timeout = int(self.value(wait.get("timeout", 300))) if wait else 0
                for obj in stamped[name]:
                    key = undeclared_utils.object_key(obj)
                    if key not in pending_keys:
                        continue
                    (secrets if key in self.no_log[name] else objects).append(obj)
                    if wait_on and obj.get("kind") in WORKLOAD_KINDS:
                        waits.append({"api_version": obj.get("apiVersion"), "kind": obj["kind"],
                                      "namespace": obj["metadata"].get("namespace"),
                                      "name": obj["metadata"]["name"], "timeout": timeout, "role": name})
                unsettled = self.unsettled(name, stamped[name])
                if wait_on and unsettled:
                    # The role's settled content is not in place: this run
                    # waits for all the role's workloads, pending or not (an
                    # earlier run may have stopped before its wait), then
                    # applies it.
                    waited = set((w["kind"], w["namespace"], w["name"]) for w in waits)
                    for obj in stamped[name]:
                        meta = obj["metadata"]
                        if obj.get("kind") in WORKLOAD_KINDS and \
                                (obj["kind"], meta.get("namespace"), meta["name"]) not in waited:
                            waits.append({"api_version": obj.get("apiVersion"), "kind": obj["kind"],
                                          "namespace": meta.get("namespace"), "name": meta["name"],
                                          "timeout": timeout, "role": name})
                    settled.extend(unsettled)
            deferred = []
            if existing is not None:
                split = [manifest_utils.split_for_check_mode(group, existing) for group in (objects, secrets)]
                objects, secrets = split[0]["apply"], split[1]["apply"]
                deferred = split[0]["deferred_names"] + split[1]["deferred_names"]
            if objects or secrets or deferred or settled:
                out.append({"name": phase, "objects": objects, "secrets": secrets, "wait": waits,
                            "settled": settled, "deferred": deferred})
        return out
