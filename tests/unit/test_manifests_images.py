"""Unit tests of the shared helpers in plugins/module_utils: manifest
streams, kept-or-generated secret values, check-mode split, image refs."""

import base64

import pytest
import yaml

from ansible_collections.neurallog.platform.plugins.module_utils import images, manifests


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


def test_generated_password_length_is_bounded():
    with pytest.raises(ValueError, match="at least 16"):
        manifests.generate_password(8)


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
