"""The collection builds into a tarball that installs and runs by FQCN, and
its metadata stays consistent."""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(*argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)


def test_collection_resolves_from_checkout():
    link = ROOT / "collections" / "ansible_collections" / "neurallog" / "platform"
    assert link.is_symlink() and link.resolve() == ROOT
    cfg = (ROOT / "ansible.cfg").read_text()
    assert "collections_path = ./collections" in cfg


def test_build_install_and_run_by_fqcn(tmp_path):
    out = tmp_path / "dist"
    built = _run(str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(ROOT))
    assert built.returncode == 0, built.stdout + built.stderr
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    tarball = out / ("neurallog-platform-%s.tar.gz" % galaxy["version"])
    assert tarball.exists()
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "MANIFEST.json" in names and "playbooks/site.yml" in names
    # nothing of the development tree leaks into the artifact
    assert not [n for n in names if n.startswith((".venv", "collections/", ".git/", "build/"))]

    dest = tmp_path / "collections"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(dest), ANSIBLE_CONFIG=str(tmp_path / "none.cfg"))
    installed = _run(
        str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "-p", str(dest), str(tarball),
        env=env, cwd=tmp_path,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (dest / "ansible_collections" / "neurallog" / "platform" / "MANIFEST.json").exists()

    # The installed playbook runs by its FQCN, away from the checkout: a
    # render-mode run needs no cluster and exercises every role.
    render = tmp_path / "rendered"
    ran = _run(
        str(BIN / "ansible-playbook"), "neurallog.platform.site",
        "-i", "localhost,", "-c", "local",
        "-e", "ansible_python_interpreter=%s" % sys.executable,
        "-e", "neurallog_render_dir=%s" % render,
        env=env, cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-4000:]
    assert sorted(p.name for p in render.glob("*.yaml")), "render mode wrote nothing"


def test_runtime_metadata():
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    assert runtime["requires_ansible"] == ">=2.16.0"
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert "kubernetes.core" in galaxy["dependencies"]


def test_every_role_has_argument_specs_matching_defaults():
    """Drift between defaults/main.yml and meta/argument_specs.yml is caught here."""
    problems = []
    for role in sorted((ROOT / "roles").iterdir()):
        defaults_file = role / "defaults" / "main.yml"
        specs_file = role / "meta" / "argument_specs.yml"
        if not specs_file.exists():
            problems.append("%s: no meta/argument_specs.yml" % role.name)
            continue
        specs = yaml.safe_load(specs_file.read_text())["argument_specs"]
        options = set((specs.get("main") or {}).get("options") or {})
        defaults = set(yaml.safe_load(defaults_file.read_text()) or {}) if defaults_file.exists() else set()
        for missing in sorted(defaults - options):
            problems.append("%s: default %s missing from argument_specs" % (role.name, missing))
        for extra in sorted(options - defaults):
            spec = specs["main"]["options"][extra]
            if not spec.get("required"):
                problems.append("%s: argument_specs option %s has no default in defaults/main.yml" % (role.name, extra))
        if not (role / "README.md").exists():
            problems.append("%s: no README.md" % role.name)
    assert not problems, "\n".join(problems)
