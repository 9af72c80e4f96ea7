# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render every inventory through site.yml (no cluster) and validate every
manifest strictly against the Kubernetes schemas of 1.30 up to the newest
kubernetes-validate knows; check image references."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils as kv_utils

ROOT = Path(__file__).resolve().parents[2]
INVENTORIES = sorted(p.name for p in (ROOT / "inventories").iterdir() if (p / "hosts.yml").exists())
REGISTRY = "registry.airgap.example:5000"
# Custom resources are rendered only when their CRDs exist; the schemas
# kubernetes-validate ships do not cover them.
CUSTOM_KINDS = {
    "monitoring.coreos.com/v1": {"ServiceMonitor", "PrometheusRule"},
    "autoscaling.k8s.io/v1": {"VerticalPodAutoscaler"},
    "gateway.networking.k8s.io/v1": {"Gateway", "HTTPRoute"},
}
ALL_CAPABILITIES = json.dumps({"preflight_render_capabilities": {
    "cert_manager": True, "vpa": True, "gateway_api": True, "prometheus_operator": True}})
# The schemas are read and parsed on every validate() call; they never
# change, so keep them (the validation itself is unchanged).
kv_utils.schema_contents = functools.lru_cache(maxsize=None)(kv_utils.schema_contents)


def _versions():
    def key(v):
        return tuple(int(x) for x in v.split("."))
    versions = sorted(set(kv_utils.all_versions()), key=key)
    return [v for v in versions if key(v) >= (1, 30, 0)]


VERSIONS = _versions()


def render(tmp_path_factory, inventory, *extra, playbooks=("site.yml",)):
    """Run ``playbooks`` in render mode into one folder; return (file, object) pairs."""
    out = tmp_path_factory.mktemp("render-%s" % inventory)
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        # Render mode must not need a cluster: point every client at nothing.
        "K8S_AUTH_KUBECONFIG": str(out / "no-such-kubeconfig"),
        "KUBECONFIG": str(out / "no-such-kubeconfig"),
    })
    for playbook in playbooks:
        cmd = [str(Path(sys.executable).parent / "ansible-playbook"), playbook,
               "-i", "inventories/%s" % inventory, "-e", "neurallog_render_dir=%s" % out]
        for arg in extra:
            cmd += ["-e", arg]
        proc = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    docs = []
    # Secrets are written apart, to secrets/ (neurallog_render_secrets=file).
    for path in sorted(out.glob("*.yaml")) + sorted(out.glob("secrets/*.yaml")):
        docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs, "nothing rendered"
    return docs


@pytest.fixture(scope="module", params=INVENTORIES)
def rendered(request, tmp_path_factory):
    return request.param, render(tmp_path_factory, request.param)


@pytest.fixture(scope="module")
def rendered_everything(tmp_path_factory):
    return render(tmp_path_factory, "onprem", ALL_CAPABILITIES, "neurallog_image_registry_override=" + REGISTRY)


def _images(doc):
    spec = (doc.get("spec") or {})
    pod = ((spec.get("template") or {}).get("spec")) or {}
    return [c["image"] for c in (pod.get("initContainers") or []) + (pod.get("containers") or [])]


def test_inventories_exist():
    assert set(INVENTORIES) >= {"local", "kind", "onprem"}


def test_every_manifest_is_valid_for_every_supported_version(rendered):
    inventory, docs = rendered
    assert VERSIONS[0] == "1.30.0" and len(VERSIONS) >= 2
    errors = []
    for version in VERSIONS:
        for name, doc in docs:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                errors.append("%s %s %s/%s: %s" % (version, name, doc["kind"], doc["metadata"]["name"], exc.message))
    assert not errors, "\n".join(errors[:20])


def test_platform_objects_are_all_rendered(rendered):
    inventory, docs = rendered
    kinds = {}
    for _path, doc in docs:
        kinds.setdefault(doc["kind"], set()).add(doc["metadata"]["name"])
    assert {"neurallog-system", "neurallog-data", "neurallog-ingress", "neurallog-monitoring"} <= kinds["Namespace"]
    services = {"api-service", "log-service", "rule-service", "mcp-service", "auth-service",
                "action-service", "api-gateway", "tenant-router"}
    for kind in ("Deployment", "Service", "ServiceAccount", "PodDisruptionBudget"):
        assert services <= kinds[kind], kind
    assert "log-service-hpa" in kinds["HorizontalPodAutoscaler"]
    assert "api-ingress" in kinds["Ingress"]


