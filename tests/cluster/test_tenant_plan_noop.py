# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tenants on the reconcile engine, against the local cluster: the first
run applies and waits for the Redis StatefulSet; a no-op re-run with
tenant_wait true applies nothing and waits for nothing (no apply or wait
task runs, every resourceVersion stays); a changed Redis setting applies
and waits for that tenant's StatefulSet only."""

import json
import os
import re
import subprocess
import sys
import uuid

import pytest
from kubernetes import client

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
TASK = re.compile(r"^TASK \[(?P<name>.*)\] \**$")
STATUS = re.compile(r"^(?P<status>ok|changed|skipping|included|failed|fatal): ")
RECAP = re.compile(r"changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def run_playbook(extra_vars, tmp_path):
    vars_file = tmp_path / ("vars-%s.json" % uuid.uuid4().hex[:6])
    vars_file.write_text(json.dumps(extra_vars))
    proc = subprocess.run(
        [PLAYBOOK, "playbooks/tenants.yml", "-i", "inventories/local", "-e", "@%s" % vars_file],
        cwd=REPO, env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                           ANSIBLE_FORCE_COLOR="0"),
        capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout


def tasks_run(output):
    """(task name, first status) of every task that ran (ok or changed)."""
    ran, name = [], None
    for line in output.splitlines():
        header = TASK.match(line)
        if header:
            name = header.group("name")
            continue
        status = STATUS.match(line)
        if status and name is not None:
            if status.group("status") in ("ok", "changed"):
                ran.append((name, status.group("status")))
            name = None
    return ran


def writes_and_waits(output):
    """The tasks that ran and apply objects or wait for workloads."""
    return [name for name, _status in tasks_run(output)
            if re.search(r"\bApply\b|\bWait\b|\bwait\b", name.split(" : ", 1)[-1])
            and "phase by phase" not in name]


def changed(output):
    return sum(int(m.group(1)) for m in RECAP.finditer(output))


def versions(api_client, tenant):
    """kind/namespace/name -> (resourceVersion, the object without status and
    server bookkeeping) of every object the tenant has (namespaces and
    everything in them, of the kinds the role applies)."""
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    rbac, net = client.RbacAuthorizationV1Api(api_client), client.NetworkingV1Api(api_client)
    selector = "tenant=%s" % tenant
    out = {}
    listings = [("Namespace", core.list_namespace), ("ResourceQuota", core.list_resource_quota_for_all_namespaces),
                ("LimitRange", core.list_limit_range_for_all_namespaces),
                ("ConfigMap", core.list_config_map_for_all_namespaces),
                ("Secret", core.list_secret_for_all_namespaces), ("Service", core.list_service_for_all_namespaces),
                ("StatefulSet", apps.list_stateful_set_for_all_namespaces),
                ("Role", rbac.list_role_for_all_namespaces),
                ("RoleBinding", rbac.list_role_binding_for_all_namespaces),
                ("NetworkPolicy", net.list_network_policy_for_all_namespaces)]
    for kind, lister in listings:
        for item in lister(label_selector=selector).items:
            body = api_client.sanitize_for_serialization(item)
            body.pop("status", None)
            for field in ("resourceVersion", "managedFields"):
                body["metadata"].pop(field, None)
            out["%s/%s/%s" % (kind, item.metadata.namespace or "", item.metadata.name)] = (
                item.metadata.resource_version, json.dumps(body, sort_keys=True))
    return out


def written(before, after):
    """The objects whose resourceVersion moved with a change outside their
    status (a controller updating a quota's usage writes nothing of ours)."""
    return sorted(key for key in before if after.get(key, (None, None))[0] != before[key][0]
                  and after.get(key, (None, None))[1] != before[key][1])


@pytest.fixture()
def tenant_ids(core):
    ids = ["r" + uuid.uuid4().hex[:6], "s" + uuid.uuid4().hex[:6]]
    yield ids
    for tenant in ids:
        for ns in core.list_namespace(label_selector="tenant=%s" % tenant).items:
            try:
                core.delete_namespace(ns.metadata.name)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise


def test_a_noop_with_tenant_wait_applies_and_waits_for_nothing(api_client, apps, tenant_ids, tmp_path):
    first, second = tenant_ids
    tenants = [{"id": first, "organizations": [{"id": "ops", "mcp": True}, "dev", "qa"]},
               {"id": second, "organizations": ["main"]}]
    out = run_playbook({"tenant_list": tenants, "tenant_wait": True}, tmp_path)
    assert changed(out) > 0
    assert writes_and_waits(out), out[-3000:]
    for tenant in tenant_ids:
        sts = apps.read_namespaced_stateful_set("redis", "tenant-%s" % tenant)
        assert sts.status.ready_replicas == 1
    before = dict(versions(api_client, first), **versions(api_client, second))
    assert len([k for k in before if k.startswith("StatefulSet/")]) == 2

    out = run_playbook({"tenant_list": tenants, "tenant_wait": True}, tmp_path)
    assert changed(out) == 0, out[-3000:]
    assert writes_and_waits(out) == [], out[-3000:]
    assert "0 to apply" in " ".join(out.split()), out[-3000:]
    after = dict(versions(api_client, first), **versions(api_client, second))
    assert written(before, after) == []
    # the Redis StatefulSets were not even touched
    assert [after[k][0] for k in sorted(before) if k.startswith("StatefulSet/")] == [
        before[k][0] for k in sorted(before) if k.startswith("StatefulSet/")]

    # a changed Redis setting of one tenant: its ConfigMap and StatefulSet
    # (the config hash) are applied, and only its StatefulSet is waited for
    tenants[1] = dict(tenants[1], redis={"maxmemory": "512mb"})
    out = run_playbook({"tenant_list": tenants, "tenant_wait": True}, tmp_path)
    assert changed(out) > 0
    assert "2 to apply" in " ".join(out.split()), out[-3000:]
    after = dict(versions(api_client, first), **versions(api_client, second))
    moved = written(before, after)
    assert moved == ["ConfigMap/tenant-%s/redis-config" % second, "StatefulSet/tenant-%s/redis" % second], moved
    assert [n for n in writes_and_waits(out) if "Wait" in n] == [
        "neurallog.platform.reconcile : Wait for the workloads applied in phase tenants"], out[-3000:]
