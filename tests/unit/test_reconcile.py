"""The reconcile engine (plugins/plugin_utils/reconcile.py, plugins/action/plan.py) in-process, over
the real roles, with an in-memory cluster: tags, phases, what is pending, check mode, credentials."""

import copy
import os

import pytest

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

# the collection loader is installed by conftest.py
from ansible_collections.neurallog.platform.plugins.action.plan import preflight, render
from ansible_collections.neurallog.platform.plugins.module_utils.manifests import stamp_applied_hash
from ansible_collections.neurallog.platform.plugins.plugin_utils import reconcile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ROLES = os.path.join(ROOT, "roles")
KINDS = {
    ("v1", "Namespace"): False, ("v1", "Secret"): True, ("v1", "ConfigMap"): True, ("v1", "Service"): True,
    ("v1", "PersistentVolumeClaim"): True, ("apps/v1", "StatefulSet"): True,
    ("policy/v1", "PodDisruptionBudget"): True, ("storage.k8s.io/v1", "StorageClass"): False,
}


class FakeCluster:
    """What Plan needs of plugin_utils.cluster.Cluster, in memory."""

    def __init__(self, objects=(), version=("1", "35")):
        self.objects = [copy.deepcopy(o) for o in objects]
        self.objects.append({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {
            "name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}})
        self._version = version
        self.requests = 0
        self.returned = []

    def version(self):
        return {"major": self._version[0], "minor": self._version[1]}

    def served(self, api_version, kind):
        return (api_version, kind) in KINDS

    def list(self, api_version, kind, namespace=None, label_selector=None):
        self.requests += 1
        parts = [part for part in (label_selector or "").split(",") if part]
        wanted = dict(part.split("=", 1) for part in parts if "=" in part)
        absent = [part[1:] for part in parts if part.startswith("!")]
        out = []
        for obj in self.objects:
            meta = obj.get("metadata") or {}
            labels = meta.get("labels") or {}
            if obj.get("kind") != kind or (namespace and meta.get("namespace") != namespace):
                continue
            if any(labels.get(k) != v for k, v in wanted.items()) or any(k in labels for k in absent):
                continue
            out.append(obj)
        self.returned.extend(out)
        return out

    def get(self, api_version, kind, namespace, name):
        for obj in self.list(api_version, kind, namespace):
            if obj["metadata"]["name"] == name:
                return obj
        return None


def make_plan(cluster=None, task_vars=None, components=("namespaces", "redis"), run_tags=None, skip_tags=None,
              render_dir="", reset=None, check_mode=False):
    loader = DataLoader()
    plan = reconcile.Plan(Templar(loader=loader), loader, dict(task_vars or {}), ROLES, cluster=cluster,
                          render_dir=render_dir, run_tags=run_tags, skip_tags=skip_tags, check_mode=check_mode,
                          components=list(components) if components else None, reset_credentials=reset)
    plan.validate()
    return plan.build(preflight=preflight)


def applied(plan):
    """The cluster after applying every declared object (as the API server keeps it)."""
    return [o for name in plan.selected for o in stamp_applied_hash(plan.objects[name])]


@pytest.mark.parametrize("tags,run,skip,expected", [
    (["data", "redis"], ["all"], [], True),
    (["data", "redis"], ["redis"], [], True),
    (["data", "redis"], ["core"], [], False),
    (["data", "redis"], ["all"], ["redis"], False),
    (["data", "redis"], ["data"], ["data"], False),
    (["data", "redis"], None, None, True),
])
def test_tags_select_components_like_ansible(tags, run, skip, expected):
    assert reconcile.selected(tags, run, skip) is expected


def test_every_role_plan_uses_known_keys_and_phases():
    for name in reconcile.SETTING_ROLES + reconcile.COMPONENTS:
        role = reconcile.Role(DataLoader(), ROLES, name)
        assert role.phase in reconcile.PHASES


def test_first_install_everything_is_pending_in_phase_order_with_secrets_apart():
    plan = make_plan(FakeCluster())
    phases = plan.phases()
    assert [p["name"] for p in phases] == ["namespaces", "data"]
    data = phases[1]
    assert {s["kind"] for s in data["secrets"]} == {"Secret"}
    assert "Secret" not in {o["kind"] for o in data["objects"]}
    assert [w["name"] for w in data["wait"]] == ["redis"]


def test_nothing_pending_when_the_cluster_holds_what_is_declared():
    first = make_plan(FakeCluster())
    cluster = FakeCluster(applied(first))
    second = make_plan(cluster)
    assert second.phases() == []
    # passwords were read back, not generated again
    assert second.facts["_redis_passwords"] == first.facts["_redis_passwords"]


def test_tenant_objects_are_not_read_by_the_platform_plan():
    """A cluster with many tenants: the platform's plan reads none of their
    objects (a no-op of site.yml does not grow with the tenants)."""
    first = make_plan(FakeCluster())
    tenant_objects = []
    for index in range(3):
        tenant_objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": "redis-config", "namespace": "tenant-t%d" % index,
            "labels": {"app.kubernetes.io/managed-by": "neurallog.platform", "tenant": "t%d" % index}}})
    cluster = FakeCluster(applied(first) + tenant_objects)
    second = make_plan(cluster)
    assert second.phases() == []
    assert cluster.returned, "the plan read nothing"
    assert not [o for o in cluster.returned if "tenant" in (o["metadata"].get("labels") or {})]


