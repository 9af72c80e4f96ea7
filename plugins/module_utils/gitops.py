# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GitOps output of render mode (``neurallog_gitops``): the platform's
objects as layer folders, and the Argo CD or Flux objects that apply those
folders in order, and the tenants' folders with the objects that turn them
into tenants. Pure functions of the settings and the rendered objects, so
that two renders write the same bytes (docs/gitops.md)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath
import re

from ansible.module_utils.parsing.convert_bool import boolean

TOOLS = ("none", "argocd", "flux")
# The layers, in the order a GitOps tool applies them: the reconcile
# engine's phases each belong to one; CustomResourceDefinitions and Jobs
# (schema migrations) have layers of their own, whatever role renders them.
LAYERS = (
    {"name": "namespaces", "folder": "00-namespaces", "phases": ("namespaces", "policies"),
     "kinds": ("CustomResourceDefinition",)},
    {"name": "data", "folder": "10-data", "phases": ("data",), "kinds": ()},
    {"name": "migrations", "folder": "20-migrations", "phases": (), "kinds": ("Job",)},
    {"name": "core", "folder": "30-core", "phases": ("core",), "kinds": ()},
    {"name": "edge", "folder": "40-edge", "phases": ("edge",), "kinds": ()},
)
LAYERS_DIR = "layers"
TOOL_DIR = "gitops"
APPS_DIR = "gitops/apps"
TENANTS_DIR = "tenants"
TENANT_FILE = "tenant.yaml"
TENANT_MANIFESTS = "manifests"
ADMISSION_FOLDER = "admission"
# Argo CD sync waves of the tenants' objects, after every layer.
TENANT_WAVES = {"admission": 10, "tenants": 11}
DEFAULT_NAMESPACES = {"argocd": "argocd", "flux": "flux-system"}
APP_PREFIX = "neurallog"
ARGOCD_API = "argoproj.io/v1alpha1"
FLUX_KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"
FLUX_SOURCE_API = "source.toolkit.fluxcd.io/v1"
IN_CLUSTER = "https://kubernetes.default.svc"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_REPO_URL = re.compile(r"^(https?|ssh)://[^\s/]+(/\S*)?$|^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+$")
_DURATION = re.compile(r"^([0-9]+(ms|s|m|h))+$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_PATH_PART = re.compile(r"^[A-Za-z0-9._-]+$")


class GitOpsSettingError(ValueError):
    """A neurallog_gitops_* setting is wrong; the message names it."""


def settings_from(values):
    """The GitOps settings from variables named as the inventory names them."""
    tool = str(values.get("neurallog_gitops") or "none")
    namespace = str(values.get("neurallog_gitops_namespace") or "") or DEFAULT_NAMESPACES.get(tool, "")
    return {
        "tool": tool,
        "repo_url": str(values.get("neurallog_gitops_repo_url") or ""),
        "revision": str(values.get("neurallog_gitops_revision") or ""),
        "path": str(values.get("neurallog_gitops_path") or "").strip("/"),
        "namespace": namespace,
        "project": str(values.get("neurallog_gitops_project") or ""),
        "interval": str(values.get("neurallog_gitops_interval") or ""),
        "prune": values.get("neurallog_gitops_prune", False),
        "labels": dict(values.get("neurallog_common_labels") or {}),
    }


def render_dir_error(tool, render_dir):
    """The message when ``tool`` asks for GitOps output without a render
    folder, else None."""
    if tool != "none" and not render_dir:
        return ("neurallog_gitops=%s writes files: set neurallog_render_dir (the folder, inside a checkout of "
                "neurallog_gitops_repo_url, at neurallog_gitops_path)" % tool)
    return None


def validate(settings, render_dir):
    """Raise GitOpsSettingError naming every wrong setting (before anything
    is written)."""
    tool = settings["tool"]
    if tool not in TOOLS:
        raise GitOpsSettingError("neurallog_gitops must be one of %s, got %r." % (", ".join(TOOLS), tool))
    if tool == "none":
        return
    errors = []
    try:
        # -e neurallog_gitops_prune=true gives text
        settings["prune"] = boolean(settings["prune"], strict=True)
    except TypeError:
        errors.append("neurallog_gitops_prune must be true or false, got %r" % (settings["prune"],))
    if render_dir_error(tool, render_dir):
        errors.append(render_dir_error(tool, render_dir))
    if not _REPO_URL.match(settings["repo_url"]):
        errors.append("neurallog_gitops_repo_url must be the Git repository's URL (https://, http://, ssh:// or "
                      "user@host:path), got %r" % settings["repo_url"])
    if not settings["revision"] or re.search(r"\s", settings["revision"]):
        errors.append("neurallog_gitops_revision must be a branch, a tag, a refs/... name or a commit, got %r"
                      % settings["revision"])
    parts = settings["path"].split("/") if settings["path"] else []
    if not parts or not all(_PATH_PART.match(p) and p not in (".", "..") for p in parts):
        errors.append("neurallog_gitops_path must be the render folder's path inside the repository, relative, "
                      "made of letters, digits, '.', '_' and '-' between slashes (no '..'), got %r" % settings["path"])
    if not _DNS_LABEL.match(settings["namespace"]):
        errors.append("neurallog_gitops_namespace must be a namespace name (DNS label) where %s runs, got %r"
                      % ("Argo CD" if tool == "argocd" else "Flux", settings["namespace"]))
    if tool == "argocd" and not settings["project"]:
        errors.append("neurallog_gitops_project must name an Argo CD project, got %r" % settings["project"])
    if tool == "flux" and not _DURATION.match(settings["interval"]):
        errors.append("neurallog_gitops_interval must be a Go duration such as 10m or 1h30m, got %r"
                      % settings["interval"])
    if errors:
        raise GitOpsSettingError("Invalid GitOps settings: " + "; ".join(errors) + ".")


def layer_of(phase, kind):
    """The layer (a LAYERS entry) an object of ``kind`` rendered in the
    engine's ``phase`` belongs to."""
    for layer in LAYERS:
        if kind in layer["kinds"]:
            return layer
    for layer in LAYERS:
        if phase in layer["phases"]:
            return layer
    raise GitOpsSettingError("no GitOps layer for phase %r" % phase)


def layer_path(layer, group):
    """Path, inside the render folder, of ``group``'s objects in ``layer``."""
    return posixpath.join(LAYERS_DIR, layer["folder"], group + ".yaml")


def split_layers(groups):
    """``groups``: [(group name, phase, objects)] in apply order. Returns
    {relative path: objects} for every (layer, group) pair, with an empty
    list where the group has nothing in that layer (the file is removed)."""
    out = {}
    for name, phase, objects in groups:
        for layer in LAYERS:
            out.setdefault(layer_path(layer, name), [])
        for obj in objects:
            out[layer_path(layer_of(phase, obj.get("kind")), name)].append(obj)
    return out


def _repo_path(settings, *parts):
    return posixpath.join(settings["path"], *parts)


def _metadata(settings, name, wave=None):
    meta = {"name": name, "namespace": settings["namespace"],
            "labels": dict(settings["labels"], **{"app.kubernetes.io/component": "gitops"})}
    if wave is not None:
        meta["annotations"] = {"argocd.argoproj.io/sync-wave": str(wave)}
    return meta


def _argocd_sync_policy(settings):
    return {"automated": {"prune": settings["prune"], "selfHeal": True},
            "syncOptions": ["ServerSideApply=true", "CreateNamespace=false"],
            "retry": {"limit": 5, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "3m"}}}


