# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The air-gapped bundle's image list covers every image the platform renders.

Renders site.yml (and a tenant, when the tenant role exists) with a registry
override, and checks that every container image in every rendered manifest
is in the list hack/airgap/images.py prints for the same settings, and that
the override reached every image. A component whose image is not in
neurallog_images, or that ignores neurallog_image_registry_override, fails
here before an air-gapped install misses it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "collections"))
sys.path.insert(0, os.path.join(ROOT, "hack", "airgap"))

from ansible_collections.neurallog.platform.plugins.module_utils import bundle  # noqa: E402
import images as images_command  # noqa: E402

OVERRIDE = "registry.airgap.invalid:5000"
INVENTORY = os.path.join(ROOT, "inventories", "local")
TENANT = '{"tenant": {"id": "imagecheck", "organizations": ["ops"]}}'


def _playbook(args):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "collections"))
    env.pop("K8S_AUTH_KUBECONFIG", None)
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY] + args,
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Every object site.yml (and tenant onboarding) renders, with the override."""
    out = tmp_path_factory.mktemp("render")
    _playbook([os.path.join(ROOT, "playbooks", "site.yml"),
               "-e", "neurallog_render_dir=%s" % (out / "site"),
               "-e", "neurallog_image_registry_override=" + OVERRIDE])
    if os.path.isdir(os.path.join(ROOT, "roles", "tenant")):
        _playbook([os.path.join(ROOT, "playbooks", "tenant_onboard.yml"),
                   "-e", "neurallog_render_dir=%s" % (out / "tenant"),
                   "-e", "neurallog_image_registry_override=" + OVERRIDE, "-e", TENANT])
    objects = []
    for path in sorted(glob.glob(str(out / "*" / "*.yaml"))):
        with open(path) as handle:
            objects.extend(doc for doc in yaml.safe_load_all(handle) if doc)
    return objects


@pytest.fixture(scope="module")
def listed():
    return images_command.image_list(INVENTORY, ["neurallog_image_registry_override=" + OVERRIDE])


def test_the_render_has_workloads(rendered):
    # Guards the two checks below against passing on an empty render.
    assert len(bundle.images_in_objects(rendered)) >= 5


def test_every_rendered_image_is_in_the_bundle_list(rendered, listed):
    assert bundle.missing_images(rendered, [i["ref"] for i in listed]) == []


def test_the_registry_override_reaches_every_rendered_image(rendered):
    assert bundle.foreign_images(rendered, OVERRIDE) == []


def test_the_bundle_list_holds_each_image_once(listed):
    names = [i["name"] for i in listed]
    assert len(names) == len(set(names))
    assert all(i["tag"] != "latest" for i in listed)


def test_the_bundle_python_requirements_follow_requirements_txt():
    """The virtualenv of the air-gapped side needs every runtime requirement
    except the `ansible` package (its collections come as tarballs)."""
    with open(os.path.join(ROOT, "requirements.txt")) as handle:
        wanted = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    with open(os.path.join(ROOT, "roles", "airgap_bundle", "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    assert sorted(defaults["airgap_bundle_python_requirements"]) == sorted(
        r for r in wanted if not r.startswith("ansible>") and not r.startswith("ansible="))
