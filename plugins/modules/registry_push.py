#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: registry_push
short_description: Push a bundle's images into a private registry
version_added: 0.1.0
author: NeuralLog platform engineering (@neurallog)
description:
  - Checks that the registry answers, then copies every image from the
    bundle's OCI image layout to C(<registry>/<repository>:<tag>) with
    skopeo, keeping its digest. Images already in the registry with the
    bundle's digest are skipped, so an interrupted push resumes where it
    stopped. Each pushed image's digest is read back and compared.
requirements:
  - skopeo on the control node
options:
  layout:
    description: The OCI image layout folder.
    type: path
    required: true
  images:
    description: Images to push; each has C(name) (C(repository:tag)) and C(digest).
    type: list
    elements: dict
    required: true
  registry:
    description: The private registry, C(host[:port]).
    type: str
    required: true
  username:
    description: Registry user; with O(password).
    type: str
    default: ""
  password:
    description: Registry password; never logged.
    type: str
    default: ""
  ca_file:
    description: CA bundle (PEM) the registry's certificate is checked against.
    type: path
    default: ""
  insecure:
    description: Skip TLS verification and allow plain HTTP. Only for registries without TLS.
    type: bool
    default: false
  retries:
    description: skopeo retries per image on network errors.
    type: int
    default: 3
  skopeo:
    description: The skopeo command.
    type: str
    default: skopeo
attributes:
  check_mode:
    support: full
    description: Reports the images that would be pushed, pushes nothing.
  diff_mode:
    support: none
    description: Not supported.
"""

EXAMPLES = r"""
- name: Push the images
  neurallog.platform.registry_push:
    layout: /opt/neurallog-1.0.0-bundle/images
    images: "{{ __bundle.manifest.images }}"
    registry: registry.example.internal:5000
    ca_file: /etc/pki/registry-ca.pem
"""

RETURN = r"""
pushed:
  description: Images copied into the registry (in check mode, those that would be).
  returned: success
  type: list
  elements: str
present:
  description: Images already in the registry with the bundle's digest.
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.neurallog.platform.plugins.module_utils.bundle import BundleError, check_registry
from ansible_collections.neurallog.platform.plugins.module_utils.bundle_registry import RegistryAccess, push_images


def main():
    module = AnsibleModule(
        argument_spec=dict(
            layout=dict(type="path", required=True),
            images=dict(type="list", elements="dict", required=True),
            registry=dict(type="str", required=True),
            username=dict(type="str", default=""),
            password=dict(type="str", default="", no_log=True),
            ca_file=dict(type="path", default=""),
            insecure=dict(type="bool", default=False),
            retries=dict(type="int", default=3),
            skopeo=dict(type="str", default="skopeo"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    skopeo = module.get_bin_path(params["skopeo"], required=True)

    def run(argv):
        return module.run_command(argv, encoding=None)

    try:
        check_registry(params["registry"], params["insecure"], params["ca_file"])
        with RegistryAccess(params["registry"], params["username"], params["password"],
                            params["ca_file"], params["insecure"]) as access:
            result = push_images(run, params["images"], params["layout"], access, skopeo,
                                 params["retries"], module.check_mode)
    except BundleError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=bool(result["pushed"]), **result)


if __name__ == "__main__":
    main()
