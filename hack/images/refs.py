# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print ``key reference`` for every image an inventory deploys, from the
roles' own defaults (roles/globals neurallog_images) with the inventory's
neurallog_version, neurallog_image_overrides and registries, through the
collection's image_refs: hack/images/build.sh tags its images with them.

    python hack/images/refs.py [inventories/local]
    python hack/images/refs.py --core-services [inventories/local]   # the eight services' images only
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "collections"))

# pylint: disable=wrong-import-position
from ansible_collections.neurallog.platform.plugins.module_utils.images import image_refs  # noqa: E402


SETTINGS = ("neurallog_version", "neurallog_images", "neurallog_image_overrides",
            "neurallog_image_registry", "neurallog_image_registry_override")


def load(path):
    if not os.path.isfile(path):
        return {}
    with open(path) as handle:
        return yaml.safe_load(handle) or {}


def render(value, version):
    """The only template the image list uses is {{ neurallog_version }}."""
    if isinstance(value, dict):
        return dict((key, render(item, version)) for key, item in value.items())
    if isinstance(value, str):
        value = value.replace("{{ neurallog_version }}", str(version))
        if "{{" in value:
            raise ValueError("cannot render %r here: only {{ neurallog_version }} is supported" % value)
    return value


def refs(inventory):
    settings = load(os.path.join(ROOT, "roles", "globals", "defaults", "main.yml"))
    settings = dict((key, settings.get(key)) for key in SETTINGS)
    inventory_vars = load(os.path.join(inventory, "group_vars", "all", "main.yml"))
    settings.update((key, inventory_vars[key]) for key in SETTINGS if key in inventory_vars)
    version = settings["neurallog_version"]
    return image_refs(render(settings["neurallog_images"], version),
                      render(settings["neurallog_image_overrides"] or {}, version),
                      settings["neurallog_image_registry"] or "docker.io",
                      settings["neurallog_image_registry_override"] or "")


def core_service_images(inventory):
    """The image keys of the core services (roles/core_services; a service's
    image key is its name unless it names another)."""
    services = load(os.path.join(ROOT, "roles", "core_services", "defaults", "main.yml"))["core_services_services"]
    inventory_vars = load(os.path.join(inventory, "group_vars", "all", "main.yml"))
    overrides = inventory_vars.get("core_services_overrides") or {}
    return set(str((overrides.get(name) or {}).get("image") or (services[name] or {}).get("image") or name)
               for name in services)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    core_only = "--core-services" in argv
    argv = [arg for arg in argv if arg != "--core-services"]
    inventory = argv[0] if argv else os.path.join(ROOT, "inventories", "local")
    try:
        wanted = core_service_images(inventory) if core_only else None
        for key, ref in sorted(refs(inventory).items()):
            if wanted is not None and key not in wanted:
                continue
            print("%s %s" % (key, ref))
    except (ValueError, OSError, KeyError, yaml.YAMLError) as exc:
        print("refs.py: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
