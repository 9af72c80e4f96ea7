#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: bundle_verify
short_description: Verify an air-gapped bundle and return its manifest
version_added: 0.1.0
author: NeuralLog platform engineering (@neurallog)
description:
  - Checks every file of an unpacked bundle against C(SHA256SUMS), refuses
    files the list does not name, and checks that C(manifest.json) and
    C(SHA256SUMS) agree. Any difference fails the task, naming every file
    concerned, before anything is installed.
  - Returns the manifest and the image descriptions to deploy, pinned to the
    bundle's digests.
options:
  path:
    description: The unpacked bundle folder.
    type: path
    required: true
  checksums:
    description:
      - Hash every file. V(false) only reads the manifest, for callers that
        have just verified the bundle (the install entry point does).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: The module only reads; it behaves the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
"""

EXAMPLES = r"""
- name: Verify the bundle
  neurallog.platform.bundle_verify:
    path: /opt/neurallog-1.0.0-bundle
  register: __bundle
"""

RETURN = r"""
manifest:
  description: The bundle's manifest.json.
  returned: success
  type: dict
images:
  description: Key to image description (repository, tag, digest) for neurallog_images.
  returned: success
  type: dict
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.neurallog.platform.plugins.module_utils.bundle import MANIFEST, BundleError, verify_bundle


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            checksums=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    try:
        if module.params["checksums"]:
            manifest = verify_bundle(path)
        else:
            with open(os.path.join(path, MANIFEST)) as handle:
                manifest = json.load(handle)
    except (BundleError, IOError, OSError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    images = dict(
        (i["key"], {"repository": i["repository"], "tag": i["tag"], "digest": i["digest"]})
        for i in manifest["images"])
    module.exit_json(changed=False, manifest=manifest, images=images)


if __name__ == "__main__":
    main()