def test_a_drifted_field_makes_only_that_object_pending_and_waits_only_for_it():
    first = make_plan(FakeCluster())
    live = applied(first)
    for obj in live:
        if obj["kind"] == "StatefulSet":
            obj["spec"]["replicas"] = 1
    phases = make_plan(FakeCluster(live)).phases()
    assert [(p["name"], [o["kind"] for o in p["objects"]], p["secrets"]) for p in phases] == [
        ("data", ["StatefulSet"], [])]
    assert [w["name"] for w in phases[0]["wait"]] == ["redis"]


def test_tags_leave_other_components_out_but_their_credentials_are_known():
    plan = make_plan(FakeCluster(), components=None, run_tags=["namespaces"], skip_tags=["network_policies"])
    assert plan.selected == ["namespaces"]
    assert "_redis_passwords" in plan.facts


def test_check_mode_defers_objects_of_namespaces_the_run_creates():
    phases = make_plan(FakeCluster(), check_mode=True).phases()
    data = [p for p in phases if p["name"] == "data"][0]
    assert data["objects"] == [] and data["secrets"] == []
    assert "StatefulSet neurallog-data/redis" in data["deferred"]


def test_a_bad_setting_fails_before_any_read_naming_it():
    cluster = FakeCluster()
    with pytest.raises(reconcile.PlanError, match="redis_maxmemory"):
        make_plan(cluster, {"redis_maxmemory": "3gb", "redis_resources": {"limits": {"memory": "1Gi"}}})
    assert cluster.requests == 1  # the StorageClasses of the preflight, nothing of the roles


def test_lost_passwords_with_data_volumes_refuse_and_reset_is_explicit():
    first = make_plan(FakeCluster())
    live = [o for o in applied(first) if not (o["kind"] == "Secret" and o["metadata"]["name"] == "redis")]
    labels = [o for o in live if o["kind"] == "StatefulSet"][0]["spec"]["selector"]["matchLabels"]
    live.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                 "metadata": {"name": "data-redis-0", "namespace": "neurallog-data", "labels": labels}})
    with pytest.raises(reconcile.PlanError, match="neurallog_reset_credentials"):
        make_plan(FakeCluster(live))
    reset = make_plan(FakeCluster(live), reset=["redis"])
    assert reset.facts["_redis_passwords"]["password"] != first.facts["_redis_passwords"]["password"]


def test_an_immutable_change_is_refused_with_the_role_message():
    live = applied(make_plan(FakeCluster()))
    with pytest.raises(reconcile.PlanError, match="redis_storage_size"):
        make_plan(FakeCluster(live), {"redis_storage_size": "1Gi"})


def test_render_writes_files_with_their_modes_and_a_rerender_keeps_them(tmp_path):
    out = str(tmp_path / "out")
    plan = make_plan(None, {"neurallog_render_dir": out}, render_dir=out)
    changed = render(plan, out, "file")
    assert os.path.exists(os.path.join(out, "redis.yaml"))
    assert oct(os.stat(os.path.join(out, "secrets")).st_mode & 0o777) == "0o700"
    assert oct(os.stat(os.path.join(out, "secrets", "redis.yaml")).st_mode & 0o777) == "0o600"
    assert changed
    again = make_plan(None, {"neurallog_render_dir": out}, render_dir=out)
    assert render(again, out, "file") == []
    assert again.facts["_redis_passwords"] == plan.facts["_redis_passwords"]


