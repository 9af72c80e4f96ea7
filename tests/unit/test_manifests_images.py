"""Unit tests of the shared helpers in plugins/module_utils: manifest
streams, kept-or-generated secret values, check-mode split, image refs."""

import base64
import json

import pytest
import yaml

import re
from pathlib import Path

from ansible_collections.neurallog.platform.plugins.module_utils import images, manifests
from ansible_collections.neurallog.platform.plugins.module_utils.merge import merge

ROOT = Path(__file__).resolve().parents[2]


def test_manifest_stream_round_trips_and_keeps_blocks():
    objs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"redis.conf": "appendonly yes\nmaxmemory 2gb\n"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}},
    ]
    stream = manifests.to_manifest_stream(objs + [None, {}])
    assert stream.count("---\n") == 2
    assert list(yaml.safe_load_all(stream)) == objs
    assert "redis.conf: |" in stream


def test_secret_values_keep_stored_and_generate_missing():
    stored = {"resources": [{"data": {"password": base64.b64encode(b"kept-password-123456").decode()}}]}
    values = manifests.secret_values(stored, ["password", "admin"])
    assert values["password"] == "kept-password-123456"
    assert len(values["admin"]) == 32 and values["admin"].isalnum()
    # nothing stored: every key generated, each different
    fresh = manifests.secret_values({"resources": []}, ["a", "b"])
    assert fresh["a"] != fresh["b"]
    assert manifests.secret_values(None, ["a"], length=20)["a"].__len__() == 20


def test_rendered_secrets_reads_the_secrets_folder_only(tmp_path):
    (tmp_path / "secrets").mkdir()
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pg", "namespace": "data"},
              "data": {"password": base64.b64encode(b"stored-password-1234").decode()}}
    other = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pg", "namespace": "other"},
             "stringData": {"password": "plain-password-12345"}}
    (tmp_path / "secrets" / "pg.yaml").write_text(manifests.to_manifest_stream([secret, other]))
    # Secrets outside secrets/ are not read back.
    (tmp_path / "pg.yaml").write_text(manifests.to_manifest_stream([dict(secret, metadata={"name": "x", "namespace": "data"})]))
    found = manifests.rendered_secrets(str(tmp_path), name="pg", namespace="data")
    assert found == [secret]
    assert manifests.secret_values(found, ["password"])["password"] == "stored-password-1234"
    # stringData is folded into data, as the API server returns it
    folded = manifests.rendered_secrets(str(tmp_path), namespace="other")
    assert manifests.secret_values(folded, ["password"])["password"] == "plain-password-12345"
    assert [s["metadata"]["name"] for s in manifests.rendered_secrets(str(tmp_path))] == ["pg", "pg"]
    assert manifests.rendered_secrets(str(tmp_path / "missing")) == []
    assert manifests.rendered_secrets("") == []


def test_generated_password_length_is_bounded():
    with pytest.raises(ValueError, match="at least 16"):
        manifests.generate_password(8)


def test_generated_passwords_are_letters_and_digits_and_differ():
    first, second = manifests.generate_password(32), manifests.generate_password(32)
    assert re.fullmatch(r"[A-Za-z0-9]{32}", first) and first != second


def test_merge_is_deep_and_leaves_its_inputs_alone():
    base = {"a": {"b": 1, "c": [1]}, "d": 1}
    override = {"a": {"b": 2, "e": {"f": 1}}, "g": [2]}
    merged = merge(base, override)
    assert merged == {"a": {"b": 2, "c": [1], "e": {"f": 1}}, "d": 1, "g": [2]}
    merged["a"]["c"].append(9)
    merged["a"]["e"]["f"] = 9
    merged["g"].append(9)
    assert base == {"a": {"b": 1, "c": [1]}, "d": 1}
    assert override == {"a": {"b": 2, "e": {"f": 1}}, "g": [2]}
    assert merge(None, None) == {}


def test_merge_does_not_deep_copy_lazy_containers():
    """Ansible hands filters lazily templated containers; deep-copying them
    made a render of the core services six times slower. merge rebuilds
    mappings and lists instead."""
    from collections.abc import Mapping

    class Lazy(Mapping):
        def __init__(self, data):
            self.data = data

        def __getitem__(self, key):
            return self.data[key]

        def __iter__(self):
            return iter(self.data)

        def __len__(self):
            return len(self.data)

        def __deepcopy__(self, memo):
            raise AssertionError("deep-copied")

    merged = merge(Lazy({"a": Lazy({"b": 1}), "c": [Lazy({"d": 2})]}), Lazy({"a": Lazy({"e": 3})}))
    assert merged == {"a": {"b": 1, "e": 3}, "c": [{"d": 2}]}
    assert not isinstance(merged["a"], Lazy) and not isinstance(merged["c"][0], Lazy)


@pytest.mark.parametrize("pattern, home", [
    (r"^def (merge)\(", "plugins/module_utils/merge.py"),
    (r"^def (generate_password)\(|^(PASSWORD_ALPHABET) =", "plugins/module_utils/manifests.py"),
    (r"(CertificateBuilder)\(", "plugins/module_utils/tls.py"),
    # public functions: the filters' private wrappers (_rollout_report) call them
    (r"^def ([a-z]\w*rollout\w*|[a-z]\w*diagnos\w*|pending_workloads)\(", "plugins/module_utils/rollout.py"),
])
def test_one_definition_of_each_helper(pattern, home):
    """Password generation, merging, certificates and rollout diagnosis are
    written once; every other module imports them."""
    found = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "plugins").rglob("*.py")
                   if re.search(pattern, path.read_text(), re.MULTILINE))
    assert found == [home]


