# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The data roles' argument specs cover exactly their defaults, and the
preflight entry point validates the same settings as main."""

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
    assert specs["preflight"]["options"] == specs["main"]["options"]
    for name, option in specs["main"]["options"].items():
        assert option.get("description"), "%s has no description" % name
        assert option.get("default") == defaults[name], "%s: spec default differs from defaults/main.yml" % name


@pytest.mark.parametrize("role", ["postgresql", "redis", "elasticsearch"])
def test_role_depends_on_globals(role):
    assert _load(role, "meta", "main.yml")["dependencies"] == [{"role": "neurallog.platform.globals"}]
