# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the image tests (docs/testing.md#real-container-images):
the images built by hack/images/build.sh, the data roles rendered as in
tests/servers, and the three data services run from their images as the
rendered pods describe them, on a docker network of their own that has no
way out (--internal). Docker is required: without it the tests fail."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import os
import subprocess
import sys
import tempfile
import shutil

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

import pods  # noqa: E402  pylint: disable=wrong-import-position

# The rendered data roles: the same fixture as tests/servers (one renderer).
_SPEC = importlib.util.spec_from_file_location("servers_conftest", os.path.join(REPO, "tests", "servers", "conftest.py"))
_SERVERS = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_SERVERS)
rendered = _SERVERS.rendered


@pytest.fixture(scope="session")
def images():
    """Key (as in neurallog_images) to reference; builds what is missing."""
    build = subprocess.run([os.path.join(REPO, "hack", "images", "build.sh"), "all"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True, timeout=5400, check=False)
    assert build.returncode == 0, "hack/images/build.sh all failed:\n" + build.stdout[-4000:]
    refs = subprocess.run([sys.executable, os.path.join(REPO, "hack", "images", "refs.py")], stdout=subprocess.PIPE,
                          universal_newlines=True, check=True).stdout
    return dict(line.split() for line in refs.splitlines())


@pytest.fixture(scope="session")
def network():
    """An internal docker network (no route off the machine), removed at the end."""
    name = "%simages-%d" % (os.environ.get("NEURALLOG_CLUSTER_PREFIX", ""), os.getpid())
    pods.docker("network", "create", "--internal", name)
    try:
        yield name
    finally:
        pods.docker("network", "rm", name, check=False)


@pytest.fixture
def workdir():
    """Host folder for the volumes of the containers of one test."""
    path = tempfile.mkdtemp(prefix="neurallog-images-")
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def launcher(images, rendered, network, workdir):
    """Starts rendered pods from the built images; removes them afterwards."""
    runner = pods.Launcher(images, rendered, network, workdir)
    try:
        yield runner
    finally:
        runner.remove_all()
