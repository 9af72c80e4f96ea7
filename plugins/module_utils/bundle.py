# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Air-gapped bundle: image list, checksums, manifest and install checks.

Pure Python (standard library plus images.py) so the build and install roles,
the image list command and the tests share one implementation."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import shutil
import socket
import ssl
import tarfile

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError, SSLValidationError, open_url

from ansible_collections.neurallog.platform.plugins.module_utils.images import image_ref
from ansible_collections.neurallog.platform.plugins.module_utils.merge import merge

BUNDLE_FORMAT = 1
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.sig"
# Files the checksum list cannot cover: itself and its signature.
UNSUMMED = (SUMS, SIGNATURE)
OCI_REF_NAME = "org.opencontainers.image.ref.name"
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


class BundleError(Exception):
    """A bundle, its build sources or the install target are not usable."""


def image_list(images, overrides=None, default_registry="docker.io", registry_override=""):
    """Every image of ``images`` (merged with ``overrides``) as a list of dicts.

    Each entry has ``key``, ``registry``, ``repository``, ``tag``, ``digest``
    (empty unless pinned in the settings), ``ref`` (what the platform would
    pull), ``source`` (what the build copies: by digest when pinned, since
    tag plus digest is not a valid pull reference for skopeo) and ``name``
    (``repository:tag``, the name in the bundle's OCI layout and in the
    private registry). Two images with the same name would overwrite each
    other in the private registry, so that is refused."""
    merged = merge(images, overrides)
    result = []
    by_name = {}
    for key in sorted(merged):
        image = merged[key]
        ref = image_ref(image, default_registry, registry_override)
        registry = (registry_override or image.get("registry") or default_registry).rstrip("/")
        name = "%s:%s" % (image["repository"], image["tag"])
        digest = image.get("digest") or ""
        source = "%s/%s@%s" % (registry, image["repository"], digest) if digest else "%s/%s" % (registry, name)
        if name in by_name and by_name[name]["source"] != source:
            raise BundleError(
                "images %r and %r are both %s but come from different sources (%s, %s); "
                "a private registry keeps only one: change the repository or tag of one in "
                "neurallog_image_overrides" % (by_name[name]["key"], key, name, by_name[name]["source"], source))
        entry = {
            "key": key, "registry": registry, "repository": image["repository"],
            "tag": str(image["tag"]), "digest": digest, "ref": ref, "source": source, "name": name,
        }
        by_name[name] = entry
        result.append(entry)
    return result


def images_in_objects(objects):
    """Every container image referenced by ``objects`` (any nesting: pods,
    pod templates, CronJob job templates, custom resources with pod specs)."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in CONTAINER_LISTS and isinstance(value, list):
                    for container in value:
                        if isinstance(container, dict) and isinstance(container.get("image"), str):
                            found.add(container["image"])
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(objects)
    return found


def missing_images(objects, listed_refs):
    """Images the objects use that ``listed_refs`` does not contain, sorted."""
    return sorted(images_in_objects(objects) - set(listed_refs))


def foreign_images(objects, registry):
    """Images the objects use that are not pulled from ``registry``, sorted."""
    prefix = registry.rstrip("/") + "/"
    return sorted(i for i in images_in_objects(objects) if not i.startswith(prefix))


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def bundle_files(root, exclude=UNSUMMED):
    """Relative paths (``/`` separated) of every regular file under ``root``."""
    paths = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in files:
            full = os.path.join(folder, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if rel in exclude or os.path.islink(full):
                continue
            paths.append(rel)
    return sorted(paths)


def checksums(root, paths):
    return dict((path, sha256_file(os.path.join(root, path))) for path in paths)


def format_sums(sums):
    """``sha256sum -c`` compatible text (two spaces, sorted by path)."""
    return "".join("%s  %s\n" % (sums[path], path) for path in sorted(sums))


def parse_sums(text):
    sums = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("  ", 1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise BundleError("%s line %d is malformed: %r" % (SUMS, number, line))
        path = parts[1][1:] if parts[1].startswith("*") else parts[1]
        if path.startswith("/") or ".." in path.split("/"):
            raise BundleError("%s line %d names a path outside the bundle: %r" % (SUMS, number, path))
        sums[path] = parts[0].lower()
    return sums


def oci_digests(layout):
    """Reference name to manifest digest in an OCI image layout's index.json."""
    index_path = os.path.join(layout, "index.json")
    try:
        with open(index_path) as handle:
            index = json.load(handle)
    except (IOError, OSError, ValueError) as exc:
        raise BundleError("cannot read the OCI layout index %s: %s" % (index_path, exc))
    digests = {}
    for entry in index.get("manifests", []):
        name = (entry.get("annotations") or {}).get(OCI_REF_NAME)
        if name:
            digests[name] = entry["digest"]
    return digests


def collection_info(root, folder="collections"):
    """Name, version and file of every collection tarball in ``folder``,
    read from each tarball's MANIFEST.json."""
    collections = []
    for name in sorted(os.listdir(os.path.join(root, folder))):
        if not name.endswith(".tar.gz"):
            continue
        path = os.path.join(root, folder, name)
        try:
            with tarfile.open(path, "r:gz") as tar:
                info = json.load(tar.extractfile("MANIFEST.json"))["collection_info"]
        except (tarfile.TarError, KeyError, ValueError, TypeError, IOError, OSError) as exc:
            raise BundleError("%s is not a collection artifact (no readable MANIFEST.json): %s" % (path, exc))
        collections.append({
            "name": "%s.%s" % (info["namespace"], info["name"]),
            "version": info["version"],
            "file": "%s/%s" % (folder, name),
        })
    return collections