def test_split_for_check_mode():
    objs = [
        {"kind": "Namespace", "metadata": {"name": "new"}},
        {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "new"}},
        {"kind": "ConfigMap", "metadata": {"name": "d", "namespace": "old"}},
        {"kind": "ClusterRole", "metadata": {"name": "r"}},
    ]
    split = manifests.split_for_check_mode(objs, ["old", "default"])
    assert [o["metadata"]["name"] for o in split["apply"]] == ["new", "d", "r"]
    assert split["deferred_names"] == ["ConfigMap new/c"]


def test_image_refs_registry_override_and_digest():
    imgs = {
        "redis": {"repository": "library/redis", "tag": "7.0.15-alpine"},
        "es": {"registry": "docker.elastic.co", "repository": "elasticsearch/elasticsearch", "tag": "8.15.3"},
    }
    assert images.image_refs(imgs) == {
        "es": "docker.elastic.co/elasticsearch/elasticsearch:8.15.3",
        "redis": "docker.io/library/redis:7.0.15-alpine",
    }
    refs = images.image_refs(imgs, {"redis": {"digest": "sha256:" + "a" * 64}}, registry_override="reg.local:5000")
    assert refs["es"] == "reg.local:5000/elasticsearch/elasticsearch:8.15.3"
    assert refs["redis"] == "reg.local:5000/library/redis:7.0.15-alpine@sha256:" + "a" * 64


@pytest.mark.parametrize("bad, message", [
    ({"repository": "x/y", "tag": "latest"}, "tag 'latest' is not allowed"),
    ({"repository": "x/y"}, "needs 'repository' and 'tag'"),
])
def test_image_refs_refuse_unpinned(bad, message):
    with pytest.raises(ValueError, match=message):
        images.image_refs({"bad": bad})


def _configmap(name="settings", data=None, labels=None):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "tenant-acme", "labels": labels or {"tenant": "acme"}},
            "data": data if data is not None else {"a": "1"}}


def _live(obj, **extra):
    """What the API server returns for an applied object: the declared fields
    and more (uid, managedFields, status ...)."""
    live = json.loads(json.dumps(obj))
    live["metadata"].update({"uid": "u-1", "resourceVersion": "42", "managedFields": [{"manager": "x"}]})
    live["metadata"]["labels"] = dict(live["metadata"].get("labels") or {}, **extra)
    return live


def test_stamp_applied_hash_is_stable_and_ignores_its_own_annotation():
    once = manifests.stamp_applied_hash([_configmap()])
    twice = manifests.stamp_applied_hash(once)
    assert once == twice
    digest = once[0]["metadata"]["annotations"][manifests.APPLIED_HASH_ANNOTATION]
    assert len(digest) == 64
    assert manifests.applied_hash(once[0]) == digest
    other = manifests.stamp_applied_hash([_configmap(data={"a": "2"})])[0]
    assert other["metadata"]["annotations"][manifests.APPLIED_HASH_ANNOTATION] != digest
    # the input is not modified
    plain = _configmap()
    manifests.stamp_applied_hash([plain])
    assert "annotations" not in plain["metadata"]


def test_pending_objects_leaves_out_only_unchanged_objects():
    declared = manifests.stamp_applied_hash([_configmap("same"), _configmap("drifted"), _configmap("missing")])
    live = [_live(declared[0], extra="added-by-someone"), _live(declared[1])]
    live[1]["data"]["a"] = "changed by hand"
    pending = manifests.pending_objects(declared, [{"kind": "ConfigMap", "items": live}])
    assert [o["metadata"]["name"] for o in pending] == ["drifted", "missing"]


def test_pending_objects_sees_a_field_removed_from_the_declaration():
    before = manifests.stamp_applied_hash([_configmap(data={"a": "1", "b": "2"})])
    now = manifests.stamp_applied_hash([_configmap(data={"a": "1"})])
    # every field declared now is still live, but the declaration changed
    pending = manifests.pending_objects(now, [{"kind": "ConfigMap", "items": [_live(before[0])]}])
    assert len(pending) == 1


def test_pending_objects_applies_unstamped_live_objects_and_unlisted_kinds():
    declared = manifests.stamp_applied_hash([_configmap()])
    unstamped = _live(_configmap())
    assert manifests.pending_objects(declared, [{"kind": "ConfigMap", "items": [unstamped]}]) == declared
    assert manifests.pending_objects(declared, []) == declared
    assert manifests.pending_objects(declared, [{"kind": "Secret", "items": [_live(declared[0])]}]) == declared


@pytest.mark.parametrize("declared, live, expected", [
    ({"a": 1}, {"a": 1, "b": 2}, True),
    ({"a": 1}, {"a": "1"}, False),
    ({"a": [1, 2]}, {"a": [1, 2, 3]}, False),
    ({"a": [{"x": 1}]}, {"a": [{"x": 1, "y": 2}]}, True),
    ({"a": True}, {"a": 1}, False),
    ({"a": {"b": None}}, {"a": {}}, False),
])
def test_is_subset(declared, live, expected):
    assert manifests.is_subset(declared, live) is expected
