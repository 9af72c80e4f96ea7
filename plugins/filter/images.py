# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image reference filters.

Resolving any neurallog.platform filter loads every filter file of the
collection, so this file imports nothing at module level beyond Ansible's
errors: each filter imports its module_utils when it is first called."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError


def _image_refs(images, overrides=None, default_registry="docker.io", registry_override=""):
    from ansible_collections.neurallog.platform.plugins.module_utils.images import image_refs

    try:
        return image_refs(images, overrides, default_registry, registry_override)
    except ValueError as exc:
        raise AnsibleFilterError("neurallog_images: %s" % exc)


class FilterModule(object):
    """Image reference helpers."""

    def filters(self):
        return {"image_refs": _image_refs}
