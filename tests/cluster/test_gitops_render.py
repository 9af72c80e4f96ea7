# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GitOps render mode (neurallog_gitops, docs/gitops.md) against a local
cluster of its own: Argo CD's and Flux's CRDs (hack/localcluster/crds.sh
gitops: their Go modules' published CRD YAML, pinned in versions.env) are
installed, then EVERY rendered object of the platform's layers, the tenants'
folders and both tools' objects is sent as a server-side apply dry run
(strict field validation) in the tools' order: Namespaces first (created,
since the next layers' dry runs need them), then layer by layer. Then
site.yml and tenants.yml install the same inventory directly, and the set of
objects the API server holds (kind/namespace/name) is the set a GitOps tool
would apply: the layers' and tenant folders' objects plus the Secrets listed
in required-secrets/."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import glob
import os
import re
import subprocess
import sys

import pytest
import yaml
from kubernetes import config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.resource import ResourceList

from cluster_helpers import install_crds, own_cluster
from test_interrupted_runs import recap
from test_safety_rails import PLAYBOOK, REPO

MANAGED = "app.kubernetes.io/managed-by=neurallog.platform"
# made by the controllers from the platform's objects (labels copied) or the
# run's lock, not declared objects
CONTROLLER_KINDS = ("Pod", "ReplicaSet", "ControllerRevision", "EndpointSlice", "Endpoints", "PersistentVolumeClaim",
                    "Event", "Lease")
REPO_URL = "https://git.example.com/ops/deploy.git"
GITOPS_PATH = "clusters/prod/neurallog"
TOOL_KINDS = (("argoproj.io/v1alpha1", "Application"), ("argoproj.io/v1alpha1", "ApplicationSet"),
              ("argoproj.io/v1alpha1", "AppProject"), ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
              ("source.toolkit.fluxcd.io/v1", "GitRepository"))


def cluster_command(command):
    return own_cluster("gitops", command)


def run(playbook, kubeconfig, *args):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", K8S_AUTH_KUBECONFIG=kubeconfig, KUBECONFIG=kubeconfig)
    cmd = [PLAYBOOK, "-i", os.path.join(REPO, "inventories", "local"), os.path.join(REPO, playbook),
           "-e", "ansible_python_interpreter=%s" % sys.executable] + list(args)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500, check=False)
    proc.output = proc.stdout + proc.stderr
    return proc


def render(folder, tool):
    """site.yml and tenants.yml in GitOps render mode (no cluster)."""
    nowhere = os.path.join(str(folder), "no-such-kubeconfig")
    for playbook in ("site.yml", "playbooks/tenants.yml"):
        proc = run(playbook, nowhere, "-e", "neurallog_render_dir=%s" % folder, "-e", "neurallog_gitops=%s" % tool,
                   "-e", "neurallog_gitops_repo_url=%s" % REPO_URL, "-e", "neurallog_gitops_path=%s" % GITOPS_PATH)
        assert proc.returncode == 0, proc.output[-4000:]


def load(folder, pattern):
    """(relative path, object) of every document of the files matching ``pattern``."""
    out = []
    for path in sorted(glob.glob(os.path.join(str(folder), pattern))):
        with open(path) as handle:
            out += [(os.path.relpath(path, str(folder)), d) for d in yaml.safe_load_all(handle) if d]
    return out


def files(folder, *tops):
    out = {}
    for top in tops:
        for path in sorted(glob.glob(os.path.join(str(folder), top, "**"), recursive=True)):
            if os.path.isfile(path):
                with open(path, "rb") as handle:
                    out[os.path.relpath(path, str(folder))] = handle.read()
    return out


def key(obj):
    return (obj["kind"], (obj["metadata"]).get("namespace") or "", obj["metadata"]["name"])


def required_secrets(folder):
    """(Secret, namespace, name) listed in required-secrets/*.txt."""
    out = set()
    for path in glob.glob(os.path.join(str(folder), "required-secrets", "*.txt")):
        with open(path) as handle:
            for line in handle:
                found = re.match(r"^([a-z0-9-]+)/([a-z0-9.-]+) \(", line)
                if found:
                    out.add(("Secret", found.group(1), found.group(2)))
    return out


class GitOpsCluster:
    def __init__(self, kubeconfig):
        self.kubeconfig = kubeconfig
        self.api = config.new_client_from_config(config_file=kubeconfig)
        self.dynamic = DynamicClient(self.api)

    def resource(self, obj):
        return self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])

    def apply(self, obj, dry_run):
        kwargs = {"dry_run": "All"} if dry_run else {}
        return self.dynamic.server_side_apply(
            self.resource(obj), body=obj, name=obj["metadata"]["name"], namespace=obj["metadata"].get("namespace"),
            field_manager="neurallog-test-gitops", force_conflicts=True,
            query_params=[("fieldValidation", "Strict")], **kwargs)

    def install_crds(self):
        return install_crds(self, "gitops", TOOL_KINDS, apply=lambda crd: self.apply(crd, dry_run=False))

    def managed(self):
        """(kind, namespace, name) of every object with the platform's label,
        namespaced or not, made by an apply (not by a controller)."""
        out = set()
        for resource in self.dynamic.resources.search():
            if isinstance(resource, ResourceList) or "list" not in (resource.verbs or []) or "/" in resource.name:
                continue
            if resource.kind in CONTROLLER_KINDS:
                continue
            for item in resource.get(label_selector=MANAGED).to_dict().get("items") or []:
                out.add((resource.kind, item["metadata"].get("namespace") or "", item["metadata"]["name"]))
        return out


