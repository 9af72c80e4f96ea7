"""Objects no longer declared (module_utils/undeclared.py) and the refusal
to generate data-service passwords for volumes that already hold data
(module_utils/data_services.lost_credentials)."""

import base64

from ansible_collections.neurallog.platform.plugins.module_utils.data_services import lost_credentials
from ansible_collections.neurallog.platform.plugins.module_utils.undeclared import (
    describe, object_keys, undeclared_objects)


def obj(kind, namespace, name, api_version="v1", owned=False):
    metadata = {"name": name, "namespace": namespace}
    if owned:
        metadata["ownerReferences"] = [{"kind": "Deployment", "name": "x"}]
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


def names(entries):
    return ["%s %s/%s" % (e["kind"], e["metadata"]["namespace"], e["metadata"]["name"]) for e in entries]


def test_object_keys_are_unique_and_ordered():
    objects = [obj("Service", "a", "x"), obj("Deployment", "a", "x"), obj("Service", "a", "x")]
    assert object_keys(objects) == ["Service/a/x", "Deployment/a/x"]


def test_a_removed_autoscaler_and_service_are_to_remove_and_data_is_kept():
    declared = object_keys([obj("Deployment", "sys", "api"), obj("StatefulSet", "data", "postgresql", "apps/v1"),
                            obj("Secret", "data", "postgresql")])
    live = [
        obj("Deployment", "sys", "api", "apps/v1"),
        obj("Deployment", "sys", "rule-service", "apps/v1"),
        obj("HorizontalPodAutoscaler", "sys", "log-service", "autoscaling/v2"),
        obj("ReplicaSet", "sys", "api-123", "apps/v1", owned=True),
        obj("PersistentVolumeClaim", "data", "data-postgresql-0"),   # of a declared StatefulSet
        obj("PersistentVolumeClaim", "data", "data-redis-0"),        # its StatefulSet is gone
        obj("Secret", "data", "redis"),                              # password of that data
        obj("Secret", "sys", "old-credentials"),
    ]
    out = undeclared_objects(live, declared, ["data"])
    assert sorted(names(out["remove"])) == sorted(["Deployment sys/rule-service",
                                                   "HorizontalPodAutoscaler sys/log-service",
                                                   "Secret sys/old-credentials"])
    assert names(out["keep"]) == ["PersistentVolumeClaim data/data-redis-0", "Secret data/redis"]
    assert out["remove"][0]["metadata"] == {"namespace": "sys", "name": "rule-service"}
    assert "(data volume)" in describe(out["keep"])


def test_nothing_undeclared_when_everything_is_declared():
    live = [obj("Service", "sys", "api")]
    assert undeclared_objects(live, ["Service/sys/api"], []) == {"remove": [], "keep": []}


def _secret(**values):
    return {"resources": [{"kind": "Secret", "data": dict(
        (k, base64.b64encode(v.encode()).decode()) for k, v in values.items())}]}


CLAIMS = {"resources": [{"metadata": {"name": "data-postgresql-0"}}]}


def test_a_lost_secret_with_its_volume_kept_is_refused_with_restore_instructions():
    message = lost_credentials({"resources": []}, ["postgres-password", "password"], CLAIMS, "postgresql",
                               "postgresql", "neurallog-data", "database-credentials", "neurallog-system")
    assert "neurallog-data/postgresql" in message and "data-postgresql-0" in message
    assert "nothing was changed" in message
    assert "kubectl -n neurallog-data create secret generic postgresql" in message
    assert "neurallog-system/database-credentials" in message
    assert 'neurallog_reset_credentials": ["postgresql"]' in message


def test_a_secret_missing_one_key_is_refused_too():
    message = lost_credentials(_secret(password="x"), ["postgres-password", "password"], CLAIMS, "postgresql",
                               "postgresql", "ns")
    assert "lacks the key(s) postgres-password" in message


def test_generating_is_allowed_on_a_first_install_with_stored_keys_or_a_deliberate_reset():
    assert lost_credentials({"resources": []}, ["password"], {"resources": []}, "redis", "redis", "ns") == ""
    assert lost_credentials(_secret(password="x"), ["password"], CLAIMS, "redis", "redis", "ns") == ""
    assert lost_credentials(None, ["password"], CLAIMS, "redis", "redis", "ns", reset=True) == ""


def test_describe_names_cluster_scoped_objects_without_a_namespace():
    entries = [{"kind": "Namespace", "metadata": {"name": "neurallog-data"}},
               {"kind": "Secret", "metadata": {"namespace": "neurallog-data", "name": "redis"}}]
    assert describe(entries) == "Namespace neurallog-data, Secret neurallog-data/redis"


def test_a_key_added_by_a_later_version_is_generated_next_to_stored_ones():
    assert lost_credentials(_secret(password="x"), ["password", "services-password"], CLAIMS, "elasticsearch",
                            "elasticsearch", "ns", added_keys=["services-password"]) == ""
    # not when the Secret is gone, nor for the keys that were there from the start
    assert "is missing" in lost_credentials({"resources": []}, ["password", "services-password"], CLAIMS,
                                            "elasticsearch", "elasticsearch", "ns", added_keys=["services-password"])
    assert "lacks the key(s) password" in lost_credentials(
        _secret(**{"services-password": "y"}), ["password", "services-password"], CLAIMS, "elasticsearch",
        "elasticsearch", "ns", added_keys=["services-password"])
