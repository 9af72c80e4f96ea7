# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write small stand-in images into an OCI image layout, with no container engine.

Each image has the repository and tag of a real platform image and one tiny
layer naming it, so an air-gapped bundle can be built and installed in tests
without downloading the real images. Input is the image list printed by
``hack/airgap/images.py --json``; every image is stored under the reference
name ``<repository>:<tag>`` (the name the bundle build looks for).

    .venv/bin/python hack/airgap/images.py --json > images.json
    python3 hack/airgap/build_test_images.py --images images.json --output build/test-images
"""

from __future__ import absolute_import, division, print_function

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"


def _write_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", digest)
    if not os.path.exists(path):
        with open(path, "wb") as handle:
            handle.write(data)
    return "sha256:" + digest, len(data)


def _layer(name):
    """A reproducible tar.gz holding /etc/neurallog-test-image; returns (gzip, diff_id)."""
    payload = ("stand-in for %s\n" % name).encode("utf-8")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("etc/neurallog-test-image")
        info.size = len(payload)
        info.mtime = 0
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(payload))
    raw_bytes = raw.getvalue()
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as gz:
        gz.write(raw_bytes)
    return packed.getvalue(), "sha256:" + hashlib.sha256(raw_bytes).hexdigest()


def build(images, layout, arch="amd64"):
    """Add one image per entry of ``images`` (dicts with repository and tag)."""
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as handle:
        json.dump({"imageLayoutVersion": "1.0.0"}, handle)
    index_path = os.path.join(layout, "index.json")
    index = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": []}
    if os.path.exists(index_path):
        with open(index_path) as handle:
            index = json.load(handle)
    for image in images:
        name = "%s:%s" % (image["repository"], image["tag"])
        layer, diff_id = _layer(name)
        layer_digest, layer_size = _write_blob(layout, layer)
        config = {
            "architecture": arch,
            "os": "linux",
            "config": {"Labels": {"org.opencontainers.image.title": name}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
        config_digest, config_size = _write_blob(layout, json.dumps(config, sort_keys=True).encode("utf-8"))
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": MEDIA_LAYER, "digest": layer_digest, "size": layer_size}],
        }
        manifest_digest, manifest_size = _write_blob(layout, json.dumps(manifest, sort_keys=True).encode("utf-8"))
        index["manifests"] = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) != name]
        index["manifests"].append({
            "mediaType": MEDIA_MANIFEST,
            "digest": manifest_digest,
            "size": manifest_size,
            "platform": {"architecture": arch, "os": "linux"},
            "annotations": {REF_NAME: name},
        })
        print("%s %s" % (name, manifest_digest))
    with open(index_path, "w") as handle:
        json.dump(index, handle, indent=1, sort_keys=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True, help="JSON list from hack/airgap/images.py --json ('-' for stdin)")
    parser.add_argument("--output", required=True, help="OCI layout folder to create or extend")
    parser.add_argument("--arch", default="amd64")
    args = parser.parse_args(argv)
    if args.images == "-":
        images = json.load(sys.stdin)
    else:
        with open(args.images) as handle:
            images = json.load(handle)
    build(images, args.output, args.arch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
