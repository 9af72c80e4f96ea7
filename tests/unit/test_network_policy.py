# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Platform NetworkPolicies from descriptions (plugins/module_utils/network_policy.py):
the objects, the forms the API server stores unchanged, every validation error."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import kubernetes_validate
import pytest

from ansible_collections.neurallog.platform.plugins.module_utils.network_policy import network_policies

DATA = "neurallog-data"
PG = {"app.kubernetes.io/name": "postgresql"}


def test_deny_and_allow_policies():
    deny, allow = network_policies([
        {"name": "default-deny-ingress", "namespace": DATA, "deny": True},
        {"name": "allow-postgresql", "namespace": DATA, "pods": PG,
         "from": [{"namespace": "neurallog-system"}, {"pods": PG}, {"tenants": True}],
         "ports": [5432, "5432", {"port": 53, "protocol": "UDP"}]},
    ], labels={"app.kubernetes.io/part-of": "neurallog"})
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert deny["metadata"] == {"name": "default-deny-ingress", "namespace": DATA,
                                "labels": {"app.kubernetes.io/part-of": "neurallog"}}
    assert allow["spec"] == {
        "podSelector": {"matchLabels": PG},
        "policyTypes": ["Ingress"],
        "ingress": [{
            "from": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "neurallog-system"}}},
                {"podSelector": {"matchLabels": PG}},
                {"namespaceSelector": {"matchExpressions": [{"key": "tenant", "operator": "Exists"}]}},
            ],
            # Duplicates removed, protocol always written, sorted: stored as declared.
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 5432}],
        }],
    }
    for obj in (deny, allow):
        kubernetes_validate.validate(obj, "1.30.0", strict=True)


def test_empty_selectors_are_written_as_empty_mappings():
    policy, = network_policies([{"name": "same", "namespace": DATA, "from": [{"pods": {}}]}])
    # The API server drops an empty matchLabels; a re-run would see a difference.
    assert policy["spec"]["ingress"] == [{"from": [{"podSelector": {}}]}]
    assert policy["spec"]["podSelector"] == {}


@pytest.mark.parametrize("descriptions, message", [
    ("nope", "network_policies: must be a list"),
    ([{"name": "Bad_Name", "namespace": DATA, "deny": True}], r"network_policies\[0\].name: 'Bad_Name' is not"),
    ([{"name": "a", "namespace": "", "deny": True}], r"\[0\].namespace: '' is not a namespace name"),
    ([{"name": "a", "namespace": DATA, "from": []}], r"\[0\].from: must be a non-empty list.*allow everyone"),
    ([{"name": "a", "namespace": DATA, "from": [{}]}], r"\[0\].from\[0\]: must be a mapping with keys"),
    ([{"name": "a", "namespace": DATA, "from": [{"tenants": True, "pods": {}}]}], "stands alone"),
    ([{"name": "a", "namespace": DATA, "from": [{"namespace": "X"}]}], r"from\[0\].namespace: 'X'"),
    ([{"name": "a", "namespace": DATA, "from": [{"pods": {"a": 1}}]}], r"from\[0\].pods: must be a mapping"),
    ([{"name": "a", "namespace": DATA, "from": [{"pods": {}}], "ports": [0]}], r"ports\[0\].port: must be a number"),
    ([{"name": "a", "namespace": DATA, "from": [{"pods": {}}], "ports": [{"port": 1, "protocol": "ICMP"}]}],
     r"ports\[0\].protocol: 'ICMP' is not one of TCP, UDP, SCTP"),
    ([{"name": "a", "namespace": DATA, "deny": True, "ports": [1]}], "a 'deny' policy selects every pod"),
    ([{"name": "a", "namespace": DATA, "deny": True, "typo": 1}], r"unknown keys typo; allowed: name"),
    ([{"name": "a", "namespace": DATA, "deny": True}] * 2, "neurallog-data/a is described twice"),
])
def test_invalid_descriptions_name_the_setting(descriptions, message):
    with pytest.raises(ValueError, match=message):
        network_policies(descriptions)


def test_errors_carry_the_setting_name():
    with pytest.raises(ValueError, match=r"^network_policies_extra\[0\]"):
        network_policies([{"name": "a"}], setting="network_policies_extra")