def test_images_are_pinned_and_come_from_the_registry_setting(rendered):
    inventory, docs = rendered
    images = [i for _path, d in docs for i in _images(d)]
    assert images
    for image in images:
        assert re.match(r"^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9./_-]+:[A-Za-z0-9._-]+(@sha256:[0-9a-f]{64})?$", image), image
        assert not image.split("@")[0].endswith(":latest"), image


def test_registry_override_rewrites_every_image(rendered_everything):
    images = [i for _path, d in rendered_everything for i in _images(d)]
    assert len(images) >= 11
    wrong = [i for i in images if not i.startswith(REGISTRY + "/")]
    assert not wrong


def test_optional_apis_render_custom_resources(rendered_everything):
    errors = []
    seen = set()
    for name, doc in rendered_everything:
        api = doc["apiVersion"]
        if api in CUSTOM_KINDS:
            assert doc["kind"] in CUSTOM_KINDS[api], (api, doc["kind"])
            seen.add(doc["kind"])
            continue
        try:
            kubernetes_validate.validate(doc, VERSIONS[-1], strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append("%s %s: %s" % (name, doc["kind"], exc.message))
    assert not errors, errors
    assert seen == {"ServiceMonitor", "PrometheusRule", "VerticalPodAutoscaler", "Gateway", "HTTPRoute"}
    vpa = next(d for _path, d in rendered_everything if d["kind"] == "VerticalPodAutoscaler")
    # log-service's HPA scales on cpu and memory: its VPA may only recommend.
    assert vpa["spec"]["updatePolicy"]["updateMode"] == "Off"
    ingress = next(d for _path, d in rendered_everything if d["kind"] == "Ingress")
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    assert not any(d["kind"] == "Secret" and d["type"] == "kubernetes.io/tls" for _path, d in rendered_everything)


# Render mode and Secrets: site.yml on one inventory and the tenants of the
# local inventory, each rendered into a folder, re-rendered into a copy of
# it, and rendered with neurallog_render_secrets=none.
SECRET_TARGETS = {"platform": ("site.yml", "onprem"), "tenants": ("playbooks/tenants.yml", "local")}
# Keys whose values are secret material (host, port, username are not).
SECRET_KEYS = {"password", "postgres-password", "tls.key", "auth.conf", "url"}


def render_into(out, playbook, inventory, *extra):
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "K8S_AUTH_KUBECONFIG": str(out.parent / "no-such-kubeconfig"),
        "KUBECONFIG": str(out.parent / "no-such-kubeconfig"),
    })
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), playbook,
           "-i", "inventories/%s" % inventory, "-e", "neurallog_render_dir=%s" % out]
    for arg in extra:
        cmd += ["-e", arg]
    proc = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout


def snapshot(folder):
    """Relative path -> (mode, bytes) of every file and folder under ``folder``."""
    out = {".": (oct(folder.stat().st_mode & 0o777), None)}
    for path in sorted(folder.rglob("*")):
        out[str(path.relative_to(folder))] = (oct(path.stat().st_mode & 0o777),
                                              path.read_bytes() if path.is_file() else None)
    return out


