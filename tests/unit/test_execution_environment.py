"""The execution environment for AWX / Automation Platform (docs/awx.md):
``ansible-builder create`` (no image can be pulled here, so no ``build``)
turns execution-environment.yml into a build context whose Containerfile
installs the collection's Python and system requirements, as
meta/execution-environment.yml names them, and the collections galaxy.yml
depends on. ansible-builder comes from requirements-dev.txt (ANSIBLE_BUILDER
names another binary)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def builder():
    path = os.environ.get("ANSIBLE_BUILDER") or str(Path(sys.executable).parent / "ansible-builder")
    if not os.path.exists(path):
        pytest.fail("ansible-builder is missing: pip install -r requirements-dev.txt (or set ANSIBLE_BUILDER)",
                    pytrace=False)
    return path


def requirement_lines(path):
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    out = tmp_path_factory.mktemp("ee") / "context"
    proc = subprocess.run([builder(), "create", "-f", "execution-environment.yml", "-c", str(out),
                           "--output-filename", "Containerfile"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print("ansible-builder create wrote:\n" + "\n".join(
        sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())))
    return out


def test_the_collection_declares_its_requirements_for_execution_environments():
    meta = yaml.safe_load((ROOT / "meta" / "execution-environment.yml").read_text())
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    assert meta["version"] == 1 and ee["version"] == 3
    # one list of requirements: the EE definition names the collection's own files
    assert ee["dependencies"]["python"] == meta["dependencies"]["python"] == "meta/ee-requirements.txt"
    assert ee["dependencies"]["system"] == meta["dependencies"]["system"] == "meta/ee-bindep.txt"
    # the same pins as the control node's requirements.txt
    pins = dict(re.match(r"([A-Za-z0-9_.-]+)(.*)", line).groups() for line in requirement_lines(ROOT / "requirements.txt"))
    for line in requirement_lines(ROOT / meta["dependencies"]["python"]):
        name, spec = re.match(r"([A-Za-z0-9_.-]+)(.*)", line).groups()
        if name in pins:
            assert spec == pins[name], "%s: %s in the EE, %s in requirements.txt" % (name, spec, pins[name])
    assert ee["dependencies"]["ansible_core"]["package_pip"] == "ansible-core" + pins["ansible-core"]
    # the collections the EE installs are galaxy.yml's dependencies
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert dict((c["name"], c["version"]) for c in ee["dependencies"]["galaxy"]["collections"]) == \
        galaxy["dependencies"]


def test_ansible_builder_create_writes_a_context_with_the_requirements(context):
    containerfile = (context / "Containerfile").read_text()
    assert re.search(r'^ARG EE_BASE_IMAGE="quay.io/centos/centos:stream9"$', containerfile, re.MULTILINE)
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible-core>=2.19,<2.20 ansible-runner>=2.4,<3"' in containerfile
    # the collection's Python and system requirements are copied in and
    # installed (introspect merges them with those of every collection)
    assert "COPY _build/requirements.txt requirements.txt" in containerfile
    assert "COPY _build/bindep.txt bindep.txt" in containerfile
    assert "--user-pip=requirements.txt --user-bindep=bindep.txt" in containerfile
    assert "install-from-bindep" in containerfile
    assert requirement_lines(context / "_build" / "requirements.txt") == requirement_lines(
        ROOT / "meta" / "ee-requirements.txt")
    assert any(line.startswith("kubernetes>=") for line in requirement_lines(context / "_build" / "requirements.txt"))
    assert requirement_lines(context / "_build" / "bindep.txt") == requirement_lines(ROOT / "meta" / "ee-bindep.txt")
    assert "skopeo [platform:rpm platform:dpkg]" in requirement_lines(context / "_build" / "bindep.txt")
    collections = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    assert sorted(c["name"] for c in collections) == ["community.general", "community.hashi_vault", "kubernetes.core"]
    assert "ansible-galaxy collection install" in containerfile
