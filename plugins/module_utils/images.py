# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image references: one source of truth for manifests and the offline bundle."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.neurallog.platform.plugins.module_utils.merge import merge


def image_ref(image, default_registry="docker.io", registry_override=""):
    """``registry/repository:tag[@digest]`` for one image description.

    ``image`` is a dict with ``repository`` and ``tag`` (and optionally
    ``registry`` and ``digest``). ``registry_override``, when set, replaces the
    registry of every image so an air-gapped install reaches only its private
    registry."""
    if not isinstance(image, dict) or not image.get("repository") or not image.get("tag"):
        raise ValueError("an image needs 'repository' and 'tag', got %r" % (image,))
    if str(image["tag"]) in ("latest", ""):
        raise ValueError("image %s: tag 'latest' is not allowed, pin a version" % image["repository"])
    registry = registry_override or image.get("registry") or default_registry
    ref = "%s/%s:%s" % (registry.rstrip("/"), image["repository"], image["tag"])
    if image.get("digest"):
        ref += "@" + image["digest"]
    return ref


def image_refs(images, overrides=None, default_registry="docker.io", registry_override=""):
    """Key to reference for every image in ``images`` merged with ``overrides``."""
    merged = merge(images, overrides)
    return dict(
        (key, image_ref(value, default_registry, registry_override))
        for key, value in sorted(merged.items())
    )
