# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of plugins/module_utils/bundle.py and bundle_registry.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import http.server
import io
import json
import os
import socket
import sys
import tarfile
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "collections"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "hack", "airgap"))

from ansible_collections.neurallog.platform.plugins.module_utils import bundle  # noqa: E402
from ansible_collections.neurallog.platform.plugins.module_utils import bundle_registry  # noqa: E402
import build_test_images  # noqa: E402

IMAGES = {
    "api": {"repository": "neurallog/api", "tag": "1.0.0"},
    "es": {"registry": "docker.elastic.co", "repository": "elasticsearch/elasticsearch", "tag": "8.15.3"},
    "redis": {"repository": "library/redis", "tag": "7.0.15-alpine", "digest": "sha256:" + "a" * 64},
}


def test_image_list_derives_sources_names_and_refs():
    images = {i["key"]: i for i in bundle.image_list(IMAGES, {"api": {"tag": "1.0.1"}}, "docker.io")}
    assert sorted(images) == ["api", "es", "redis"]
    assert images["api"]["source"] == "docker.io/neurallog/api:1.0.1"
    assert images["api"]["name"] == "neurallog/api:1.0.1"
    assert images["es"]["source"] == "docker.elastic.co/elasticsearch/elasticsearch:8.15.3"
    # Pinned images are copied by digest (skopeo refuses tag plus digest).
    assert images["redis"]["source"] == "docker.io/library/redis@sha256:" + "a" * 64
    assert images["redis"]["ref"] == "docker.io/library/redis:7.0.15-alpine@sha256:" + "a" * 64


def test_image_list_with_registry_override_keeps_names():
    images = bundle.image_list(IMAGES, None, "docker.io", "mirror.internal:5000")
    assert all(i["ref"].startswith("mirror.internal:5000/") for i in images)
    assert [i["name"] for i in images] == [
        "neurallog/api:1.0.0", "elasticsearch/elasticsearch:8.15.3", "library/redis:7.0.15-alpine"]


def test_image_list_refuses_two_sources_for_one_name():
    images = dict(IMAGES, other={"registry": "quay.io", "repository": "neurallog/api", "tag": "1.0.0"})
    with pytest.raises(bundle.BundleError, match="'api' and 'other' are both neurallog/api:1.0.0"):
        bundle.image_list(images)


def test_image_list_refuses_latest():
    with pytest.raises(ValueError, match="latest"):
        bundle.image_list({"x": {"repository": "a/b", "tag": "latest"}})


WORKLOADS = [
    {"kind": "Deployment", "spec": {"template": {"spec": {
        "initContainers": [{"name": "init", "image": "reg:5000/library/busybox:1.36.1"}],
        "containers": [{"name": "app", "image": "reg:5000/neurallog/api:1.0.0"}]}}}},
    {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "job", "image": "docker.io/library/postgres:16.6-alpine"}]}}}}}},
    {"kind": "ConfigMap", "data": {"image": "not/a-container:1"}},
]


def test_images_in_objects_finds_every_container_kind():
    assert bundle.images_in_objects(WORKLOADS) == {
        "reg:5000/library/busybox:1.36.1", "reg:5000/neurallog/api:1.0.0", "docker.io/library/postgres:16.6-alpine"}


def test_missing_and_foreign_images():
    listed = ["reg:5000/library/busybox:1.36.1", "reg:5000/neurallog/api:1.0.0"]
    assert bundle.missing_images(WORKLOADS, listed) == ["docker.io/library/postgres:16.6-alpine"]
    assert bundle.foreign_images(WORKLOADS, "reg:5000") == ["docker.io/library/postgres:16.6-alpine"]
    # A registry name that is only a prefix of another is not the same registry.
    assert bundle.foreign_images(WORKLOADS, "reg:500") == sorted(bundle.images_in_objects(WORKLOADS))