@pytest.fixture(scope="module")
def gitops_cluster():
    kubeconfig = cluster_command("up")
    try:
        yield GitOpsCluster(kubeconfig)
    finally:
        cluster_command("down")


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    out = {}
    for tool in ("argocd", "flux"):
        folder = tmp_path_factory.mktemp("gitops-" + tool)
        render(folder, tool)
        out[tool] = folder
    return out


def test_every_rendered_object_passes_a_server_side_dry_run_and_equals_what_site_yml_applies(gitops_cluster, renders):
    cluster = gitops_cluster
    print("CRDs installed: %s" % ", ".join(cluster.install_crds()))
    argocd, flux = renders["argocd"], renders["flux"]
    # the platform and the tenants are the same objects for both tools; only gitops/ differs
    assert files(argocd, "layers", "tenants", "required-secrets") == files(flux, "layers", "tenants",
                                                                           "required-secrets")
    layers = load(argocd, "layers/*/*.yaml")
    tenants = load(argocd, "tenants/admission/*.yaml") + load(argocd, "tenants/*/manifests/*.yaml")
    tools = dict((tool, load(renders[tool], "gitops/bootstrap.yaml") + load(renders[tool], "gitops/apps/*.yaml"))
                 for tool in renders)
    assert not [p for p, o in layers + tenants if o["kind"] == "Secret"], "a Secret was rendered"

    # The tools' namespaces (the user's), then every Namespace (dry run,
    # then created: the objects after them are dry-run inside them), then
    # the rest in the tools' order: layer by layer, the tenants after.
    for name in ("argocd", "flux-system"):
        cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, dry_run=False)
    everything = layers + tenants + tools["argocd"] + tools["flux"]
    namespaces = [(p, o) for p, o in everything if o["kind"] == "Namespace"]
    for _path, obj in namespaces:
        cluster.apply(obj, dry_run=True)
        cluster.apply(obj, dry_run=False)
    refused = []
    per_layer = collections.OrderedDict()
    for path, obj in everything:
        per_layer.setdefault(os.path.dirname(path), []).append(obj)
        if obj["kind"] == "Namespace":
            continue
        try:
            cluster.apply(obj, dry_run=True)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # every refusal is listed
            refused.append("%s %s: %s" % (path, "/".join(key(obj)), getattr(exc, "body", exc)))
    assert not refused, "\n".join(refused)
    # the dry run does check against the tools' schemas: an unknown field and
    # a missing required one are refused (server-side apply answers an
    # unknown field with 500 "field not declared in schema")
    application = dict(tools["argocd"][0][1], spec=dict(tools["argocd"][0][1]["spec"], sourceRepo="x"))
    kustomization = [o for _p, o in tools["flux"] if o["kind"] == "Kustomization"][0]
    kustomization = dict(kustomization, spec=dict((k, v) for k, v in kustomization["spec"].items() if k != "sourceRef"))
    for wrong, field in ((application, "sourceRepo"), (kustomization, "sourceRef")):
        with pytest.raises(Exception) as refusal:
            cluster.apply(wrong, dry_run=True)
        assert getattr(refusal.value, "status", None) in (400, 422, 500), refusal.value
        assert field in str(getattr(refusal.value, "body", "")), refusal.value
    for layer, objects in per_layer.items():
        print("%s (%d): %s" % (layer, len(objects), ", ".join(
            "%s %s" % (kind, n) for kind, n in sorted(collections.Counter(o["kind"] for o in objects).items()))))
    print("server-side dry run accepted: %d objects (%d Namespaces created)" % (len(everything), len(namespaces)))

    # What a GitOps tool applies (with the listed Secrets the user provides)
    # is what site.yml and tenants.yml apply directly.
    first = run("site.yml", cluster.kubeconfig)
    assert recap(first.output)[1] == 0, first.output[-4000:]
    tenants_run = run("playbooks/tenants.yml", cluster.kubeconfig)
    assert recap(tenants_run.output)[1] == 0, tenants_run.output[-4000:]
    direct = cluster.managed()
    gitops = set(key(o) for _p, o in layers + tenants) | required_secrets(argocd)
    assert gitops == direct, "only rendered: %s; only applied by site.yml/tenants.yml: %s" % (
        sorted(gitops - direct), sorted(direct - gitops))
    print("the same %d objects (kind/namespace/name) as site.yml and tenants.yml applied, %d of them Secrets "
          "listed in required-secrets/" % (len(direct), len(required_secrets(argocd))))