def _argocd_application(settings, name, path, wave):
    return {"apiVersion": ARGOCD_API, "kind": "Application", "metadata": _metadata(settings, name, wave),
            "spec": {"project": settings["project"],
                     "source": {"repoURL": settings["repo_url"], "targetRevision": settings["revision"],
                                "path": path, "directory": {"recurse": False}},
                     "destination": {"server": IN_CLUSTER},
                     "syncPolicy": _argocd_sync_policy(settings)}}


def _flux_ref(revision):
    if _COMMIT.match(revision):
        return {"commit": revision}
    if revision.startswith("refs/"):
        return {"name": revision}
    return {"branch": revision}


def _flux_kustomization(settings, name, path, depends_on):
    spec = {"interval": settings["interval"], "path": "./" + path, "prune": settings["prune"],
            "sourceRef": {"kind": "GitRepository", "name": APP_PREFIX}, "wait": True, "timeout": "15m"}
    if depends_on:
        spec["dependsOn"] = [{"name": d} for d in depends_on]
    return {"apiVersion": FLUX_KUSTOMIZE_API, "kind": "Kustomization", "metadata": _metadata(settings, name),
            "spec": spec}


def bootstrap_objects(settings):
    """What the user applies once: the root that applies the folder
    gitops/apps (Argo CD: an Application; Flux: the GitRepository and a
    Kustomization)."""
    apps = _repo_path(settings, APPS_DIR)
    if settings["tool"] == "argocd":
        return [_argocd_application(settings, APP_PREFIX, apps, None)]
    source = {"apiVersion": FLUX_SOURCE_API, "kind": "GitRepository", "metadata": _metadata(settings, APP_PREFIX),
              "spec": {"interval": settings["interval"], "url": settings["repo_url"],
                       "ref": _flux_ref(settings["revision"])}}
    return [source, _flux_kustomization(settings, APP_PREFIX, apps, [])]


