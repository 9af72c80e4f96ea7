"""The plan's `settled` objects (plugins/plugin_utils/reconcile.py): applied
right after a role's wait, only when the run applied the same object with
other content and waits for the role's workloads."""

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


def test_nothing_settles_when_the_object_is_not_applied_by_the_run():
    live = stamp_applied_hash([configmap("es-0,es-1,es-2")])
    phases = plan([configmap("es-0,es-1,es-2"), STATEFULSET], live=live).phases()
    assert phases[0]["settled"] == []
