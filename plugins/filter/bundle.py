# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Air-gapped bundle filters.

Resolving any neurallog.platform filter loads every filter file of the
collection, so this file imports nothing at module level beyond Ansible's
errors: each filter imports its module_utils when it is first called."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError


def _bundle_images(images, overrides=None, default_registry="docker.io", registry_override=""):
    from ansible_collections.neurallog.platform.plugins.module_utils.bundle import BundleError, image_list

    try:
        return image_list(images, overrides, default_registry, registry_override)
    except (BundleError, ValueError) as exc:
        raise AnsibleFilterError("neurallog_images: %s" % exc)


def _bundle_foreign_images(objects, registry):
    from ansible_collections.neurallog.platform.plugins.module_utils.bundle import foreign_images

    return foreign_images(objects, registry)


class FilterModule(object):
    """Air-gapped bundle helpers."""

    def filters(self):
        return {"bundle_images": _bundle_images, "bundle_foreign_images": _bundle_foreign_images}