def test_the_compile_cache_gives_the_same_objects_and_is_used(tmp_path, monkeypatch):
    from ansible_collections.neurallog.platform.plugins.plugin_utils.compile_cache import CompileCache
    plain = make_plan(None, {"neurallog_render_dir": str(tmp_path)}, render_dir=str(tmp_path))
    cache = CompileCache(str(tmp_path / "code.marshal"))
    cache.install()
    first = make_plan(None, {"neurallog_render_dir": str(tmp_path)}, render_dir=str(tmp_path))
    assert cache.new > 50
    cache.save()
    again = CompileCache(str(tmp_path / "code.marshal"))
    assert len(again.codes) == len(cache.codes)
    again.install()
    second = make_plan(None, {"neurallog_render_dir": str(tmp_path)}, render_dir=str(tmp_path))
    assert again.new == 0

    def objects(plan):  # new passwords each time: the Secrets differ by design
        return [o for o in plan.declared() if o["kind"] != "Secret"]
    assert objects(plain) == objects(first) == objects(second)


class PrometheusCluster(FakeCluster):
    """With the Prometheus Operator's kinds; listing Prometheus objects
    fails with ``error`` when given (an RBAC refusal, a server error)."""

    MONITORING_KINDS = {("monitoring.coreos.com/v1", kind) for kind in ("ServiceMonitor", "PrometheusRule", "Prometheus")}

    def __init__(self, objects=(), error=None):
        super(PrometheusCluster, self).__init__(objects)
        self.error = error

    def served(self, api_version, kind):
        return (api_version, kind) in KINDS or (api_version, kind) in self.MONITORING_KINDS

    def list(self, api_version, kind, namespace=None, label_selector=None):
        if kind == "Prometheus" and self.error:
            raise self.error
        return super(PrometheusCluster, self).list(api_version, kind, namespace, label_selector)


def _prometheus_object(selector):
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
            "metadata": {"name": "k8s", "namespace": "monitoring"},
            "spec": {"serviceMonitorSelector": selector, "serviceMonitorNamespaceSelector": {},
                     "ruleSelector": selector, "ruleNamespaceSelector": {}}}


def test_the_plan_warns_when_no_prometheus_selects_the_monitoring_objects():
    cluster = PrometheusCluster([_prometheus_object({"matchLabels": {"release": "kps"}})])
    plan = make_plan(cluster, components=("namespaces", "monitoring"))
    warnings = plan.warnings()
    assert len(warnings) == 2
    assert warnings[0].startswith("Prometheus monitoring/k8s would not pick up the platform's ServiceMonitors in "
                                  "neurallog-monitoring: its serviceMonitorSelector needs the label release=kps")
    # the objects are declared all the same
    assert {o["kind"] for o in plan.objects["monitoring"]} == {"ServiceMonitor", "PrometheusRule", "ConfigMap"}
    assert make_plan(PrometheusCluster([_prometheus_object({"matchLabels": {"release": "kps"}})]),
                     {"monitoring_selector_labels": {"release": "kps"}},
                     components=("namespaces", "monitoring")).warnings() == []


def test_a_prometheus_read_the_run_may_not_make_only_warns_other_errors_fail():
    from ansible_collections.neurallog.platform.plugins.plugin_utils.cluster import ClusterError

    forbidden = ClusterError("GET https://127.0.0.1:6443/apis/monitoring.coreos.com/v1/prometheuses: HTTP 403 "
                             "prometheuses.monitoring.coreos.com is forbidden")
    plan = make_plan(PrometheusCluster(error=forbidden), components=("namespaces", "monitoring"))
    assert [w.split(":")[0] for w in plan.warnings()] == ["Could not read the Prometheus resources (monitoring.coreos.com/v1 Prometheus)"]
    broken = ClusterError("GET https://127.0.0.1:6443/apis/monitoring.coreos.com/v1/prometheuses: HTTP 500 etcd")
    with pytest.raises(ClusterError, match="HTTP 500"):
        make_plan(PrometheusCluster(error=broken), components=("namespaces", "monitoring"))


def test_without_the_prometheus_operator_only_the_dashboards_are_declared():
    plan = make_plan(FakeCluster(), components=("namespaces", "monitoring"))
    assert sorted(o["metadata"]["name"] for o in plan.objects["monitoring"]) == [
        "neurallog-data-services", "neurallog-overview", "neurallog-tenant-usage"]
    assert plan.warnings() == []
    assert [n for n in plan.notes() if n.startswith("Monitoring:")] == [
        "Monitoring: ServiceMonitors and alert rules skipped: no Prometheus Operator CRDs (monitoring.coreos.com/v1 "
        "ServiceMonitor) in the cluster; the Grafana dashboards are created."]
