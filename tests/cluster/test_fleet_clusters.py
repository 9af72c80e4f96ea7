# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleets: one inventory, three local clusters at once (docs/fleets.md).

Three clusters of the test's own (hack/localcluster/cluster.py, provider
local, names <prefix>pytest-fleet-{a,b,c}) are the hosts of the inventory
group neurallog_clusters, each reached only through its host's
neurallog_kubeconfig (K8S_AUTH_KUBECONFIG and KUBECONFIG are unset, HOME is
empty). The runs install the data phase (``--tags data``, the services that
hold the passwords, without their NetworkPolicies) as the other cluster
tests do, to keep the file short; the tests run in order on the same
clusters and the outage comes last (kwok leaves pods unready after their
node was NotReady)."""

import base64
import json
import os
import re
import subprocess
import sys
import threading

import pytest
import yaml
from kubernetes import client, config

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
CLUSTER_SCRIPT = os.path.join(REPO, "hack", "localcluster", "cluster.py")
CLUSTERS = ("cluster-a", "cluster-b", "cluster-c")
SCOPE = ("--tags", "data", "--skip-tags", "network_policies")
SYSTEM, DATA = "neurallog-system", "neurallog-data"
CREDENTIALS = ("database-credentials", "redis-credentials", "elasticsearch-credentials")
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)
# Settings of single clusters (host_vars): what lands on one must not reach
# the others.
HOST_VARS = {
    "cluster-a": {"tenant_list": [{"id": "alpha", "organizations": ["ops"]}]},
    "cluster-b": {"redis_replicas": 1, "tenant_list": [{"id": "beta", "organizations": ["ops"]}]},
    "cluster-c": {},
}


def cluster_command(name, command):
    env = dict(os.environ, NEURALLOG_CLUSTER_NAME=os.environ.get("NEURALLOG_CLUSTER_PREFIX", "") + "pytest-fleet-"
               + name.rsplit("-", 1)[1], NEURALLOG_CLUSTER_PROVIDER="local")
    proc = subprocess.run([sys.executable, CLUSTER_SCRIPT, command], env=env, check=True, timeout=300,
                          capture_output=True, text=True)
    return proc.stdout.strip()


class Fleet:
    """The three clusters, their inventory and how to run the playbooks."""

    def __init__(self, tmp, kubeconfigs):
        self.tmp, self.kubeconfigs = tmp, kubeconfigs
        self.api = dict((name, config.new_client_from_config(config_file=path)) for name, path in kubeconfigs.items())
        self.inventory = tmp / "inventory"
        (self.inventory / "group_vars" / "all").mkdir(parents=True)
        (self.inventory / "host_vars").mkdir()
        # The local inventory's settings for every cluster...
        for path in (os.path.join(REPO, "inventories", "local", "group_vars", "all", name)
                     for name in ("main.yml", "data.yml")):
            with open(path) as handle:
                (self.inventory / "group_vars" / "all" / os.path.basename(path)).write_text(handle.read())
        self.write_hosts(HOST_VARS)
        (tmp / "home").mkdir()

    def write_hosts(self, host_vars):
        """hosts.yml: the group neurallog_clusters, one host per cluster
        with its own kubeconfig; host_vars/<cluster>.yml its own settings."""
        hosts = dict((name, {"neurallog_kubeconfig": self.kubeconfigs[name]}) for name in CLUSTERS)
        (self.inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"neurallog_clusters": {
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
            "hosts": hosts}}}}))
        for name in CLUSTERS:
            (self.inventory / "host_vars" / ("%s.yml" % name)).write_text(yaml.safe_dump(host_vars.get(name) or {}))

    def run(self, playbook, *args, **extra):
        env = dict((k, v) for k, v in os.environ.items() if k not in ("K8S_AUTH_KUBECONFIG", "KUBECONFIG"))
        env.update(HOME=str(self.tmp / "home"), ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
                   ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCAL_TEMP=str(self.tmp / "ansible-tmp"))
        cmd = [PLAYBOOK, playbook, "-i", str(self.inventory)] + list(args)
        if extra:
            cmd += ["-e", json.dumps(extra)]
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)
        proc.output = proc.stdout + proc.stderr
        return proc

    def site(self, *args, **extra):
        return self.run("site.yml", *(SCOPE + args), **extra)

    def core(self, name):
        return client.CoreV1Api(self.api[name])

    def statefulset(self, name, statefulset):
        return client.AppsV1Api(self.api[name]).read_namespaced_stateful_set(statefulset, DATA)

    def credentials(self, name):
        return dict((secret, self.core(name).read_namespaced_secret(secret, SYSTEM).data) for secret in CREDENTIALS)

    def versions(self, name):
        """name -> resourceVersion of every object in the data namespace."""
        out = {}
        for item in client.AppsV1Api(self.api[name]).list_namespaced_stateful_set(DATA).items:
            out["StatefulSet/" + item.metadata.name] = item.metadata.resource_version
        for item in self.core(name).list_namespaced_config_map(DATA).items:
            out["ConfigMap/" + item.metadata.name] = item.metadata.resource_version
        return out


def recap(output):
    """cluster -> (changed, unreachable, failed) of the PLAY RECAP."""
    return dict((m[0], (int(m[2]), int(m[3]), int(m[4]))) for m in RECAP.findall(output))


def summary(output):
    """cluster -> [result, objects changed, URLs] of the fleet summary table."""
    assert "TASK [Fleet summary]" in output, "no fleet summary in the output:\n" + output[-3000:]
    rows = {}
    for line in output.split("TASK [Fleet summary]", 1)[1].split("PLAY RECAP", 1)[0].splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) == 4 and cells[0] in CLUSTERS:
            rows[cells[0]] = cells[1:]
    return rows


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    kubeconfigs, errors = {}, []

    def up(name):
        try:
            kubeconfigs[name] = cluster_command(name, "up")
        except subprocess.CalledProcessError as exc:  # reported below
            errors.append("%s: %s" % (name, exc.stderr[-2000:]))

    threads = [threading.Thread(target=up, args=(name,)) for name in CLUSTERS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert not errors, errors
        yield Fleet(tmp_path_factory.mktemp("fleet"), kubeconfigs)
    finally:
        for name in CLUSTERS:
            cluster_command(name, "down")


def test_site_converges_every_cluster_in_parallel_then_changes_nothing(fleet):
    first = fleet.site()
    assert first.returncode == 0, first.output[-4000:]
    assert set(recap(first.output)) >= set(CLUSTERS)
    assert all(recap(first.output)[name][1:] == (0, 0) for name in CLUSTERS), first.output[-3000:]
    table = summary(first.output)
    assert sorted(table) == list(CLUSTERS), first.output[-3000:]
    assert all(row[0] == "ok" and int(row[1]) > 0 for row in table.values()), table
    print("first converge:\n" + "\n".join("%s %s" % (k, v) for k, v in sorted(table.items())))

    # In parallel: the three clusters' writes overlap in time (in runs one
    # after the other, each cluster's first object would come after the
    # previous cluster's last one, its wait for the StatefulSets between).
    spans = {}
    for name in CLUSTERS:
        created = [fleet.core(name).read_namespace(DATA).metadata.creation_timestamp]
        created += [s.metadata.creation_timestamp for s in
                    client.AppsV1Api(fleet.api[name]).list_namespaced_stateful_set(DATA).items]
        spans[name] = (min(created), max(created))
    assert max(s[0] for s in spans.values()) <= min(s[1] for s in spans.values()), spans
    # One include of each phase for the three clusters, so its tasks run on
    # all of them together (one include per cluster, as when the loop went
    # over the phases' contents, ran them one cluster after another).
    assert first.output.count("TASK [neurallog.platform.reconcile : Apply the objects of phase data]") == 1, \
        first.output[-3000:]

    again = fleet.site()
    assert again.returncode == 0, again.output[-4000:]
    assert all(recap(again.output)[name] == (0, 0, 0) for name in CLUSTERS), again.output[-3000:]
    assert all(row[:2] == ["ok", "0"] for row in summary(again.output).values()), again.output[-3000:]


def test_each_cluster_keeps_its_own_passwords_and_settings(fleet):
    credentials = dict((name, fleet.credentials(name)) for name in CLUSTERS)
    for secret in CREDENTIALS:
        keys = [key for key in credentials["cluster-a"][secret] if key.endswith("password")]
        assert keys, secret
        for key in keys:  # the generated ones (user and database names are settings)
            values = [credentials[name][secret][key] for name in CLUSTERS]
            assert len(set(values)) == len(CLUSTERS), "%s %s is shared between clusters" % (secret, key)
    # redis_replicas: 1 on cluster-b only (host_vars); the others keep the
    # inventory's 3.
    replicas = dict((name, fleet.statefulset(name, "redis").spec.replicas) for name in CLUSTERS)
    assert replicas == {"cluster-a": 3, "cluster-b": 1, "cluster-c": 3}


def test_each_cluster_gets_only_its_own_tenants(fleet):
    proc = fleet.run("playbooks/tenants.yml", tenant_wait=False)
    assert proc.returncode == 0, proc.output[-4000:]
    assert all(recap(proc.output)[name][1:] == (0, 0) for name in CLUSTERS), proc.output[-3000:]
    tenants = {}
    for name in CLUSTERS:
        tenants[name] = sorted(ns.metadata.labels["tenant"] for ns in fleet.core(name).list_namespace(
            label_selector="tenant").items if ns.metadata.name == "tenant-" + ns.metadata.labels["tenant"])
    assert tenants == {"cluster-a": ["alpha"], "cluster-b": ["beta"], "cluster-c": []}


def test_diagnostics_writes_one_folder_per_cluster(fleet):
    out = fleet.tmp / "diagnostics"
    proc = fleet.run("playbooks/diagnostics.yml", neurallog_diagnostics_dir=str(out))
    assert proc.returncode == 0, proc.output[-4000:]
    assert all(recap(proc.output)[name][1:] == (0, 0) for name in CLUSTERS), proc.output[-3000:]
    assert sorted(p.name for p in out.iterdir()) == sorted(CLUSTERS)
    for name in CLUSTERS:
        # each folder holds that cluster's objects: its own Redis replicas
        docs = list(yaml.safe_load_all((out / name / ("%s_StatefulSet.yaml" % DATA)).read_text()))
        redis = [d for d in docs if d and d["metadata"]["name"] == "redis"]
        assert [d["spec"]["replicas"] for d in redis] == [1 if name == "cluster-b" else 3], (name, docs)
        secrets = (out / name / "secrets.txt").read_text()
        for secret in CREDENTIALS:
            assert secret in secrets
        for key, value in fleet.credentials(name)["database-credentials"].items():
            if not key.endswith("password"):
                continue
            # names and keys only, never a password
            assert value not in secrets and base64.b64decode(value).decode() not in secrets


def test_a_failing_canary_stops_the_upgrade_before_the_second_batch(fleet):
    # The canary (first batch, one cluster) names a StorageClass that cluster
    # lacks, which its plan refuses; the upgrade (a new Redis image) must not
    # reach the other clusters.
    fleet.write_hosts(dict(HOST_VARS, **{"cluster-a": {"neurallog_storage_class": "fast-ssd"}}))
    try:
        before = dict((name, fleet.versions(name)) for name in ("cluster-b", "cluster-c"))
        proc = fleet.site(neurallog_serial=[1, "50%"], neurallog_max_fail_percentage=0,
                          neurallog_image_overrides={"redis": {"tag": "7.0.15-canary"}})
    finally:
        fleet.write_hosts(HOST_VARS)
    assert proc.returncode != 0, proc.output[-4000:]
    recaps = recap(proc.output)
    assert recaps["cluster-a"][2] >= 1, proc.output[-3000:]
    assert "neurallog_storage_class is 'fast-ssd'" in proc.output, proc.output[-3000:]
    # The second batch never started: no task ran on the other clusters.
    assert "cluster-b" not in recaps and "cluster-c" not in recaps, proc.output[-3000:]
    assert not re.search(r"\[cluster-[bc]\]", proc.output), proc.output[-3000:]
    for name in ("cluster-b", "cluster-c"):
        assert fleet.versions(name) == before[name]
        image = fleet.statefulset(name, "redis").spec.template.spec.containers[0].image
        assert not image.endswith(":7.0.15-canary"), image


def test_with_one_api_server_down_the_others_converge_and_the_summary_names_it(fleet):
    down = "cluster-c"
    server = fleet.api[down].configuration.host
    cluster_command(down, "apiserver-stop")
    try:
        proc = fleet.site()
    finally:
        cluster_command(down, "apiserver-start")
    assert proc.returncode != 0, proc.output[-4000:]
    recaps = recap(proc.output)
    assert recaps["cluster-a"] == (0, 0, 0) and recaps["cluster-b"] == (0, 0, 0), proc.output[-3000:]
    assert recaps[down][2] >= 1, proc.output[-3000:]
    table = summary(proc.output)
    print("summary with %s down:\n%s" % (down, proc.output[proc.output.index("TASK [Fleet summary]"):]))
    assert table["cluster-a"][:2] == ["ok", "0"] and table["cluster-b"][:2] == ["ok", "0"], table
    assert table[down][0] == "unreachable", table
    assert server in table[down][2], table
    assert "1 unreachable" in proc.output


def test_uninstall_removes_the_platform_from_every_cluster_and_keeps_the_data(fleet):
    # last: it removes what the other tests installed
    proc = fleet.run("playbooks/uninstall.yml")
    assert proc.returncode == 0, proc.output[-4000:]
    assert all(recap(proc.output)[name][2] == 0 for name in CLUSTERS), proc.output[-3000:]
    for name in CLUSTERS:
        apps = client.AppsV1Api(fleet.api[name])
        assert [s.metadata.name for s in apps.list_namespaced_stateful_set(DATA).items] == [], name
        # the passwords that protect the kept volumes stay
        kept = [s.metadata.name for s in fleet.core(name).list_namespaced_secret(DATA).items]
        assert kept, (name, kept)
