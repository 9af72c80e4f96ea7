# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tenant safety rails against the local cluster, through the playbooks:
a namespace labelled for another tenant is neither adopted (onboard,
tenants.yml) nor deleted (offboard), and an empty or unconfirmed prune
changes nothing. "Nothing changed" is every Namespace's resourceVersion."""

import json
import os
import subprocess
import sys
import uuid

import pytest
from kubernetes import client

from cluster_helpers import wait_until

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
MANAGED = {"app.kubernetes.io/managed-by": "neurallog.platform", "app.kubernetes.io/part-of": "neurallog"}
# No Redis and no wait: the rails are about namespaces.
QUICK = {"tenant_wait": False, "tenant_redis": {"enabled": False}}


def run_playbook(playbook, extra_vars, tmp_path):
    """(return code, output) of a playbook run against the test cluster."""
    vars_file = tmp_path / ("vars-%s.json" % uuid.uuid4().hex[:6])
    vars_file.write_text(json.dumps(dict(QUICK, **extra_vars)))
    proc = subprocess.run(
        [PLAYBOOK, os.path.join("playbooks", playbook), "-i", "inventories/local", "-e", "@%s" % vars_file],
        cwd=REPO, env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                           ANSIBLE_FORCE_COLOR="0"),
        capture_output=True, text=True, timeout=600, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def one_line(text):
    """Ansible folds long messages; compare them unfolded."""
    return " ".join(text.split())


def snapshot(core):
    """Every Namespace and its resourceVersion, except those being deleted
    (left over by earlier tests: they change and vanish by themselves)."""
    return dict((ns.metadata.name, ns.metadata.resource_version) for ns in core.list_namespace().items
                if not ns.metadata.deletion_timestamp)


def tenant_roots(core):
    return sorted(ns.metadata.labels["tenant"] for ns in core.list_namespace(
        label_selector="type=tenant-root,app.kubernetes.io/managed-by=neurallog.platform").items)


@pytest.fixture(autouse=True)
def lock_namespace(core):
    """The namespace of the run lock, as on a cluster with the platform
    installed: every tenant playbook holds its Lease there (and would
    create the namespace on a bare cluster), so "nothing changed" is
    judged with it in place."""
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="neurallog-system")))
    except client.ApiException as exc:
        if exc.status != 409:
            raise


