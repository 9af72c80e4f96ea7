"""The tenant playbooks reach the cluster the inventory names: with only
neurallog_kubeconfig set (no K8S_AUTH_KUBECONFIG, no KUBECONFIG, no
~/.kube/config), onboarding plans, applies and offboards on that cluster."""

import json
import os
import subprocess
import sys
import uuid

from kubernetes import client

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def run_playbook(playbook, extra_vars, tmp_path):
    kubeconfig = os.environ.get("K8S_AUTH_KUBECONFIG") or os.environ["KUBECONFIG"]
    env = dict((k, v) for k, v in os.environ.items() if k not in ("K8S_AUTH_KUBECONFIG", "KUBECONFIG"))
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_REMOTE_TEMP=str(tmp_path / "tmp"))
    vars_file = tmp_path / ("vars-%s.json" % uuid.uuid4().hex[:6])
    vars_file.write_text(json.dumps(dict(extra_vars, neurallog_kubeconfig=kubeconfig, tenant_wait=False)))
    proc = subprocess.run(
        [PLAYBOOK, os.path.join("playbooks", playbook), "-i", "inventories/local", "-e", "@%s" % vars_file],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_onboarding_and_offboarding_with_only_the_inventory_kubeconfig(core, tmp_path):
    tenant_id = "k" + uuid.uuid4().hex[:7]
    rc, out = run_playbook("tenant_onboard.yml", {"tenant": {"id": tenant_id, "organizations": ["ops"]}}, tmp_path)
    assert rc == 0, out[-3000:]
    try:
        namespace = core.read_namespace("tenant-%s" % tenant_id)
        assert namespace.metadata.labels["tenant"] == tenant_id
        assert core.read_namespace("tenant-%s-org-ops" % tenant_id).metadata.labels["tenant"] == tenant_id
    finally:
        rc, out = run_playbook("tenant_offboard.yml", {"tenant_offboard_id": tenant_id,
                                                       "tenant_offboard_confirm": tenant_id,
                                                       "tenant_offboard_purge": True}, tmp_path)
    assert rc == 0, out[-3000:]
    try:
        phase = core.read_namespace("tenant-%s" % tenant_id).status.phase
        assert phase == "Terminating", phase
    except client.ApiException as exc:
        assert exc.status == 404
