#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: bundle_manifest
short_description: Write the manifest and checksum list of an air-gapped bundle
version_added: 0.1.0
author: NeuralLog platform engineering (@neurallog)
description:
  - Reads the digest of every image from the bundle's OCI image layout, hashes
    every file, writes C(manifest.json) (versions, image to digest, file to
    sha256) and then C(SHA256SUMS) over every file including the manifest.
  - Fails when an image of O(images) is missing from the layout.
options:
  path:
    description: The bundle folder (its contents become the bundle).
    type: path
    required: true
  images:
    description: The image list (output of the P(neurallog.platform.bundle_images#filter) filter).
    type: list
    elements: dict
    required: true
  layout:
    description: The OCI image layout folder, relative to O(path).
    type: str
    default: images
  info:
    description: Extra top-level keys of the manifest (versions, target Python and platform, collections).
    type: dict
    default: {}
attributes:
  check_mode:
    support: none
    description: Not supported, the build always writes the files.
  diff_mode:
    support: none
    description: Not supported.
"""

EXAMPLES = r"""
- name: Write manifest.json and SHA256SUMS
  neurallog.platform.bundle_manifest:
    path: /tmp/neurallog-1.0.0-bundle
    images: "{{ neurallog_images | neurallog.platform.bundle_images(neurallog_image_overrides) }}"
    info:
      version: 1.0.0
"""

RETURN = r"""
images:
  description: The images with the digest each has in the bundle.
  returned: success
  type: list
  elements: dict
collections:
  description: Name, version and file of every collection in the bundle.
  returned: success
  type: list
  elements: dict
files:
  description: Number of files listed in SHA256SUMS.
  returned: success
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.neurallog.platform.plugins.module_utils.bundle import (
    BundleError, build_manifest, write_manifest_and_sums)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            images=dict(type="list", elements="dict", required=True),
            layout=dict(type="str", default="images"),
            info=dict(type="dict", default={}),
        ),
        supports_check_mode=False,
    )
    try:
        manifest = build_manifest(module.params["path"], module.params["images"], module.params["layout"],
                                  module.params["info"])
        sums = write_manifest_and_sums(module.params["path"], manifest)
    except BundleError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=True, images=manifest["images"], collections=manifest["collections"], files=len(sums))


if __name__ == "__main__":
    main()
