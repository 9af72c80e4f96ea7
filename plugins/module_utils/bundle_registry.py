# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Push a bundle's images into a private registry with skopeo, resumably.

The command runner is passed in (``run(argv) -> (rc, stdout, stderr)``) so
the logic is tested without skopeo or a registry."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import json
import os
import shutil
import tempfile

from ansible_collections.neurallog.platform.plugins.module_utils.bundle import BundleError, registry_host


class RegistryAccess(object):
    """skopeo options for one registry: TLS (CA bundle or insecure) and an
    auth file, so the password never appears on a command line."""

    def __init__(self, registry, username="", password="", ca_file="", insecure=False):
        self.registry = registry_host(registry)
        if ca_file and insecure:
            raise BundleError("give airgap_install_registry_ca_file or airgap_install_registry_insecure, not both")
        if bool(username) != bool(password):
            raise BundleError("airgap_install_registry_username and airgap_install_registry_password go together")
        if ca_file and not os.path.isfile(ca_file):
            raise BundleError("airgap_install_registry_ca_file %s does not exist" % ca_file)
        self.username = username
        self.password = password
        self.ca_file = ca_file
        self.insecure = insecure
        self._tmp = None

    def __enter__(self):
        self._tmp = tempfile.mkdtemp(prefix="neurallog-registry-")
        os.chmod(self._tmp, 0o700)
        if self.ca_file:
            os.mkdir(os.path.join(self._tmp, "certs"))
            shutil.copyfile(self.ca_file, os.path.join(self._tmp, "certs", "ca.crt"))
        if self.username:
            token = base64.b64encode(("%s:%s" % (self.username, self.password)).encode("utf-8")).decode("ascii")
            path = os.path.join(self._tmp, "auth.json")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump({"auths": {self.registry: {"auth": token}}}, handle)
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp = None

    def options(self, prefix=""):
        """skopeo flags; ``prefix`` is ``dest-`` for the copy destination."""
        opts = []
        if self.insecure:
            opts.append("--%stls-verify=false" % prefix)
        elif self.ca_file:
            opts.append("--%scert-dir=%s" % (prefix, os.path.join(self._tmp, "certs")))
        if self.username:
            opts.append("--%sauthfile=%s" % (prefix, os.path.join(self._tmp, "auth.json")))
        return opts

    def ref(self, name):
        return "docker://%s/%s" % (self.registry, name)


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


def registry_digest(run, skopeo, access, name):
    """Digest of ``name`` in the registry, or None when it is not there."""
    rc, out, err = run([skopeo, "inspect", "--raw"] + access.options() + [access.ref(name)])
    if rc != 0:
        text = _text(err) + _text(out)
        if "manifest unknown" in text or "name unknown" in text or "not found" in text.lower():
            return None
        raise BundleError("cannot read %s from the registry: %s" % (name, text.strip()))
    raw = out if isinstance(out, bytes) else out.encode("utf-8")
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def push_images(run, images, layout, access, skopeo="skopeo", retries=3, check_mode=False):
    """Copy every image (dicts with ``name`` and ``digest``) from the OCI
    layout to the registry unless it is already there with the same digest.

    Returns ``{"pushed": [...], "present": [...]}``. After each push the
    registry's digest is read back and must equal the bundle's."""
    pushed, present = [], []
    for image in images:
        name, digest = image["name"], image["digest"]
        current = registry_digest(run, skopeo, access, name)
        if current == digest:
            present.append(name)
            continue
        pushed.append(name)
        if check_mode:
            continue
        rc, out, err = run(
            [skopeo, "copy", "--preserve-digests", "--retry-times=%d" % retries]
            + access.options("dest-")
            + ["oci:%s:%s" % (layout, name), access.ref(name)])
        if rc != 0:
            raise BundleError("pushing %s to %s failed (already pushed: %s): %s" % (
                name, access.registry, ", ".join(pushed[:-1]) or "none", (_text(err) + _text(out)).strip()))
        after = registry_digest(run, skopeo, access, name)
        if after != digest:
            raise BundleError("%s in %s has digest %s after the push, the bundle has %s" % (
                name, access.registry, after, digest))
    return {"pushed": pushed, "present": present}
