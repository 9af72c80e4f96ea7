# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/openshift.py: the setting, the detection, the securityContext
of restricted-v2; the NetworkPolicy peer by namespace labels; the tenant
Redis of the OpenShift flavour."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.neurallog.platform.plugins.module_utils import openshift
from ansible_collections.neurallog.platform.plugins.module_utils.network_policy import network_policies
from ansible_collections.neurallog.platform.plugins.module_utils.tenant import build_resources

OPENSHIFT_APIS = {("route.openshift.io/v1", "Route"), ("security.openshift.io/v1", "SecurityContextConstraints")}


@pytest.mark.parametrize("value,expected", [
    ("auto", None), (None, None), ("AUTO", None), (True, True), ("true", True), ("True", True),
    (False, False), ("false", False)])
def test_forced(value, expected):
    assert openshift.forced(value) is expected


@pytest.mark.parametrize("value", ["yes", "openshift", 1, ""])
def test_forced_refuses_other_values_naming_the_setting(value):
    with pytest.raises(openshift.OpenShiftSettingError) as refused:
        openshift.forced(value)
    assert "neurallog_openshift must be one of auto, true, false" in str(refused.value)


def served_by(apis):
    return lambda api, kind: (api, kind) in apis


@pytest.mark.parametrize("apis,expected", [
    (OPENSHIFT_APIS, True),
    ({("route.openshift.io/v1", "Route")}, False),  # MicroShift-like: Routes without SCCs
    ({("security.openshift.io/v1", "SecurityContextConstraints")}, False),
    (set(), False)])
def test_auto_needs_both_api_groups(apis, expected):
    assert openshift.resolve("auto", served_by(apis)) == (expected, expected)


def test_forcing_wins_and_reports_what_was_detected():
    assert openshift.resolve("true", served_by(set())) == (True, False)
    assert openshift.resolve(False, served_by(OPENSHIFT_APIS)) == (False, True)
    # render mode: no cluster, auto is false
    assert openshift.resolve("auto") == (False, None)
    assert openshift.resolve("true") == (True, None)
    assert "route.openshift.io/v1 Route and security.openshift.io/v1 SecurityContextConstraints" in \
        openshift.missing_message(True)


def test_restricted_pod_security_drops_only_the_fixed_ids():
    pod = {"runAsUser": 999, "runAsGroup": 999, "fsGroup": 999, "fsGroupChangePolicy": "OnRootMismatch",
           "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    container = {"runAsUser": 999, "runAsGroup": 999, "allowPrivilegeEscalation": False,
                 "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True, "runAsNonRoot": True}
    assert openshift.restricted_pod_security(pod, container, False) == (pod, container)
    new_pod, new_container = openshift.restricted_pod_security(pod, container, True)
    assert new_pod == {"fsGroupChangePolicy": "OnRootMismatch", "runAsNonRoot": True,
                       "seccompProfile": {"type": "RuntimeDefault"}}
    assert new_container == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                             "readOnlyRootFilesystem": True, "runAsNonRoot": True}
    assert pod["runAsUser"] == 999  # the inputs are left as they were


def test_namespace_labels_peer_allows_empty_values():
    policies = network_policies([{"name": "allow-router", "namespace": "neurallog-system", "pods": {"app": "x"},
                                  "from": [{"namespace_labels": {"policy-group.network.openshift.io/ingress": ""}}],
                                  "ports": [8080]}])
    assert policies[0]["spec"]["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"policy-group.network.openshift.io/ingress": ""}}}]


@pytest.mark.parametrize("peer", [{"namespace_labels": {}}, {"namespace_labels": "x"},
                                  {"namespace_labels": {"a": ""}, "namespace": "b"}])
def test_namespace_labels_peer_refuses_bad_values(peer):
    with pytest.raises(ValueError) as refused:
        network_policies([{"name": "p", "namespace": "n", "from": [peer], "ports": [1]}], setting="network_policies_extra")
    assert "namespace_labels" in str(refused.value)


def _tenant_redis(openshift_setting):
    settings = {"redis_image": "docker.io/library/redis:7.0.15-alpine"}
    if openshift_setting is not None:
        settings["openshift"] = openshift_setting
    built = build_resources([{"id": "acme"}], settings)
    return next(o for o in built["resources"] if o["kind"] == "StatefulSet")


def test_tenant_redis_has_no_fixed_ids_on_openshift():
    plain = _tenant_redis(None)["spec"]["template"]["spec"]
    assert plain["securityContext"]["fsGroup"] == 999 and plain["containers"][0]["securityContext"]["runAsUser"] == 999
    spec = _tenant_redis(True)["spec"]["template"]["spec"]
    for context in [spec["securityContext"]] + [c["securityContext"] for c in spec["containers"]]:
        assert not {"runAsUser", "runAsGroup", "fsGroup"} & set(context), context
    assert spec["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    # the module's auto (no cluster asked) is the plain flavour
    assert _tenant_redis("auto")["spec"]["template"]["spec"] == plain
