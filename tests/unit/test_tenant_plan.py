# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure parts of the tenant plan (module_utils/tenant.py): the prune
check and its messages, what is read, what is pending per phase; the
defaults read from the roles (one place); the tenant_resources module run
through Ansible gives what module_utils gives."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "collections"))

from ansible_collections.neurallog.platform.plugins.module_utils import manifests as m  # noqa: E402
from ansible_collections.neurallog.platform.plugins.module_utils import tenant as t  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "docker.io/library/redis:7.0.15-alpine"
MANAGED = {"app.kubernetes.io/managed-by": "neurallog.platform"}


def namespace(name, tenant, ns_type):
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": dict(MANAGED, tenant=tenant, type=ns_type)}}


def built(tenants=None):
    tenants = tenants or [{"id": "acme", "organizations": ["ops"]}, {"id": "beta"}]
    return t.build_resources(tenants, {"redis_image": IMAGE}, passwords={"acme": "a" * 32, "beta": "b" * 32})


def live_of(objects):
    """What the cluster holds after applying ``objects`` (stamped), per kind."""
    groups = {}
    for obj in m.stamp_applied_hash(objects):
        live = copy.deepcopy(obj)
        live["metadata"]["resourceVersion"] = "1"
        groups.setdefault(obj["kind"], []).append(live)
    return [{"kind": kind, "items": items} for kind, items in groups.items()]


# --- defaults: one place --------------------------------------------------

def test_defaults_come_from_the_role_files(tmp_path):
    for role in ("tenant", "globals"):
        (tmp_path / role / "defaults").mkdir(parents=True)
    (tmp_path / "tenant" / "defaults" / "main.yml").write_text(yaml.safe_dump({
        "tenant_default_tier": "gold", "tenant_ingress_domain": "{{ ingress_domain | default('example.org') }}",
        "tenant_cluster_domain": "{{ undefined_thing.attribute }}"}))
    (tmp_path / "globals" / "defaults" / "main.yml").write_text(yaml.safe_dump({
        "neurallog_pod_security_level": "baseline"}))
    defaults = t.role_defaults(str(tmp_path))
    # a template gives its fallback; one that cannot be rendered gives no default
    assert defaults == {"default_tier": "gold", "ingress_domain": "example.org", "pod_security_level": "baseline"}
    assert t.role_defaults(str(tmp_path / "absent")) == {}


def test_module_utils_defaults_are_the_roles():
    with open(ROOT / "roles" / "tenant" / "defaults" / "main.yml") as handle:
        role = yaml.safe_load(handle)
    assert t.DEFAULT_SETTINGS["tiers"] == role["tenant_tiers"]
    assert t.DEFAULT_SETTINGS["redis"] == role["tenant_redis"]
    assert t.DEFAULT_SETTINGS["ingress_domain"] == "neurallog.com"
    # no copy left in the Python source
    source = (ROOT / "plugins" / "module_utils" / "tenant.py").read_text()
    for literal in ('"1280Mi"', '"kube-dns"', '"maxmemory_policy": "allkeys-lru"', '"tenant-{tenant}-admins"'):
        assert literal not in source


# --- the prune check ------------------------------------------------------

LIVE = [namespace("tenant-old", "old", "tenant-root"), namespace("tenant-gone", "gone", "tenant-root"),
        namespace("tenant-gone-org-x", "gone", "organization"), namespace("tenant-keep", "keep", "tenant-root")]


def test_report_names_undeclared_tenants_and_their_namespaces():
    check = t.prune_check(["keep"], LIVE)
    assert check["undeclared"] == ["gone", "old"]
    assert check["report"] == ("Tenants in the cluster but not declared in tenant_list: 2: gone (tenant-gone, "
                               "tenant-gone-org-x); old (tenant-old) (kept; set tenant_prune=true to remove them)")
    assert check["refusal"] == ""
    assert t.prune_check(["keep", "gone", "old"], LIVE)["report"] == (
        "Tenants in the cluster but not declared in tenant_list: none")


def test_prune_refusals():
    assert t.prune_check([], LIVE, prune=True)["refusal"] == (
        "tenant_prune=true with an empty tenant_list would offboard every tenant in the cluster (3: gone, keep, old); "
        "refusing. Declare the tenants to keep in tenant_list, or offboard tenants one by one with "
        "playbooks/tenant_offboard.yml. Nothing was changed.")
    assert t.prune_check(["keep"], LIVE, prune=True, confirm="1")["refusal"] == (
        "tenant_prune would offboard 2 tenants (gone, old), more than tenant_prune_threshold=1; to go ahead, confirm "
        "the number with -e tenant_prune_confirm=2 (given: \"1\"). Nothing was changed.")
    assert t.prune_check(["keep"], LIVE, prune=True, confirm=2)["refusal"] == ""
    assert t.prune_check(["keep"], LIVE, prune=True, threshold=2)["refusal"] == ""
    stolen = LIVE + [namespace("tenant-keep-org-a", "gone", "organization")]
    assert t.prune_check(["keep"], stolen, prune=True, confirm="2")["refusal"].startswith(
        "Refusing to prune: namespace 'tenant-keep-org-a' is labelled tenant=gone")


# --- reads and phases -----------------------------------------------------