@pytest.fixture()
def make_namespace(core):
    """make(name, tenant, type) creates a namespace labelled as the collection
    labels them (name None: only remember the tenant); afterwards every
    namespace of those tenants is deleted and waited for."""
    created = []

    def make(name, tenant, ns_type):
        created.append(tenant)
        if name:
            labels = dict(MANAGED, tenant=tenant, type=ns_type)
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))

    yield make
    names = set()
    for tenant in set(created):
        names.update(ns.metadata.name for ns in core.list_namespace(label_selector="tenant=%s" % tenant).items)
    for name in names:
        try:
            core.delete_namespace(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
    wait_until("the test namespaces to be gone",
               lambda: not names & set(ns.metadata.name for ns in core.list_namespace().items), timeout=120)


def suffix():
    # hex: never forms the reserved words org or mcp
    return uuid.uuid4().hex[:6]


def test_a_namespace_labelled_for_another_tenant_is_not_adopted(core, make_namespace, tmp_path):
    tenant_id = "a" + suffix()
    # tenant "<id>-org-ops", onboarded before ids were checked, owns what
    # would be organization ops of tenant <id>
    taken = "tenant-%s-org-ops" % tenant_id
    make_namespace(taken, tenant_id + "-org-ops", "tenant-root")
    make_namespace(None, tenant_id, None)  # removed afterwards should it be created
    tenant = {"id": tenant_id, "organizations": ["ops", "dev"], "admin_groups": ["%s-admins" % tenant_id]}
    expected = ("tenants[%s]: namespace '%s' exists labelled tenant=%s-org-ops, type=tenant-root: it belongs to "
                "someone else and is not adopted as organization of tenant '%s'" % (tenant_id, taken, tenant_id, tenant_id))
    before = snapshot(core)

    rc, out = run_playbook("tenant_onboard.yml", {"tenant": tenant}, tmp_path)
    assert rc != 0, out[-3000:]
    assert expected in one_line(out), out[-3000:]
    assert snapshot(core) == before
    assert not client.RbacAuthorizationV1Api(core.api_client).list_namespaced_role_binding(taken).items

    rc, out = run_playbook("tenants.yml", {"tenant_list": [tenant]}, tmp_path)
    assert rc != 0, out[-3000:]
    assert expected in one_line(out), out[-3000:]
    assert snapshot(core) == before


def test_offboarding_does_not_delete_another_tenants_namespace(core, make_namespace, tmp_path):
    tenant_id = "b" + suffix()
    make_namespace("tenant-%s" % tenant_id, tenant_id, "tenant-root")
    # organization ops of tenant <id>, whose labels a tenant "<id>-org-ops"
    # onboarded before ids were checked overwrote
    taken = "tenant-%s-org-ops" % tenant_id
    make_namespace(taken, tenant_id + "-org-ops", "tenant-root")
    before = snapshot(core)

    rc, out = run_playbook("tenant_offboard.yml", {"tenant_offboard_id": tenant_id + "-org-ops",
                                                   "tenant_offboard_confirm": tenant_id + "-org-ops"}, tmp_path)
    assert rc != 0, out[-3000:]
    assert ("Refusing to offboard tenant %s-org-ops: namespace '%s' is labelled tenant=%s-org-ops, but its name makes "
            "it a namespace of tenant '%s' (whose root namespace 'tenant-%s' exists); it is not deleted. Nothing was "
            "changed" % (tenant_id, taken, tenant_id, tenant_id, tenant_id)) in one_line(out), out[-3000:]
    assert snapshot(core) == before
    assert core.read_namespace(taken).status.phase == "Active"


def test_offboarding_refuses_an_id_with_a_trailing_newline(core, make_namespace, tmp_path):
    tenant_id = "c" + suffix()
    make_namespace("tenant-%s" % tenant_id, tenant_id, "tenant-root")
    before = snapshot(core)
    rc, out = run_playbook("tenant_offboard.yml", {"tenant_offboard_id": tenant_id + "\n",
                                                   "tenant_offboard_confirm": tenant_id + "\n"}, tmp_path)
    assert rc != 0, out[-3000:]
    assert ('tenant_offboard_confirm must equal tenant_offboard_id, a tenant id (DNS-1123 label), to remove a tenant '
            '(tenant_offboard_id="%s\\n", tenant_offboard_confirm="%s\\n"); nothing was changed'
            % (tenant_id, tenant_id)) in one_line(out), out[-3000:]
    assert snapshot(core) == before


def test_prune_refusals_change_nothing_and_a_confirmed_prune_proceeds(core, make_namespace, tmp_path):
    assert tenant_roots(core) == [], "the test cluster must hold no other tenants (a prune would count them)"
    run = suffix()
    keep, gone = "k" + run, ["p" + run, "q" + run]
    for tenant_id in gone:
        make_namespace("tenant-%s" % tenant_id, tenant_id, "tenant-root")
    make_namespace("tenant-%s-org-ops" % gone[0], gone[0], "organization")
    make_namespace(None, keep, None)  # created by the playbook; removed afterwards
    before = snapshot(core)
    report = ("Tenants in the cluster but not declared in tenant_list: 2: %s (tenant-%s, tenant-%s-org-ops); "
              "%s (tenant-%s) - tenant_prune is true: these tenants and namespaces are to be removed"
              % (gone[0], gone[0], gone[0], gone[1], gone[1]))

    # an empty tenant_list
    rc, out = run_playbook("tenants.yml", {"tenant_list": [], "tenant_prune": True}, tmp_path)
    assert rc != 0, out[-3000:]
    assert ("tenant_prune=true with an empty tenant_list would offboard every tenant in the cluster (2: %s, %s); "
            "refusing. Declare the tenants to keep in tenant_list, or offboard tenants one by one with "
            "playbooks/tenant_offboard.yml. Nothing was changed." % tuple(gone)) in one_line(out), out[-3000:]
    assert snapshot(core) == before

    # more than tenant_prune_threshold (1) without the confirmation, or a wrong one
    declared = [{"id": keep}]
    for confirm in ({}, {"tenant_prune_confirm": "1"}):
        rc, out = run_playbook("tenants.yml", dict(confirm, tenant_list=declared, tenant_prune=True), tmp_path)
        assert rc != 0, out[-3000:]
        assert report in one_line(out), out[-3000:]
        assert ("tenant_prune would offboard 2 tenants (%s, %s), more than tenant_prune_threshold=1; to go ahead, "
                "confirm the number with -e tenant_prune_confirm=2 (given: %s). Nothing was changed."
                % (gone[0], gone[1], json.dumps(confirm.get("tenant_prune_confirm", "")))) in one_line(out), out[-3000:]
        assert snapshot(core) == before

    # confirmed: the declared tenant is reconciled, the others are offboarded
    rc, out = run_playbook("tenants.yml", {"tenant_list": declared, "tenant_prune": True,
                                           "tenant_prune_confirm": "2"}, tmp_path)
    assert rc == 0, out[-3000:]
    assert report in one_line(out), out[-3000:]
    assert tenant_roots(core) == [keep]
    remaining = snapshot(core)
    assert not [name for name in remaining if name.startswith(("tenant-" + gone[0], "tenant-" + gone[1]))]
    # nothing left to prune
    rc, out = run_playbook("tenants.yml", {"tenant_list": declared, "tenant_prune": True}, tmp_path)
    assert rc == 0, out[-3000:]
    assert "Tenants in the cluster but not declared in tenant_list: none" in out
    assert tenant_roots(core) == [keep]
