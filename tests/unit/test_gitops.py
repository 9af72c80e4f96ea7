# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GitOps render mode (neurallog_gitops; plugins/module_utils/gitops.py):
the layers and the tools' objects as data, the settings refused with
messages naming them, and, through site.yml and tenants.yml in render mode
(no cluster), two renders writing the same bytes. The cluster side (CRDs,
server-side dry run, the same objects as site.yml) is
tests/cluster/test_gitops_render.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.neurallog.platform.plugins.module_utils import gitops

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"neurallog_gitops": "argocd", "neurallog_gitops_repo_url": "https://git.example.com/ops/deploy.git",
        "neurallog_gitops_revision": "main", "neurallog_gitops_path": "clusters/prod/neurallog",
        "neurallog_gitops_project": "default", "neurallog_gitops_interval": "10m",
        "neurallog_common_labels": {"app.kubernetes.io/part-of": "neurallog"}}


def settings(**changes):
    values = dict(GOOD, **changes)
    return gitops.settings_from(values)


def test_objects_go_to_their_layer_by_phase_and_kind():
    groups = [("namespaces", "namespaces", [{"kind": "Namespace", "metadata": {"name": "a"}}]),
              ("network_policies", "policies", [{"kind": "NetworkPolicy", "metadata": {"name": "p"}}]),
              ("postgresql", "data", [{"kind": "StatefulSet", "metadata": {"name": "pg"}},
                                      {"kind": "Job", "metadata": {"name": "migrate"}}]),
              ("core_services", "core", [{"kind": "Deployment", "metadata": {"name": "api"}}]),
              ("monitoring", "edge", [{"kind": "CustomResourceDefinition", "metadata": {"name": "x"}}])]
    out = gitops.split_layers(groups)
    named = dict((path, [o["metadata"]["name"] for o in objects]) for path, objects in out.items() if objects)
    assert named == {"layers/00-namespaces/namespaces.yaml": ["a"],
                     "layers/00-namespaces/network_policies.yaml": ["p"],
                     "layers/10-data/postgresql.yaml": ["pg"],
                     "layers/20-migrations/postgresql.yaml": ["migrate"],
                     "layers/30-core/core_services.yaml": ["api"],
                     "layers/00-namespaces/monitoring.yaml": ["x"]}
    # every other (layer, group) file is listed empty: a render removes it
    assert len(out) == len(groups) * len(gitops.LAYERS)


