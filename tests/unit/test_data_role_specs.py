# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The data roles' argument specs cover exactly their defaults, and the
three data services are described the same way, as data: a meta/plan.yml
the reconcile engine validates and checks before anything changes, and no
task file of their own."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
import yaml

ROLES = os.path.join(os.path.dirname(__file__), "..", "..", "roles")


def _load(role, *path):
    with open(os.path.join(ROLES, role, *path)) as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize("role", ["postgresql", "redis", "elasticsearch"])
def test_argument_specs_cover_every_default(role):
    defaults = _load(role, "defaults", "main.yml")
    specs = _load(role, "meta", "argument_specs.yml")["argument_specs"]
    assert sorted(specs["main"]["options"]) == sorted(defaults)
    # The plan validates the settings against `main` (the only entry point).
    assert list(specs) == ["main"]
    for name, option in specs["main"]["options"].items():
        assert option.get("description"), "%s has no description" % name
        assert option.get("default") == defaults[name], "%s: spec default differs from defaults/main.yml" % name


@pytest.mark.parametrize("role", ["postgresql", "redis", "elasticsearch"])
def test_role_depends_on_globals(role):
    assert _load(role, "meta", "main.yml")["dependencies"] == [{"role": "neurallog.platform.globals"}]


@pytest.mark.parametrize("role", ["postgresql", "redis", "elasticsearch"])
def test_data_service_is_one_plan_and_no_task_file(role):
    plan = _load(role, "meta", "plan.yml")
    assert plan["tags"] == ["data", role] and plan["phase"] == "data"
    for key in ("checks", "credentials", "facts", "manifests", "immutable", "wait"):
        assert plan.get(key), "%s/meta/plan.yml has no %s" % (role, key)
    # the passwords are kept, and refused when lost with the data volumes kept
    assert all(entry.get("claims_selector") and entry.get("service") == role for entry in plan["credentials"])
    assert os.listdir(os.path.join(ROLES, role, "tasks")) == ["main.yml"]
    main = _load(role, "tasks", "main.yml")
    assert [task["ansible.builtin.include_role"]["name"] for task in main] == ["neurallog.platform.reconcile"]
    assert main[0]["vars"] == {"reconcile_components": [role]}