def build_manifest(root, images, layout, info):
    """The bundle's manifest.json content: ``info`` (versions, target),
    the images with the digest each has in the bundle's OCI layout, and the
    sha256 of every file except the manifest and checksum list themselves."""
    digests = oci_digests(os.path.join(root, layout))
    entries = []
    missing = []
    for image in images:
        if image["name"] not in digests:
            missing.append(image["name"])
            continue
        entry = dict(image)
        entry["digest"] = digests[image["name"]]
        entries.append(entry)
    if missing:
        raise BundleError("images missing from the bundle's OCI layout: %s" % ", ".join(missing))
    manifest = dict(info)
    manifest["bundle_format"] = BUNDLE_FORMAT
    manifest["image_layout"] = layout
    manifest["images"] = entries
    manifest["collections"] = collection_info(root)
    manifest["files"] = checksums(root, bundle_files(root, exclude=UNSUMMED + (MANIFEST,)))
    return manifest


def write_manifest_and_sums(root, manifest):
    """Write manifest.json, then SHA256SUMS over every file (manifest included)."""
    with open(os.path.join(root, MANIFEST), "w") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write("\n")
    sums = checksums(root, bundle_files(root))
    with open(os.path.join(root, SUMS), "w") as handle:
        handle.write(format_sums(sums))
    return sums


def verify_bundle(root):
    """Check every file against SHA256SUMS and the manifest; return the manifest.

    Raises BundleError naming every file that is missing, changed, or
    listed differently in the two lists, so a corrupt or tampered bundle is
    refused before anything is installed."""
    sums_path = os.path.join(root, SUMS)
    try:
        with open(sums_path) as handle:
            sums = parse_sums(handle.read())
    except (IOError, OSError) as exc:
        raise BundleError("%s is not a bundle: cannot read %s (%s)" % (root, SUMS, exc))
    problems = []
    for path in sorted(sums):
        full = os.path.join(root, path)
        if not os.path.isfile(full):
            problems.append("%s: missing" % path)
        elif sha256_file(full) != sums[path]:
            problems.append("%s: checksum mismatch" % path)
    unlisted = sorted(set(bundle_files(root)) - set(sums))
    problems.extend("%s: not listed in %s" % (path, SUMS) for path in unlisted)
    manifest = None
    if MANIFEST not in sums:
        problems.append("%s: not listed in %s" % (MANIFEST, SUMS))
    elif "%s: checksum mismatch" % MANIFEST not in problems and os.path.isfile(os.path.join(root, MANIFEST)):
        with open(os.path.join(root, MANIFEST)) as handle:
            manifest = json.load(handle)
        for path, digest in sorted((manifest.get("files") or {}).items()):
            if sums.get(path) != digest:
                problems.append("%s: differs between %s and %s" % (path, MANIFEST, SUMS))
    if problems:
        raise BundleError(
            "bundle %s failed verification, it is corrupt or has been tampered with; "
            "nothing was installed. %d problem(s): %s" % (root, len(problems), "; ".join(problems)))
    if manifest.get("bundle_format") != BUNDLE_FORMAT:
        raise BundleError("bundle format %r is not supported (expected %d)" % (manifest.get("bundle_format"), BUNDLE_FORMAT))
    return manifest


def free_bytes(path):
    """Free bytes on the file system holding ``path`` (or its nearest parent)."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return shutil.disk_usage(path).free


def check_disk(path, needed_bytes, setting="the target folder"):
    free = free_bytes(path)
    if free < needed_bytes:
        raise BundleError(
            "not enough disk space for %s (%s): %d MiB free, %d MiB needed"
            % (setting, path, free // (1 << 20), -(-needed_bytes // (1 << 20))))
    return free


def registry_host(registry):
    """Validate ``host[:port]`` (no scheme, no path) and return it unchanged."""
    value = (registry or "").strip()
    if not value or "://" in value or "/" in value or " " in value:
        raise BundleError(
            "airgap_install_registry must be host[:port] of the private registry "
            "(no scheme, no path), got %r" % (registry,))
    return value


def check_registry(registry, insecure=False, ca_file="", timeout=10.0):
    """Reach the registry's ``/v2/`` endpoint; return the URL that answered.

    Any HTTP answer from /v2/ (200, or 401 asking for credentials) means a
    registry is there. With ``insecure`` plain HTTP is tried after HTTPS
    (as skopeo does); otherwise the certificate must verify, against
    ``ca_file`` when given."""
    registry = registry_host(registry)
    schemes = ("https", "http") if insecure else ("https",)
    errors = []
    for scheme in schemes:
        url = "%s://%s/v2/" % (scheme, registry)
        try:
            open_url(url, method="GET", timeout=timeout, validate_certs=not insecure,
                     ca_path=ca_file or None)
            return url
        except HTTPError as exc:
            if exc.code in (200, 401):
                return url
            errors.append("%s answered HTTP %d" % (url, exc.code))
        except (URLError, UrlsConnectionError, SSLValidationError, socket.timeout, ssl.SSLError, OSError) as exc:
            errors.append("%s: %s" % (url, getattr(exc, "reason", exc)))
    raise BundleError(
        "private registry %s is unreachable (%s); check airgap_install_registry and that the "
        "registry runs%s. Nothing was pushed or applied."
        % (registry, "; ".join(errors),
           "" if insecure else ", and its certificate (airgap_install_registry_ca_file, or "
           "airgap_install_registry_insecure for a plain-HTTP registry)"))