def _collection(folder, namespace, name, version):
    data = json.dumps({"collection_info": {"namespace": namespace, "name": name, "version": version}}).encode()
    path = os.path.join(folder, "%s-%s-%s.tar.gz" % (namespace, name, version))
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("MANIFEST.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


@pytest.fixture()
def built(tmp_path):
    """A bundle folder with two images, a collection and a wheel, manifest written."""
    root = tmp_path / "b"
    (root / "collections").mkdir(parents=True)
    (root / "python" / "wheels").mkdir(parents=True)
    (root / "python" / "wheels" / "x-1-py3-none-any.whl").write_bytes(b"wheel")
    _collection(str(root / "collections"), "neurallog", "platform", "0.1.0")
    images = bundle.image_list({k: v for k, v in IMAGES.items() if k != "redis"})
    build_test_images.build(images, str(root / "images"))
    manifest = bundle.build_manifest(str(root), images, "images", {"name": "b", "target": {"python_version": "3.11"}})
    sums = bundle.write_manifest_and_sums(str(root), manifest)
    return root, manifest, sums


def test_manifest_records_digests_collections_and_files(built):
    root, manifest, sums = built
    layout = bundle.oci_digests(str(root / "images"))
    assert {i["name"]: i["digest"] for i in manifest["images"]} == layout
    assert manifest["collections"] == [
        {"name": "neurallog.platform", "version": "0.1.0", "file": "collections/neurallog-platform-0.1.0.tar.gz"}]
    assert "python/wheels/x-1-py3-none-any.whl" in manifest["files"]
    assert "manifest.json" not in manifest["files"] and "manifest.json" in sums
    assert bundle.verify_bundle(str(root))["images"] == manifest["images"]


def test_sums_file_is_sha256sum_compatible(built):
    root, _manifest, sums = built
    text = (root / "SHA256SUMS").read_text()
    line = [l for l in text.splitlines() if l.endswith("  python/wheels/x-1-py3-none-any.whl")][0]
    assert line.split("  ")[0] == hashlib.sha256(b"wheel").hexdigest()
    assert bundle.parse_sums(text) == sums


def test_manifest_refuses_image_missing_from_layout(built):
    root, _manifest, _sums = built
    images = bundle.image_list(IMAGES)
    with pytest.raises(bundle.BundleError, match="missing from the bundle's OCI layout: library/redis:7.0.15-alpine"):
        bundle.build_manifest(str(root), images, "images", {})


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def test_flipped_byte_in_a_layer_is_refused(built):
    root, _manifest, _sums = built
    blob = max((root / "images" / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    _flip(blob)
    with pytest.raises(bundle.BundleError) as err:
        bundle.verify_bundle(str(root))
    assert "corrupt or has been tampered with" in str(err.value)
    assert "images/blobs/sha256/%s: checksum mismatch" % blob.name in str(err.value)


def test_added_missing_and_inconsistent_files_are_refused(built):
    root, manifest, sums = built
    (root / "python" / "wheels" / "evil-1-py3-none-any.whl").write_bytes(b"evil")
    (root / "collections" / "neurallog-platform-0.1.0.tar.gz").unlink()
    with pytest.raises(bundle.BundleError) as err:
        bundle.verify_bundle(str(root))
    text = str(err.value)
    assert "evil-1-py3-none-any.whl: not listed in SHA256SUMS" in text
    assert "collections/neurallog-platform-0.1.0.tar.gz: missing" in text


def test_manifest_and_sums_must_agree(built):
    root, manifest, sums = built
    # Change a file and re-sum SHA256SUMS but not the manifest (inconsistent tampering).
    wheel = root / "python" / "wheels" / "x-1-py3-none-any.whl"
    wheel.write_bytes(b"other")
    sums["python/wheels/x-1-py3-none-any.whl"] = hashlib.sha256(b"other").hexdigest()
    (root / "SHA256SUMS").write_text(bundle.format_sums(sums))
    with pytest.raises(bundle.BundleError, match="x-1-py3-none-any.whl: differs between manifest.json and SHA256SUMS"):
        bundle.verify_bundle(str(root))


@pytest.mark.parametrize("line", ["abc  file", "%s  ../etc/passwd" % ("0" * 64), "%s  /etc/passwd" % ("0" * 64)])
def test_parse_sums_refuses_malformed_and_escaping_lines(line):
    with pytest.raises(bundle.BundleError):
        bundle.parse_sums(line + "\n")


def test_not_a_bundle(tmp_path):
    with pytest.raises(bundle.BundleError, match="is not a bundle"):
        bundle.verify_bundle(str(tmp_path))


def test_check_disk(tmp_path):
    assert bundle.check_disk(str(tmp_path / "not" / "yet"), 1) > 0
    with pytest.raises(bundle.BundleError, match="not enough disk space for the virtualenv"):
        bundle.check_disk(str(tmp_path), 1 << 60, "the virtualenv")


@pytest.mark.parametrize("value", ["", "https://reg:5000", "reg:5000/path", "a b"])
def test_registry_host_refuses_urls(value):
    with pytest.raises(bundle.BundleError, match="airgap_install_registry must be host"):
        bundle.registry_host(value)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_check_registry_unreachable():
    port = _free_port()
    with pytest.raises(bundle.BundleError) as err:
        bundle.check_registry("127.0.0.1:%d" % port, insecure=True, timeout=2)
    assert "private registry 127.0.0.1:%d is unreachable" % port in str(err.value)
    assert "Nothing was pushed or applied" in str(err.value)


@pytest.mark.parametrize("status", [200, 401])
def test_check_registry_answers_over_plain_http_when_insecure(status):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(status if self.path == "/v2/" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        registry = "127.0.0.1:%d" % server.server_address[1]
        assert bundle.check_registry(registry, insecure=True, timeout=5) == "http://%s/v2/" % registry
        # Without the insecure flag plain HTTP is not tried: refused.
        with pytest.raises(bundle.BundleError, match="unreachable"):
            bundle.check_registry(registry, insecure=False, timeout=5)
    finally:
        server.shutdown()


class FakeSkopeo(object):
    """Runner standing in for skopeo against an in-memory registry."""

    def __init__(self, registry, fail_copy=()):
        self.registry = dict(registry)
        self.calls = []
        self.fail_copy = set(fail_copy)

    def __call__(self, argv):
        self.calls.append(argv)
        ref = argv[-1].split("/", 3)[-1]
        if argv[1] == "inspect":
            if ref in self.registry:
                return 0, self.registry[ref], b""
            return 1, b"", b"manifest unknown: manifest unknown"
        source = argv[-2].split(":", 2)[-1]
        if source in self.fail_copy:
            return 1, b"", b"connection reset"
        self.registry[ref] = b"manifest of " + source.encode()
        return 0, b"", b""


def _digest(raw):
    return "sha256:" + hashlib.sha256(raw).hexdigest()


PUSH = [
    {"name": "neurallog/api:1.0.0", "digest": _digest(b"manifest of neurallog/api:1.0.0")},
    {"name": "library/redis:7.0.15-alpine", "digest": _digest(b"manifest of library/redis:7.0.15-alpine")},
]


def test_push_skips_images_present_with_the_right_digest():
    run = FakeSkopeo({"neurallog/api:1.0.0": b"manifest of neurallog/api:1.0.0",
                      "library/redis:7.0.15-alpine": b"an older redis"})
    with bundle_registry.RegistryAccess("reg:5000", insecure=True) as access:
        result = bundle_registry.push_images(run, PUSH, "/b/images", access)
    assert result == {"pushed": ["library/redis:7.0.15-alpine"], "present": ["neurallog/api:1.0.0"]}
    copies = [c for c in run.calls if c[1] == "copy"]
    assert len(copies) == 1
    assert copies[0][-2:] == ["oci:/b/images:library/redis:7.0.15-alpine", "docker://reg:5000/library/redis:7.0.15-alpine"]
    assert "--preserve-digests" in copies[0] and "--dest-tls-verify=false" in copies[0]
    # A second run pushes nothing.
    with bundle_registry.RegistryAccess("reg:5000", insecure=True) as access:
        again = bundle_registry.push_images(run, PUSH, "/b/images", access)
    assert again == {"pushed": [], "present": ["neurallog/api:1.0.0", "library/redis:7.0.15-alpine"]}


def test_push_check_mode_copies_nothing():
    run = FakeSkopeo({})
    with bundle_registry.RegistryAccess("reg:5000", insecure=True) as access:
        result = bundle_registry.push_images(run, PUSH, "/b/images", access, check_mode=True)
    assert result["pushed"] == ["neurallog/api:1.0.0", "library/redis:7.0.15-alpine"]
    assert [c for c in run.calls if c[1] == "copy"] == []


def test_push_failure_names_the_image_and_what_was_done():
    run = FakeSkopeo({}, fail_copy=["library/redis:7.0.15-alpine"])
    with bundle_registry.RegistryAccess("reg:5000", insecure=True) as access:
        with pytest.raises(bundle.BundleError) as err:
            bundle_registry.push_images(run, PUSH, "/b/images", access)
    assert "pushing library/redis:7.0.15-alpine to reg:5000 failed (already pushed: neurallog/api:1.0.0)" in str(err.value)


def test_push_detects_a_digest_change_in_the_registry():
    bad = [{"name": "neurallog/api:1.0.0", "digest": "sha256:" + "0" * 64}]
    with bundle_registry.RegistryAccess("reg:5000", insecure=True) as access:
        with pytest.raises(bundle.BundleError, match="after the push, the bundle has sha256:0000"):
            bundle_registry.push_images(FakeSkopeo({}), bad, "/b/images", access)


def test_credentials_go_to_an_auth_file_never_the_command_line(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("---CA---")
    run = FakeSkopeo({})
    with bundle_registry.RegistryAccess("reg:5000", "robot", "s3cret-pass", str(ca)) as access:
        bundle_registry.push_images(run, PUSH[:1], "/b/images", access)
        auth_path = [o for o in run.calls[0] if o.startswith("--authfile=")][0].split("=", 1)[1]
        auth = json.load(open(auth_path))
        assert oct(os.stat(auth_path).st_mode & 0o777) == "0o600"
        cert_dir = [o for o in run.calls[1] if o.startswith("--dest-cert-dir=")][0].split("=", 1)[1]
        assert open(os.path.join(cert_dir, "ca.crt")).read() == "---CA---"
    assert not os.path.exists(auth_path)
    assert "s3cret-pass" not in json.dumps(run.calls)
    assert auth["auths"]["reg:5000"]["auth"] == "cm9ib3Q6czNjcmV0LXBhc3M="


@pytest.mark.parametrize("kwargs, message", [
    ({"ca_file": "/etc/hosts", "insecure": True}, "not both"),
    ({"username": "robot"}, "go together"),
    ({"ca_file": "/nonexistent/ca.pem"}, "does not exist"),
])
def test_registry_access_refuses_bad_settings(kwargs, message):
    with pytest.raises(bundle.BundleError, match=message):
        bundle_registry.RegistryAccess("reg:5000", **kwargs)