def test_argocd_applications_have_sync_waves_in_layer_order():
    apps = gitops.layer_objects(settings(), ["00-namespaces", "10-data", "30-core", "40-edge"])
    assert [(a["kind"], a["metadata"]["name"], a["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
            for a in apps] == [("Application", "neurallog-namespaces", "0"), ("Application", "neurallog-data", "1"),
                               ("Application", "neurallog-core", "3"), ("Application", "neurallog-edge", "4")]
    assert apps[1]["metadata"]["namespace"] == "argocd"
    assert apps[1]["spec"]["source"] == {"repoURL": "https://git.example.com/ops/deploy.git", "targetRevision": "main",
                                         "path": "clusters/prod/neurallog/layers/10-data",
                                         "directory": {"recurse": False}}
    root = gitops.bootstrap_objects(settings())
    assert [(o["kind"], o["spec"]["source"]["path"]) for o in root] == [
        ("Application", "clusters/prod/neurallog/gitops/apps")]


def test_flux_kustomizations_depend_on_the_layer_before():
    values = settings(neurallog_gitops="flux", neurallog_gitops_revision="refs/tags/v1.0.0")
    ks = gitops.layer_objects(values, ["00-namespaces", "10-data", "20-migrations", "30-core"])
    assert [(k["metadata"]["name"], [d["name"] for d in k["spec"].get("dependsOn", [])]) for k in ks] == [
        ("neurallog-namespaces", []), ("neurallog-data", ["neurallog-namespaces"]),
        ("neurallog-migrations", ["neurallog-data"]), ("neurallog-core", ["neurallog-migrations"])]
    assert ks[0]["metadata"]["namespace"] == "flux-system"
    assert ks[0]["spec"]["path"] == "./clusters/prod/neurallog/layers/00-namespaces"
    source, root = gitops.bootstrap_objects(values)
    assert source["kind"] == "GitRepository" and source["spec"]["ref"] == {"name": "refs/tags/v1.0.0"}
    assert gitops.bootstrap_objects(settings(neurallog_gitops="flux"))[0]["spec"]["ref"] == {"branch": "main"}
    commit = "0123456789abcdef0123456789abcdef01234567"
    assert gitops.bootstrap_objects(settings(neurallog_gitops="flux", neurallog_gitops_revision=commit))[0][
        "spec"]["ref"] == {"commit": commit}
    assert root["spec"]["path"] == "./clusters/prod/neurallog/gitops/apps"


def test_tenants_argocd_application_set_and_flux_kustomization_per_tenant():
    admission, appset = gitops.tenant_objects(settings(), ["acme"])
    assert admission["spec"]["source"]["path"] == "clusters/prod/neurallog/tenants/admission"
    assert appset["kind"] == "ApplicationSet"
    assert appset["spec"]["generators"] == [{"git": {
        "repoURL": "https://git.example.com/ops/deploy.git", "revision": "main",
        "files": [{"path": "clusters/prod/neurallog/tenants/*/tenant.yaml"}]}}]
    assert appset["spec"]["template"]["spec"]["source"]["path"] == "{{.path.path}}/manifests"
    assert appset["spec"]["template"]["metadata"]["name"] == "neurallog-tenant-{{.id}}"
    flux = gitops.tenant_objects(settings(neurallog_gitops="flux"), ["zeta", "acme"], "neurallog-namespaces")
    assert [(k["metadata"]["name"], k["spec"]["path"], [d["name"] for d in k["spec"]["dependsOn"]]) for k in flux] == [
        ("neurallog-tenant-admission", "./clusters/prod/neurallog/tenants/admission", ["neurallog-namespaces"]),
        ("neurallog-tenant-acme", "./clusters/prod/neurallog/tenants/acme/manifests", ["neurallog-tenant-admission"]),
        ("neurallog-tenant-zeta", "./clusters/prod/neurallog/tenants/zeta/manifests", ["neurallog-tenant-admission"])]


@pytest.mark.parametrize("changes,message", [
    ({"neurallog_gitops": "helm"}, "neurallog_gitops must be one of none, argocd, flux, got 'helm'"),
    ({"neurallog_gitops_repo_url": ""}, "neurallog_gitops_repo_url must be the Git repository's URL"),
    ({"neurallog_gitops_repo_url": "deploy.git"}, "neurallog_gitops_repo_url must be the Git repository's URL"),
    ({"neurallog_gitops_path": ""}, "neurallog_gitops_path must be the render folder's path inside the repository"),
    ({"neurallog_gitops_path": "a/../b"}, "neurallog_gitops_path must be"),
    ({"neurallog_gitops_revision": "my branch"}, "neurallog_gitops_revision must be a branch"),
    ({"neurallog_gitops_namespace": "Argo_CD"}, "neurallog_gitops_namespace must be a namespace name"),
    ({"neurallog_gitops_project": ""}, "neurallog_gitops_project must name an Argo CD project"),
    ({"neurallog_gitops": "flux", "neurallog_gitops_interval": "ten minutes"},
     "neurallog_gitops_interval must be a Go duration"),
    ({"neurallog_gitops_prune": "sometimes"}, "neurallog_gitops_prune must be true or false, got 'sometimes'"),
])
def test_bad_settings_are_refused_naming_the_setting(changes, message):
    with pytest.raises(gitops.GitOpsSettingError) as refused:
        gitops.validate(settings(**changes), "/tmp/render")
    assert message in str(refused.value)
    gitops.validate(settings(), "/tmp/render")
    gitops.validate(settings(neurallog_gitops="none", neurallog_gitops_repo_url=""), "")


def test_prune_given_as_text_is_a_boolean():
    for text, expected in (("true", True), ("false", False), ("no", False)):
        values = settings(neurallog_gitops_prune=text)
        gitops.validate(values, "/tmp/render")
        assert values["prune"] is expected
        assert gitops.layer_objects(values, ["10-data"])[0]["spec"]["syncPolicy"]["automated"]["prune"] is expected


def test_gitops_needs_a_render_folder():
    with pytest.raises(gitops.GitOpsSettingError, match="neurallog_gitops=argocd writes files: set neurallog_render_dir"):
        gitops.validate(settings(), "")


# -- through the playbooks (render mode, no cluster) ------------------------

GITOPS_ARGS = ["neurallog_gitops=argocd", "neurallog_gitops_repo_url=https://git.example.com/ops/deploy.git",
               "neurallog_gitops_path=clusters/prod/neurallog"]


def run(playbook, folder, *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               K8S_AUTH_KUBECONFIG=str(folder) + "-no-kubeconfig", KUBECONFIG=str(folder) + "-no-kubeconfig")
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), playbook, "-i", "inventories/local",
           "-e", "neurallog_render_dir=%s" % folder]
    for arg in extra:
        cmd += ["-e", arg]
    return subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=600, check=False)