def objects_in(folder, pattern):
    return [d for path in sorted(folder.glob(pattern)) for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.fixture(scope="module", params=sorted(SECRET_TARGETS))
def secret_renders(request, tmp_path_factory):
    playbook, inventory = SECRET_TARGETS[request.param]
    base = tmp_path_factory.mktemp("secrets-%s" % request.param)
    first = base / "first"
    render_into(first, playbook, inventory)
    again = base / "again"
    shutil.copytree(str(first), str(again))
    output = render_into(again, playbook, inventory)
    none = base / "none"
    render_into(none, playbook, inventory, "neurallog_render_secrets=none")
    return {"name": request.param, "first": first, "again": again, "none": none, "output": output}


def test_rerender_writes_the_same_bytes_and_keeps_every_secret(secret_renders):
    first, again = secret_renders["first"], secret_renders["again"]
    assert snapshot(first) == snapshot(again)
    assert objects_in(first, "secrets/*.yaml"), "no Secret rendered"
    # Nothing was rewritten: the re-render reports no change at all.
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0\s", secret_renders["output"]), secret_renders["output"][-1500:]


def test_render_folder_modes(secret_renders):
    modes = dict((path, mode) for path, (mode, _content) in snapshot(secret_renders["first"]).items())
    assert modes.pop(".") == "0o750"
    assert modes.pop("secrets") == "0o700"
    secret_files = [p for p in modes if p.startswith("secrets/")]
    assert secret_files
    assert all(modes.pop(p) == "0o600" for p in secret_files), secret_files
    assert modes and set(modes.values()) == {"0o640"}, modes


def test_secrets_are_only_in_the_secrets_files(secret_renders):
    first = secret_renders["first"]
    outside = [p for p in first.rglob("*") if p.is_file() and p.parent != first / "secrets"]
    assert outside
    assert not [d for p in outside for d in yaml.safe_load_all(p.read_text()) if d and d.get("kind") == "Secret"]
    material = set()
    for secret in objects_in(first, "secrets/*.yaml"):
        for key, value in (secret.get("data") or {}).items():
            if key in SECRET_KEYS:
                plain = base64.b64decode(value).decode("utf-8")
                material.add(value)
                # PEM keys: every body line; otherwise the whole value.
                material.update(line for line in plain.splitlines() if len(line) >= 16 and "-----" not in line)
                if "-----" not in plain:
                    material.add(plain)
    assert len(material) >= 2
    for path in outside:
        text = path.read_text()
        leaked = [m[:4] + "..." for m in material if m in text]
        assert not leaked, "%s holds Secret values %s" % (path.name, leaked)


def test_render_secrets_none_renders_no_secret(secret_renders):
    first, none = secret_renders["first"], secret_renders["none"]
    assert not (none / "secrets").exists()
    rendered = [d for p in none.rglob("*.yaml") for d in yaml.safe_load_all(p.read_text()) if d]
    assert rendered and not [d for d in rendered if d["kind"] == "Secret"]
    # Everything else is what the file mode writes, byte for byte, but the
    # core services' hash of passwords this render does not know
    without_secrets = dict((k, v) for k, v in snapshot(first).items() if not k.startswith("secrets"))
    assert without_hashes(without_secrets) == without_hashes(
        dict((k, v) for k, v in snapshot(none).items() if not k.startswith("required-secrets")))
    # The Secrets the user must create are listed by name, without values.
    listed = "".join(p.read_text() for p in sorted((none / "required-secrets").glob("*.txt")))
    expected = sorted("%s/%s" % (s["metadata"]["namespace"], s["metadata"]["name"])
                      for s in objects_in(first, "secrets/*.yaml"))
    found = sorted(re.findall(r"^([a-z0-9-]+/[a-z0-9.-]+) \(", listed, re.M))
    assert found == expected
    assert all(os.stat(str(p)).st_mode & 0o777 == 0o640 for p in (none / "required-secrets").glob("*.txt"))


def without_hashes(files):
    """The files without the core services' credentials hash and the
    applied-hash stamps that follow from it."""
    return dict((path, (mode, re.sub(rb"neurallog.io/(credentials|applied)-hash: [0-9a-f]+", b"", content or b"")))
                for path, (mode, content) in files.items())


def test_render_secrets_none_twice_writes_the_same_bytes(secret_renders, tmp_path):
    """The passwords are the user's: a render that does not write them
    must not depend on values it generates (the core services' credentials
    hash would roll them out on every render)."""
    playbook, inventory = SECRET_TARGETS[secret_renders["name"]]
    other = tmp_path / "none-again"
    render_into(other, playbook, inventory, "neurallog_render_secrets=none")
    assert snapshot(other) == snapshot(secret_renders["none"])


def test_switching_render_secrets_removes_the_other_form(secret_renders, tmp_path):
    work = tmp_path / "switch"
    shutil.copytree(str(secret_renders["first"]), str(work))
    playbook, inventory = SECRET_TARGETS[secret_renders["name"]]
    render_into(work, playbook, inventory, "neurallog_render_secrets=none")
    assert not list((work / "secrets").glob("*.yaml"))
    assert list((work / "required-secrets").glob("*.txt"))


def test_render_secrets_refuses_an_unknown_value(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), KUBECONFIG=str(tmp_path / "none"),
               K8S_AUTH_KUBECONFIG=str(tmp_path / "none"))
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "site.yml", "-i", "inventories/onprem",
                           "-e", "neurallog_render_dir=%s" % out, "-e", "neurallog_render_secrets=vault"],
                          cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode != 0
    assert "neurallog_render_secrets must be one of: file, none, got: vault" in proc.stdout
    assert not out.exists(), "something was rendered before the setting was checked"