def test_one_read_per_kind():
    result = built()
    reads = t.live_reads(result["admission_resources"] + result["resources"], ["acme", "beta"])
    kinds = [kind for _api, kind, _selector in reads]
    assert len(kinds) == len(set(kinds))
    selectors = dict((kind, selector) for _api, kind, selector in reads)
    assert selectors["Namespace"] == "tenant"
    assert selectors["ValidatingAdmissionPolicy"] == t.ADMISSION_SELECTOR
    assert selectors["StatefulSet"] == "app.kubernetes.io/managed-by=neurallog.platform,tenant in (acme,beta)"
    many = ["t%d" % i for i in range(t.SELECTOR_MAX_TENANTS + 1)]
    assert t.live_selector(many) == "app.kubernetes.io/managed-by=neurallog.platform,tenant"


def test_everything_is_pending_on_an_empty_cluster_in_phase_order():
    result = built()
    planned = t.pending_phases(result, [], wait_timeout=120)
    names = [p["name"] for p in planned["phases"]]
    assert names == ["namespaces", "tenants"]
    first, rest = planned["phases"]
    kinds = [o["kind"] for o in first["objects"]]
    # admission policies before any tenant namespace exists
    assert kinds == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"] * 2 + ["Namespace"] * 3
    assert [o["kind"] for o in rest["secrets"]] == ["Secret", "Secret"]
    assert "Secret" not in [o["kind"] for o in rest["objects"]]
    assert rest["wait"] == [
        {"api_version": "apps/v1", "kind": "StatefulSet", "namespace": "tenant-%s" % tenant, "name": "redis",
         "timeout": 120, "role": "tenant"} for tenant in ("acme", "beta")]
    every = [o for p in planned["phases"] for o in p["objects"] + p["secrets"]]
    assert len(every) == len(result["resources"]) + len(result["admission_resources"])
    assert all(m.APPLIED_HASH_ANNOTATION in o["metadata"]["annotations"] for o in every)


def test_nothing_is_pending_or_waited_for_when_the_cluster_holds_it():
    result = built()
    live = live_of(result["admission_resources"] + result["resources"])
    assert t.pending_phases(result, live, wait_timeout=120) == {"phases": [], "new_namespaces": []}


def test_only_what_changed_is_pending_and_only_applied_statefulsets_are_waited_for():
    old = built()
    live = live_of(old["admission_resources"] + old["resources"])
    new = built([{"id": "acme", "organizations": ["ops"]}, {"id": "beta", "redis": {"maxmemory": "512mb"}}])
    phases = t.pending_phases(new, live, wait_timeout=60)["phases"]
    assert [p["name"] for p in phases] == ["tenants"]
    assert [(o["kind"], o["metadata"]["namespace"]) for o in phases[0]["objects"]] == [
        ("ConfigMap", "tenant-beta"), ("StatefulSet", "tenant-beta")]
    assert [w["namespace"] for w in phases[0]["wait"]] == ["tenant-beta"]
    # without tenant_wait nothing is waited for; without the comparison everything is applied
    assert t.pending_phases(new, live)["phases"][0]["wait"] == []
    everything = t.pending_phases(new, live, compare=False)["phases"]
    assert sum(len(p["objects"]) + len(p["secrets"]) for p in everything) == (
        len(new["resources"]) + len(new["admission_resources"]))


def test_check_mode_leaves_out_the_objects_of_new_namespaces():
    result = built()
    planned = t.pending_phases(result, [], existing_namespaces=["tenant-acme"])
    assert planned["new_namespaces"] == ["tenant-acme-org-ops", "tenant-beta"]
    objects = [o for p in planned["phases"] for o in p["objects"] + p["secrets"]]
    assert {o["metadata"].get("namespace") for o in objects} == {None, "tenant-acme"}
    assert sorted(o["metadata"]["name"] for o in objects if o["kind"] == "Namespace") == [
        "tenant-acme", "tenant-acme-org-ops", "tenant-beta"]


def test_render_groups_keep_the_file_names():
    groups = dict(t.render_groups(built()))
    assert list(groups) == ["tenant-admission", "tenants", "tenant-secrets", "tenant-redis"]
    assert {o["kind"] for o in groups["tenant-secrets"]} == {"Secret"}
    assert {o["kind"] for o in groups["tenant-redis"]} == {"StatefulSet"}


# --- the module through Ansible: the roles' defaults, same output --------

def test_tenant_resources_through_ansible_gives_the_module_utils_result(tmp_path):
    playbook = tmp_path / "play.yml"
    out = tmp_path / "result.json"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [
            {"name": "Build", "neurallog.platform.tenant_resources": {
                "tenant": {"id": "acme", "organizations": ["ops"]}, "redis_image": IMAGE,
                "redis_passwords": {"acme": "p" * 32}}, "register": "built", "no_log": True},
            {"name": "Write", "ansible.builtin.copy": {"content": "{{ built | to_json }}", "dest": str(out)}},
        ]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), str(playbook), "-i", "localhost,",
                           "-e", "ansible_python_interpreter=%s" % sys.executable],
                          cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    result = json.loads(out.read_text())
    expected = t.build_resources([{"id": "acme", "organizations": ["ops"]}], {"redis_image": IMAGE},
                                 passwords={"acme": "p" * 32})
    assert result["resources"] == expected["resources"]
    assert result["admission_resources"] == expected["admission_resources"]
