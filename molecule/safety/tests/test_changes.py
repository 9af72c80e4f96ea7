# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""On the converged platform, with the optional CRDs installed: the custom
resources were accepted by the API server's schema validation; check mode
after a replica change reports it and writes nothing; each single-setting
change writes exactly the objects it concerns.

The tests run in file order and build on each other (the settings of each
change are kept for the next run, as an operator editing the inventory
would). Run by verify.yml; the cluster comes from K8S_AUTH_KUBECONFIG."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from safety_helpers import api_client, changed, changed_tasks, inventory_settings, run_playbook, snapshot

SYSTEM = "neurallog-system"
MONITORING = "neurallog-monitoring"
INGRESS = "neurallog-ingress"
FIELD_MANAGER = "neurallog.platform"

# The settings in effect: inventories/local, plus every change made so far.
SETTINGS = {"core_services_overrides": copy.deepcopy(inventory_settings("main.yml")["core_services_overrides"]),
            "neurallog_image_overrides": {}}


@pytest.fixture(scope="module")
def api():
    return api_client()


@pytest.fixture(autouse=True)
def autoscalers_settled():
    """Before each test: every autoscaled Deployment has the replicas its
    HorizontalPodAutoscaler gives it (the controller scales it shortly after
    a first install: a write that is not the tested run's)."""
    assert _autoscalers_settled() == []


def _autoscalers_settled(timeout=120):
    """Wait until every autoscaled Deployment has the replicas its
    HorizontalPodAutoscaler gives it: the controller scales it shortly after
    a first install, a write that is not this run's."""
    import time
    api = api_client()
    deadline = time.monotonic() + timeout
    while True:
        pending = []
        for hpa in client.AutoscalingV2Api(api).list_namespaced_horizontal_pod_autoscaler(SYSTEM).items:
            target = client.AppsV1Api(api).read_namespaced_deployment(hpa.spec.scale_target_ref.name, SYSTEM)
            if (target.spec.replicas or 0) < (hpa.spec.min_replicas or 1):
                pending.append(hpa.spec.scale_target_ref.name)
        if not pending or time.monotonic() > deadline:
            return pending
        time.sleep(2)


def _custom(api, group, version, plural, namespace=None):
    objects = client.CustomObjectsApi(api)
    if namespace:
        return objects.list_namespaced_custom_object(group, version, namespace, plural)["items"]
    return objects.list_cluster_custom_object(group, version, plural)["items"]


@pytest.mark.parametrize("group,version,plural,minimum", [
    ("monitoring.coreos.com", "v1", "servicemonitors", 8),
    ("monitoring.coreos.com", "v1", "prometheusrules", 1),
    ("autoscaling.k8s.io", "v1", "verticalpodautoscalers", 1),
    ("gateway.networking.k8s.io", "v1", "gateways", 1),
    ("gateway.networking.k8s.io", "v1", "httproutes", 2),
])
def test_the_api_server_accepted_the_custom_resources(api, group, version, plural, minimum):
    items = _custom(api, group, version, plural)
    ours = ["%s/%s" % (i["metadata"]["namespace"], i["metadata"]["name"]) for i in items
            if any(m.get("manager") == FIELD_MANAGER for m in i["metadata"].get("managedFields", []))]
    print("%s.%s accepted: %s" % (plural, group, ", ".join(sorted(ours))))
    assert len(ours) >= minimum, "%s.%s applied by %s: %s" % (plural, group, FIELD_MANAGER, ours)


def test_the_api_server_validates_custom_resources_against_their_schema(api):
    """The installed CRDs carry their schemas: an invalid scrape interval is
    refused, so the accepted resources above were really validated."""
    bad = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
           "metadata": {"name": "schema-probe", "namespace": MONITORING},
           "spec": {"selector": {}, "endpoints": [{"port": "http", "interval": "often"}]}}
    with pytest.raises(ApiException) as refused:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            "monitoring.coreos.com", "v1", MONITORING, "servicemonitors", bad, dry_run="All")
    assert refused.value.status == 422, refused.value
    assert "interval" in refused.value.body


