# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print every container image an air-gapped bundle holds for an inventory.

The list comes from the bundle build itself (playbooks/airgap_bundle.yml with
airgap_bundle_images_only), so it is exactly what the bundle will contain:
neurallog_images merged with neurallog_image_overrides, for the inventory's
neurallog_version.

    .venv/bin/python hack/airgap/images.py                       # inventories/local
    .venv/bin/python hack/airgap/images.py -i inventories/prod   # another inventory
    .venv/bin/python hack/airgap/images.py --json                # full entries (key, source, name, ...)
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def image_list(inventory, extra_vars=()):
    """The bundle's image list (list of dicts) for ``inventory``."""
    playbook_bin = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "images.json")
        cmd = [playbook_bin, os.path.join(ROOT, "playbooks", "airgap_bundle.yml"), "-i", inventory,
               "-e", "airgap_bundle_images_only=true", "-e", "airgap_bundle_images_file=" + out]
        for item in extra_vars:
            cmd += ["-e", item]
        # This checkout's collection, whatever the environment points at.
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                   ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "collections"))
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError("computing the image list failed:\n" + proc.stdout)
        with open(out) as handle:
            return json.load(handle)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--inventory", default=os.path.join(ROOT, "inventories", "local"))
    parser.add_argument("-e", "--extra-vars", action="append", default=[], help="as for ansible-playbook")
    parser.add_argument("--json", action="store_true", help="print the full entries as JSON")
    args = parser.parse_args(argv)
    try:
        images = image_list(args.inventory, args.extra_vars)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(images, indent=2))
    else:
        for image in images:
            print("%-16s %s" % (image["key"], image["source"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
