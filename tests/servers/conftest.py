# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the real-server tests: the data roles rendered by
ansible-playbook (render mode, no cluster), and helpers that start Redis and
PostgreSQL from the Debian packages on 127.0.0.1.

The servers are required: a missing binary fails the test, it never skips."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import glob
import os
import shutil
import subprocess
import sys
import tempfile

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

PLAYBOOK = """
- name: Render the data services
  hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - neurallog.platform.postgresql
    - neurallog.platform.redis
    - neurallog.platform.elasticsearch
"""


class Rendered(object):
    """The objects written by render mode, by (kind, name)."""

    def __init__(self, directory):
        self.directory = directory
        self.objects = {}
        # Secrets are written apart, to secrets/ (neurallog_render_secrets=file).
        for path in sorted(glob.glob(os.path.join(directory, "*.yaml")) + glob.glob(os.path.join(directory, "secrets", "*.yaml"))):
            with open(path) as handle:
                for doc in yaml.safe_load_all(handle):
                    if doc:
                        self.objects[(doc["kind"], doc["metadata"]["name"])] = doc

    def get(self, kind, name):
        assert (kind, name) in self.objects, "render mode wrote no %s %s" % (kind, name)
        return self.objects[(kind, name)]

    def secret(self, name):
        data = self.get("Secret", name)["data"]
        return dict((k, base64.b64decode(v).decode("utf-8")) for k, v in data.items())

    def container(self, statefulset):
        return self.get("StatefulSet", statefulset)["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """Runs the three data roles in render mode, as users do for GitOps."""
    work = tmp_path_factory.mktemp("render")
    playbook = work / "render.yml"
    playbook.write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    env.pop("K8S_AUTH_KUBECONFIG", None)
    env["KUBECONFIG"] = str(work / "no-cluster")
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    result = subprocess.run(
        [ansible, str(playbook), "-i", "localhost,",
         "-e", "ansible_python_interpreter=%s" % sys.executable,
         "-e", "neurallog_render_dir=%s" % (work / "out")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    return Rendered(str(work / "out"))


@pytest.fixture
def server_dir():
    """A scratch folder the servers may write; owned by an unprivileged
    user when the tests run as root (PostgreSQL refuses to run as root)."""
    path = tempfile.mkdtemp(prefix="neurallog-servers-")
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