def test_check_mode_reports_a_replica_change_and_writes_nothing(tmp_path):
    settings = copy.deepcopy(SETTINGS)
    settings["core_services_overrides"]["api-service"]["replicas"] = 4
    before = snapshot()
    rc, output, recap = run_playbook("site.yml", extra_vars=settings, check=True, tmp_path=tmp_path)
    written = changed(before, snapshot())
    print("check mode after the replica change: recap %s, changed tasks %s" % (recap, changed_tasks(output)))
    print("\n".join(line for line in output.splitlines() if "replicas" in line and line[:1] in "+-"))
    assert rc == 0, output[-4000:]
    assert recap.get("changed", 0) > 0, "check mode did not report the replica change:\n" + output[-3000:]
    # The apply of a group of objects returns no per-object diff, so --diff
    # does not show the replicas; the group that holds the Deployment must be
    # the one (and the only one) reported.
    assert changed_tasks(output) == ["neurallog.platform.reconcile : Apply the objects of phase core"], changed_tasks(output)
    assert written == [], "check mode wrote %s" % written


def _image_change(settings):
    settings["neurallog_image_overrides"] = {"api-service": {"tag": "1.0.1"}}


def _replicas_change(settings):
    settings["core_services_overrides"]["api-service"]["replicas"] = 4


def _resources_change(settings):
    settings["core_services_overrides"]["api-service"]["resources"]["requests"]["cpu"] = "600m"


@pytest.mark.parametrize("change,expected", [
    (_replicas_change, ["Deployment %s/api-service" % SYSTEM]),
    (_resources_change, ["Deployment %s/api-service" % SYSTEM]),
    (_image_change, ["Deployment %s/api-service" % SYSTEM]),
], ids=["replicas", "resources", "image-tag"])
def test_one_setting_changes_exactly_its_objects(tmp_path, change, expected):
    change(SETTINGS)
    before = snapshot()
    rc, output, recap = run_playbook("site.yml", extra_vars=SETTINGS, tmp_path=tmp_path)
    written = changed(before, snapshot())
    print("%s: wrote %s; recap %s; changed tasks %s" % (change.__name__, written, recap, changed_tasks(output)))
    assert rc == 0, output[-4000:]
    assert written == expected


@pytest.fixture(scope="module")
def tenants(tmp_path_factory):
    """The inventory's tenants, onboarded once."""
    rc, output, _recap = run_playbook("playbooks/tenants.yml", tmp_path=tmp_path_factory.mktemp("tenants"))
    assert rc == 0, output[-4000:]
    return inventory_settings("tenants.yml")["tenant_list"]


def _quota_with_cpu_limit(api, value):
    quotas = client.CoreV1Api(api).list_resource_quota_for_all_namespaces().items
    return sorted("ResourceQuota %s/%s" % (q.metadata.namespace, q.metadata.name) for q in quotas
                  if (q.spec.hard or {}).get("limits.cpu") == value)


def test_a_tenant_quota_change_writes_only_that_quota(api, tenants, tmp_path):
    tenant_list = copy.deepcopy(tenants)
    tenant_list[0]["quota"] = dict(tenant_list[0].get("quota") or {}, **{"limits.cpu": "7"})
    before = snapshot()
    rc, output, recap = run_playbook("playbooks/tenants.yml", extra_vars={"tenant_list": tenant_list}, tmp_path=tmp_path)
    written = changed(before, snapshot())
    print("tenant quota: wrote %s; recap %s" % (written, recap))
    assert rc == 0, output[-4000:]
    expected = _quota_with_cpu_limit(api, "7")
    assert len(expected) == 1, "quotas with limits.cpu 7: %s" % expected
    assert written == expected


def test_a_bad_tenant_fails_before_any_change(tenants, tmp_path):
    """A valid new tenant first, then a bad one: nothing may be created for
    either (a tenant-by-tenant validation would have created the first)."""
    tenant_list = tenants + [{"id": "gamma", "name": "Gamma", "tier": "small", "organizations": ["main"]},
                             {"id": "delta", "name": "Delta", "tier": "huge", "organizations": ["main"]}]
    before = snapshot()
    rc, output, _recap = run_playbook("playbooks/tenants.yml", extra_vars={"tenant_list": tenant_list}, tmp_path=tmp_path)
    written = changed(before, snapshot())
    print("bad tenant: rc %s; wrote %s; %s" % (rc, written, [line for line in output.splitlines() if "huge" in line]))
    assert rc != 0, "tenants.yml accepted tier 'huge'"
    assert written == [], "tenants.yml with a bad tenant wrote %s before failing" % written
    assert "tier" in output and "huge" in output, output[-3000:]