def layer_objects(settings, present):
    """The Argo CD Applications (sync wave = the layer's place) or Flux
    Kustomizations (each depending on the layer before it) of the layers in
    ``present`` (folder names holding objects)."""
    out, before = [], None
    for wave, layer in enumerate(LAYERS):
        if layer["folder"] not in present:
            continue
        name = "%s-%s" % (APP_PREFIX, layer["name"])
        path = _repo_path(settings, LAYERS_DIR, layer["folder"])
        if settings["tool"] == "argocd":
            out.append(_argocd_application(settings, name, path, wave))
        else:
            out.append(_flux_kustomization(settings, name, path, [before] if before else []))
        before = name
    return out


def first_layer_app(present):
    for layer in LAYERS:
        if layer["folder"] in present:
            return "%s-%s" % (APP_PREFIX, layer["name"])
    return None


def tenant_objects(settings, tenant_ids, platform_app=None):
    """The objects that turn the folder tenants/ into tenants: the shared
    admission policies' Application or Kustomization, then an Argo CD
    ApplicationSet (git files generator over tenants/*/tenant.yaml, one
    Application per tenant file) or a Flux Kustomization per tenant folder
    (``tenant_ids``, sorted)."""
    admission_name = "%s-tenant-admission" % APP_PREFIX
    admission_path = _repo_path(settings, TENANTS_DIR, ADMISSION_FOLDER)
    if settings["tool"] == "argocd":
        template_spec = _argocd_application(settings, "x", "x", None)["spec"]
        template_spec["source"]["path"] = "{{.path.path}}/" + TENANT_MANIFESTS
        tenant_labels = dict(settings["labels"])
        tenant_labels.update({"app.kubernetes.io/component": "tenant", "tenant": "{{.id}}"})
        appset = {
            "apiVersion": ARGOCD_API, "kind": "ApplicationSet",
            "metadata": _metadata(settings, "%s-tenants" % APP_PREFIX, TENANT_WAVES["tenants"]),
            "spec": {
                "goTemplate": True,
                "goTemplateOptions": ["missingkey=error"],
                "generators": [{"git": {"repoURL": settings["repo_url"], "revision": settings["revision"],
                                        "files": [{"path": _repo_path(settings, TENANTS_DIR, "*", TENANT_FILE)}]}}],
                "template": {
                    "metadata": {"name": "%s-tenant-{{.id}}" % APP_PREFIX, "labels": tenant_labels},
                    "spec": template_spec}}}
        return [_argocd_application(settings, admission_name, admission_path, TENANT_WAVES["admission"]), appset]
    out = [_flux_kustomization(settings, admission_name, admission_path, [platform_app] if platform_app else [])]
    for tenant_id in sorted(tenant_ids):
        out.append(_flux_kustomization(settings, "%s-tenant-%s" % (APP_PREFIX, tenant_id),
                                       _repo_path(settings, TENANTS_DIR, tenant_id, TENANT_MANIFESTS),
                                       [admission_name]))
    return out


def tenant_groups(built, tenants):
    """{relative path: objects} of the tenants' folders: the shared
    admission policies, and per tenant its objects (not its Secrets, which
    the caller lists). ``tenants`` are the summaries of build_resources."""
    out = {posixpath.join(TENANTS_DIR, ADMISSION_FOLDER, "admission.yaml"): list(built["admission_resources"])}
    for tenant in tenants:
        objects = [o for o in built["resources"]
                   if ((o.get("metadata") or {}).get("labels") or {}).get("tenant") == tenant["id"]]
        out[posixpath.join(TENANTS_DIR, tenant["id"], TENANT_MANIFESTS, "tenant.yaml")] = objects
    return out
