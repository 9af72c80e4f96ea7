"""The plan's `settled` objects (plugins/plugin_utils/reconcile.py): applied
right after a role's wait whenever the declared object has other content; the
run then waits for all the role's workloads, pending or not."""

import collections

from ansible_collections.neurallog.platform.plugins.module_utils.manifests import stamp_applied_hash
from ansible_collections.neurallog.platform.plugins.plugin_utils.reconcile import Plan


class FakeCluster:
    def __init__(self, live=()):
        self.live = list(live)

    def list(self, api_version, kind, namespace=None, label_selector=None):
        return [o for o in self.live if o["kind"] == kind]


class FakeTemplar:
    @staticmethod
    def template(value):
        return value


class FakeRole:
    def __init__(self, name, wait=True):
        self.name = name
        self.phase = "data"
        self.plan = {"wait": {"when": wait, "timeout": 60}}


def configmap(nodes):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "es-bootstrap", "namespace": "data"},
            "data": {"initial-master-nodes": nodes}}


STATEFULSET = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "es", "namespace": "data"},
               "spec": {"replicas": 3}}


def plan(objects, live=(), wait=True):
    out = Plan.__new__(Plan)
    out.cluster = FakeCluster(live)
    out.templar = FakeTemplar()
    out.selected = ["elasticsearch"]
    out.roles = collections.OrderedDict(elasticsearch=FakeRole("elasticsearch", wait))
    out.objects = {"elasticsearch": objects}
    out.no_log = {"elasticsearch": set()}
    out.settled = {"elasticsearch": [configmap("")]}
    out.check_mode = False
    return out


def test_first_install_clears_the_list_after_the_wait():
    phases = plan([configmap("es-0,es-1,es-2"), STATEFULSET]).phases()
    assert [p["name"] for p in phases] == ["data"]
    assert [w["name"] for w in phases[0]["wait"]] == ["es"]
    assert phases[0]["settled"] == stamp_applied_hash([configmap("")])


def test_nothing_settles_without_a_wait():
    phases = plan([configmap("es-0,es-1,es-2"), STATEFULSET], wait=False).phases()
    assert phases[0]["wait"] == [] and phases[0]["settled"] == []


def test_nothing_settles_when_the_object_already_has_its_settled_content():
    # an image change: the StatefulSet is applied and waited for, the cleared list is in place
    live = stamp_applied_hash([configmap("")])
    phases = plan([configmap(""), STATEFULSET], live=live).phases()
    assert [w["name"] for w in phases[0]["wait"]] == ["es"]
    assert phases[0]["settled"] == []


def test_a_list_left_by_a_run_stopped_before_its_wait_settles_with_nothing_else_pending():
    # the earlier run applied the list and the StatefulSet, then stopped before
    # its wait; the nodes were not Ready yet when this run planned
    live = stamp_applied_hash([configmap("es-0,es-1,es-2"), STATEFULSET])
    phases = plan([configmap("es-0,es-1,es-2"), STATEFULSET], live=live).phases()
    assert [p["name"] for p in phases] == ["data"]
    assert phases[0]["objects"] == [] and phases[0]["secrets"] == []
    assert [(w["kind"], w["name"]) for w in phases[0]["wait"]] == [("StatefulSet", "es")]
    assert phases[0]["settled"] == stamp_applied_hash([configmap("")])


def test_a_list_already_in_place_settles_after_the_pending_statefulset():
    live = stamp_applied_hash([configmap("es-0,es-1,es-2")])
    phases = plan([configmap("es-0,es-1,es-2"), STATEFULSET], live=live).phases()
    assert [w["name"] for w in phases[0]["wait"]] == ["es"]
    assert phases[0]["settled"] == stamp_applied_hash([configmap("")])


def test_nothing_is_planned_once_settled():
    live = stamp_applied_hash([configmap(""), STATEFULSET])
    assert plan([configmap(""), STATEFULSET], live=live).phases() == []