def tree(folder):
    out = {}
    for dirpath, _dirs, names in os.walk(str(folder)):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, str(folder))] = handle.read()
    return out


@pytest.mark.parametrize("tool", ["argocd", "flux"])
def test_two_renders_are_byte_identical_and_hold_no_secret(tmp_path, tool):
    folders = [tmp_path / "first", tmp_path / "second"]
    for folder in folders:
        for playbook in ("site.yml", "playbooks/tenants.yml"):
            proc = run(playbook, folder, "neurallog_gitops=%s" % tool, *GITOPS_ARGS[1:])
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    first, second = tree(folders[0]), tree(folders[1])
    assert first == second, sorted(p for p in set(first) | set(second) if first.get(p) != second.get(p))
    print("%s: %d files, %d bytes, byte-identical in both renders" % (tool, len(first), sum(map(len, first.values()))))
    assert "gitops/bootstrap.yaml" in first and "gitops/apps/layers.yaml" in first and "gitops/apps/tenants.yaml" in first
    assert "tenants/demo/tenant.yaml" in first and "tenants/demo/manifests/tenant.yaml" in first
    assert not [p for p in first if p.startswith("secrets/") or "/" not in p], sorted(first)
    for path, content in first.items():
        if path.endswith(".yaml"):
            assert "kind: Secret\n" not in content.decode(), path
    assert b"neurallog-data/postgresql" in first["required-secrets/postgresql.txt"]
    # only the keys the user stores: each Elasticsearch node makes its file realm line itself
    assert b"\nneurallog-data/elasticsearch (Opaque): password, services-password\n" in \
        first["required-secrets/elasticsearch.txt"], first["required-secrets/elasticsearch.txt"]
    # a third render into the same folder changes nothing
    again = run("site.yml", folders[0], "neurallog_gitops=%s" % tool, *GITOPS_ARGS[1:])
    assert "changed=0" in again.stdout, again.stdout[-3000:]
    assert tree(folders[0]) == first


def test_bad_gitops_setting_fails_before_anything_is_written(tmp_path):
    folder = tmp_path / "out"
    proc = run("site.yml", folder, "neurallog_gitops=argocd", "neurallog_gitops_repo_url=deploy.git",
               "neurallog_gitops_path=clusters/prod")
    assert proc.returncode != 0
    assert "neurallog_gitops_repo_url must be the Git repository's URL" in proc.stdout, proc.stdout[-3000:]
    assert not folder.exists()
    tenants = run("playbooks/tenants.yml", folder, "neurallog_gitops=flux", *GITOPS_ARGS[1:2])
    assert tenants.returncode != 0
    assert "neurallog_gitops_path must be the render folder's path" in tenants.stdout, tenants.stdout[-3000:]
    assert not folder.exists()
    unknown = run("site.yml", folder, "neurallog_gitops=helm")
    assert unknown.returncode != 0 and "neurallog_gitops" in unknown.stdout and "argocd" in unknown.stdout
    assert not folder.exists()


def test_gitops_without_a_render_folder_fails_before_the_cluster_is_read(tmp_path):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               K8S_AUTH_KUBECONFIG=str(tmp_path / "none"), KUBECONFIG=str(tmp_path / "none"))
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "site.yml", "-i", "inventories/local",
                           "-e", "neurallog_gitops=flux"], cwd=str(ROOT), env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode != 0
    assert "Invalid GitOps settings: neurallog_gitops=flux writes files: set neurallog_render_dir" in proc.stdout, \
        proc.stdout[-3000:]


