# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation patterns refuse a trailing newline. With Python's re.match
(Ansible's `match` and `regex` tests, and module_utils), '$' also matches
before a final newline, so "redis\\n" passed a '^...$' pattern. Each pattern
is read from the file that uses it (a task file or a plan) and evaluated with Ansible's own tests."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import sys

import pytest
import yaml
from ansible.plugins.test.core import regex as ansible_regex

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "collections"))

from ansible_collections.neurallog.platform.plugins.module_utils import services  # noqa: E402

REPO = os.path.join(os.path.dirname(__file__), "..", "..")


def inline_pattern(path, expression):
    """The pattern of `<expression>('<pattern>')` in a task file and its match type."""
    with open(os.path.join(REPO, path)) as handle:
        text = handle.read()
    found = re.search(re.escape(expression) + r"\('([^']*)'\)", text)
    assert found, "%s: %s(...) not found" % (path, expression)
    return found.group(1), "match" if expression.endswith(" match") else "search"


def vars_pattern(path, name):
    with open(os.path.join(REPO, path)) as handle:
        return yaml.safe_load(handle)[name], "search"


@pytest.mark.parametrize("source, valid", [
    (inline_pattern("roles/airgap_bundle/tasks/preflight.yml", "airgap_bundle_python_version is match"), "3.11"),
    (inline_pattern("roles/airgap_install/tasks/preflight.yml", "airgap_install_registry is match"), "registry.local:5000"),
    (inline_pattern("roles/elasticsearch/meta/plan.yml", "elasticsearch_name is ansible.builtin.regex"), "elasticsearch"),
    (inline_pattern("roles/elasticsearch/meta/plan.yml", "elasticsearch_cluster_name is ansible.builtin.regex"), "neurallog"),
    (inline_pattern("roles/postgresql/meta/plan.yml", "postgresql_name is ansible.builtin.regex"), "postgresql"),
    (inline_pattern("roles/redis/meta/plan.yml", "redis_name is ansible.builtin.regex"), "redis"),
    (inline_pattern("roles/redis/meta/plan.yml", "redis_maxmemory | string | lower is ansible.builtin.regex"), "2gb"),
    (inline_pattern("roles/ingress/meta/plan.yml", "ingress_domain is match"), "logs.example.com"),
    (inline_pattern("roles/preflight/meta/plan.yml", "preflight_min_kubernetes_version is match"), "1.30"),
    (inline_pattern("roles/tenant/tasks/offboard.yml", "tenant_offboard_id | string is match"), "acme"),
    (vars_pattern("roles/postgresql/vars/main.yml", "_postgresql_identifier_regex"), "neurallog"),
])
def test_role_patterns_refuse_a_trailing_newline(source, valid):
    pattern, match_type = source
    assert ansible_regex(valid, pattern, match_type=match_type)
    assert not ansible_regex(valid + "\n", pattern, match_type=match_type)


@pytest.mark.parametrize("description, message", [
    ({"resources": {"requests": {"cpu": "1\n", "memory": "1Gi"}}}, "resources.requests.cpu: '1\\n' is not a Kubernetes quantity"),
    ({"env": {"LEVEL\n": "x"}}, "is not a valid environment variable name"),
])
def test_service_descriptions_refuse_a_trailing_newline(description, message):
    with pytest.raises(services.ServiceError) as err:
        services.resolve_services({"api-service": description}, {
            "replicas": 1, "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}, None, ["api-service"], {})
    assert message in str(err.value)


def test_service_names_refuse_a_trailing_newline():
    with pytest.raises(services.ServiceError, match="is not a valid name"):
        services.resolve_services({"api-service\n": {}}, {}, None, ["api-service"], {})
