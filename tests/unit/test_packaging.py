"""The collection builds into a tarball that installs and runs by FQCN, and
its metadata stays consistent."""

import json
import os
import re
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


def _installed_collections():
    """{'ns.name': version} of the collections the virtualenv carries (the
    `ansible` package of requirements.txt)."""
    import ansible_collections

    found = {}
    for root in ansible_collections.__path__:
        for manifest in Path(root).glob("*/*/MANIFEST.json"):
            info = json.loads(manifest.read_text())["collection_info"]
            found.setdefault("%s.%s" % (info["namespace"], info["name"]), info["version"])
    return found


def _collections_used(installed):
    """Collections named by FQCN in the roles, playbooks and templates, or
    imported by the plugins."""
    fqcn = re.compile(r"\b([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*")
    imported = re.compile(r"ansible_collections\.([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)")
    used = {}
    paths = [ROOT / "site.yml"] + [p for folder in ("roles", "playbooks") for p in (ROOT / folder).rglob("*")
                                   if p.suffix in (".yml", ".yaml", ".j2")]
    for path in paths:
        for match in fqcn.finditer(path.read_text()):
            used.setdefault("%s.%s" % match.groups(), str(path.relative_to(ROOT)))
    for path in (ROOT / "plugins").rglob("*.py"):
        for match in imported.finditer(path.read_text()):
            used.setdefault("%s.%s" % match.groups(), str(path.relative_to(ROOT)))
    return dict((name, where) for name, where in used.items()
                if name in installed and name not in ("ansible.builtin", "neurallog.platform"))


def test_galaxy_declares_every_collection_used_with_a_range_met_by_the_requirements():
    from ansible.galaxy.dependency_resolution.versioning import meets_requirements

    installed = _installed_collections()
    used = _collections_used(installed)
    assert {"kubernetes.core", "community.general"} <= set(used), used
    dependencies = yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"]
    undeclared = sorted("%s (used in %s)" % (name, where) for name, where in used.items() if name not in dependencies)
    assert undeclared == []
    for name, requirement in dependencies.items():
        assert meets_requirements(installed[name], requirement), (name, installed[name], requirement)
    # the air-gapped bundle carries every dependency
    bundle = yaml.safe_load((ROOT / "roles" / "airgap_bundle" / "defaults" / "main.yml").read_text())
    assert sorted(bundle["airgap_bundle_collections"]) == sorted(["neurallog.platform"] + list(dependencies))


def test_make_build_leaves_development_files_out(tmp_path):
    """`make build` makes the tarball without hack/, build/, dist/, the
    virtualenv, test output, renders or caches, even when they exist."""
    sentinels = [ROOT / "tests" / "output" / "sentinel.txt", ROOT / "build" / "sentinel.txt",
                 ROOT / "dist" / "sentinel.txt", ROOT / "rendered" / "sentinel.yaml",
                 ROOT / "plugins" / "__pycache__" / "sentinel.pyc"]
    made = [path for path in sentinels if not path.exists()]
    made_dirs = [path.parent for path in made if not path.parent.exists()]
    for path in made:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    try:
        # the virtualenv running this test is the one `make` would set up
        built = _run("make", "-s", "-o", "%s/.installed" % BIN, "build", "DIST=%s" % tmp_path, "BIN=%s" % BIN,
                     cwd=str(ROOT))
    finally:
        for path in made:
            path.unlink()
        for folder in sorted(made_dirs, key=lambda p: len(p.parts), reverse=True):
            folder.rmdir()
    assert built.returncode == 0, built.stdout + built.stderr
    tarballs = list(tmp_path.glob("neurallog-platform-*.tar.gz"))
    assert len(tarballs) == 1
    with tarfile.open(tarballs[0]) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    leaked = [n for n in names if n.split("/")[0] in ("hack", "build", "dist", ".venv", "rendered", ".ansible",
                                                      "collections", ".git")
              or n.startswith("tests/output") or "__pycache__" in n or n.endswith(".pyc")
              or re.match(r"molecule/[^/]+/artifacts", n)]
    assert leaked == []
    for wanted in ("MANIFEST.json", "playbooks/site.yml", "plugins/module_utils/quantity.py",
                   "plugins/module_utils/k8s_client.py", "plugins/test/quantity.py", "roles/redis/tasks/main.yml"):
        assert wanted in names, wanted
    assert manifest["collection_info"]["dependencies"] == yaml.safe_load(
        (ROOT / "galaxy.yml").read_text())["dependencies"]