def test_layers_files_are_valid_yaml_streams(tmp_path):
    folder = tmp_path / "out"
    proc = run("site.yml", folder, *GITOPS_ARGS)
    assert proc.returncode == 0, proc.stdout[-3000:]
    for path in sorted(folder.glob("layers/*/*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert docs and all("kind" in d for d in docs), path


def test_onboarding_one_tenant_adds_its_folder_and_keeps_the_others(tmp_path):
    folder = tmp_path / "out"
    flux = ["neurallog_gitops=flux"] + GITOPS_ARGS[1:]
    proc = run("playbooks/tenants.yml", folder, *flux)
    assert proc.returncode == 0, proc.stdout[-3000:]
    demo = tree(folder / "tenants" / "demo")
    tenant_file = tmp_path / "acme.yml"
    tenant_file.write_text("id: acme\nname: Acme\norganizations: [ops]\n")
    onboard = run("playbooks/tenant_onboard.yml", folder, "tenant_file=%s" % tenant_file, *flux)
    assert onboard.returncode == 0, onboard.stdout[-3000:]
    assert tree(folder / "tenants" / "demo") == demo
    assert yaml.safe_load((folder / "tenants" / "acme" / "tenant.yaml").read_text()) == {
        "id": "acme", "name": "Acme", "organizations": ["ops"]}
    objects = [d for d in yaml.safe_load_all((folder / "tenants" / "acme" / "manifests" / "tenant.yaml").read_text()) if d]
    assert {o["metadata"].get("namespace") or o["metadata"]["name"] for o in objects} == {"tenant-acme", "tenant-acme-org-ops"}
    assert all(o["metadata"]["labels"]["tenant"] == "acme" for o in objects)
    assert "tenant-acme/redis-credentials (Opaque)" in (folder / "required-secrets" / "tenant-acme.txt").read_text()
    kustomizations = [d for d in yaml.safe_load_all((folder / "gitops" / "apps" / "tenants.yaml").read_text()) if d]
    assert [k["metadata"]["name"] for k in kustomizations] == [
        "neurallog-tenant-admission", "neurallog-tenant-acme", "neurallog-tenant-demo"]


@pytest.mark.parametrize("tool", ["argocd"])
def test_external_secrets_backend_writes_externalsecret_references_not_a_list(tmp_path, tool):
    """neurallog_secrets_backend=external-secrets: the layers hold the
    ExternalSecrets (no Secret, no value, no placeholder), required-secrets/
    lists none of the platform's or the tenants' Secrets; two renders are
    byte-identical."""
    backend = ["neurallog_secrets_backend=external-secrets",
               '{"neurallog_external_secrets": {"store_name": "vault", "store_kind": "ClusterSecretStore", '
               '"key_prefix": "neurallog/"}}']
    folders = [tmp_path / "first", tmp_path / "second"]
    for folder in folders:
        for playbook in ("site.yml", "playbooks/tenants.yml"):
            proc = run(playbook, folder, "neurallog_gitops=%s" % tool, *(GITOPS_ARGS[1:] + backend))
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    first = tree(folders[0])
    assert first == tree(folders[1])
    assert not [p for p in first if p.startswith("required-secrets/") or p.startswith("secrets/")], sorted(first)
    external = {}
    for path, content in first.items():
        text = content.decode()
        assert "kind: Secret\n" not in text and "NLXREF" not in text, path
        for doc in yaml.safe_load_all(text):
            if doc and doc.get("kind") == "ExternalSecret":
                external[(doc["metadata"]["namespace"], doc["metadata"]["name"])] = (path, doc["spec"])
    assert external[("neurallog-data", "postgresql")][0] == "layers/10-data/postgresql.yaml"
    # the tenants too: their Redis Secret is an ExternalSecret in the
    # tenant's folder, required-secrets/ lists no tenant-<id>.txt
    path, spec = external[("tenant-demo", "redis-credentials")]
    assert path.startswith("tenants/demo/"), path
    assert spec["data"] == [{"secretKey": "redis_credentials_password", "remoteRef": {
        "key": "neurallog/tenant-demo/redis-credentials", "property": "password"}}]
    path, spec = external[("neurallog-system", "database-credentials")]
    assert path == "layers/10-data/postgresql.yaml"
    assert spec["secretStoreRef"] == {"name": "vault", "kind": "ClusterSecretStore"}
    assert spec["data"] == [{"secretKey": "postgresql_password", "remoteRef": {
        "key": "neurallog/neurallog-data/postgresql", "property": "password"}}]
    # the services' Elasticsearch password, read from the store: no `users` line to template
    path, spec = external[("neurallog-data", "elasticsearch")]
    assert sorted(spec["target"]["template"]["data"]) == ["password", "services-password"]
    assert [item["remoteRef"]["property"] for item in spec["data"]] == ["password", "services-password"]
