"""The plan of a role (plugins/plugin_utils/reconcile.py), without a cluster:
`report` facts derived from the rendered objects, `notes`, and the facts of
roles that make no objects (the summary's settings)."""

import os

import pytest
import yaml

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from ansible_collections.neurallog.platform.plugins.plugin_utils.reconcile import (
    COMPONENTS, SETTING_ROLES, Plan, PlanError)


def make_roles(tmp_path, plans, defaults=None):
    """A roles folder with every role the engine knows; `plans` maps a role
    to its meta/plan.yml, `defaults` to its defaults/main.yml."""
    for name in SETTING_ROLES + COMPONENTS:
        os.makedirs(tmp_path / name / "meta")
        os.makedirs(tmp_path / name / "defaults")
        if name in plans:
            (tmp_path / name / "meta" / "plan.yml").write_text(yaml.safe_dump(plans[name]))
        if name in (defaults or {}):
            (tmp_path / name / "defaults" / "main.yml").write_text(yaml.safe_dump(defaults[name]))
    return str(tmp_path)


def build(roles_dir, task_vars=None, **kwargs):
    loader = DataLoader()
    plan = Plan(Templar(loader=loader, variables={}), loader, task_vars or {}, roles_dir, render_dir="/nonexistent",
                **kwargs)
    return plan.build()


SCALING = {
    "tags": ["scaling"],
    "phase": "edge",
    "manifests": [{"objects": "{{ [{'apiVersion': 'autoscaling/v2', 'kind': 'HorizontalPodAutoscaler',"
                              " 'metadata': {'name': 'a-hpa', 'namespace': 'sys'}}] if hpa else [] }}"}],
    "report": [{"scaling_report": "{{ _objects | map(attribute='kind') | zip(_objects | map(attribute='metadata.name'))"
                                  " | map('join', ' ') | list }}"}],
    "notes": [{"when": "not hpa", "msg": "no   autoscaler\n for {{ service }}"},
              {"when": "hpa and service == 'b'", "msg": "never shown"}],
}


def test_report_facts_are_derived_from_the_rendered_objects(tmp_path):
    roles = make_roles(tmp_path, {"scaling": SCALING})
    plan = build(roles, {"hpa": True, "service": "a"})
    assert plan.facts["scaling_report"] == ["HorizontalPodAutoscaler a-hpa"]
    assert "scaling_report" in plan.public_facts()
    assert plan.notes() == []


def test_report_facts_and_notes_only_for_selected_roles(tmp_path):
    roles = make_roles(tmp_path, {"scaling": SCALING})
    assert "scaling_report" not in build(roles, {"hpa": False, "service": "a"}, run_tags=["redis"]).facts
    plan = build(roles, {"hpa": False, "service": "a"})
    assert plan.facts["scaling_report"] == []
    assert plan.notes() == ["no autoscaler for a"]
    assert build(roles, {"hpa": False, "service": "a"}, skip_tags=["scaling"]).notes() == []


def test_a_role_without_objects_derives_facts_after_the_components(tmp_path):
    roles = make_roles(
        tmp_path,
        {"core_services": {"facts": [{"core_services_resolved": "{{ ['api'] }}"}]},
         "summary": {"facts": [{"summary_settings": {"enabled": "{{ summary_enabled | bool }}",
                                                     "services": "{{ core_services_resolved | length }}"}}]}},
        defaults={"summary": {"summary_enabled": True}})
    plan = build(roles, {"summary_enabled": "no"})
    assert plan.facts["summary_settings"] == {"enabled": False, "services": 1}
    assert "summary" not in plan.selected


def test_unknown_plan_keys_are_refused(tmp_path):
    roles = make_roles(tmp_path, {"scaling": dict(SCALING, reports=[])})
    with pytest.raises(PlanError, match="scaling/meta/plan.yml: unknown keys reports"):
        build(roles)


class FakeCluster:
    """Cluster.list over fixed objects (nothing of ours exists yet)."""

    def __init__(self, namespaces):
        self.namespaces = namespaces

    def list(self, api_version, kind, namespace=None, label_selector=None):
        if kind == "Namespace":
            return [{"metadata": {"name": name}} for name in self.namespaces]
        return []


def _policy(namespace):
    return ("{'apiVersion': 'networking.k8s.io/v1', 'kind': 'NetworkPolicy',"
            " 'metadata': {'name': 'deny', 'namespace': '%s'}}" % namespace)


CHECK_MODE_PLANS = {
    "namespaces": {"phase": "namespaces", "manifests": [
        {"objects": "{{ [{'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': 'new'}}] }}"}]},
    "network_policies": {"phase": "policies", "manifests": [
        {"objects": "{{ [%s, %s] }}" % (_policy("new"), _policy("old"))}]},
}


def test_check_mode_names_objects_of_namespaces_the_run_would_create(tmp_path):
    roles = make_roles(tmp_path, CHECK_MODE_PLANS)
    loader = DataLoader()
    plan = Plan(Templar(loader=loader, variables={}), loader, {}, roles, cluster=FakeCluster(["old"]),
                check_mode=True).build()
    phases = dict((phase["name"], phase) for phase in plan.phases())
    assert [o["metadata"]["name"] for o in phases["namespaces"]["objects"]] == ["new"]
    assert phases["namespaces"]["deferred"] == []
    assert [o["metadata"]["namespace"] for o in phases["policies"]["objects"]] == ["old"]
    assert phases["policies"]["deferred"] == ["NetworkPolicy new/deny"]


def test_a_real_run_applies_everything_it_plans(tmp_path):
    roles = make_roles(tmp_path, CHECK_MODE_PLANS)
    loader = DataLoader()
    plan = Plan(Templar(loader=loader, variables={}), loader, {}, roles, cluster=FakeCluster(["old"])).build()
    phases = dict((phase["name"], phase) for phase in plan.phases())
    assert [o["metadata"]["namespace"] for o in phases["policies"]["objects"]] == ["new", "old"]
    assert not phases["policies"].get("deferred")
