"""Fleets (docs/fleets.md): the playbooks' targets, the closing table
(module_utils/fleet.py) and the run lock's holder per cluster. The runs
against three clusters at once are in tests/cluster/test_fleet_clusters.py."""

import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.neurallog.platform.plugins.action.run_lock import default_holder
from ansible_collections.neurallog.platform.plugins.module_utils import fleet
from ansible_collections.neurallog.platform.plugins.module_utils.run_lock import LockRefused, acquire
from test_run_lock import T0, MemoryStore, clock

ROOT = Path(__file__).resolve().parents[2]
# Every playbook that acts on clusters (the air-gapped bundle is built on the
# control node; airgap_install imports site.yml).
CLUSTER_PLAYBOOKS = ["site.yml", "tenant_onboard.yml", "tenants.yml", "tenant_offboard.yml", "uninstall.yml",
                     "diagnostics.yml"]
HOSTS = ("{{ neurallog_hosts | default('neurallog_clusters' if groups['neurallog_clusters'] | default([]) "
         "| length > 0 else 'localhost', true) }}")


def first_play(name):
    return yaml.safe_load((ROOT / "playbooks" / name).read_text())[0]


@pytest.mark.parametrize("name", CLUSTER_PLAYBOOKS)
def test_every_cluster_playbook_targets_the_clusters_group_with_the_same_keywords(name):
    play = first_play(name)
    assert play["hosts"] == HOSTS
    assert play["connection"] == "local"
    assert play["serial"] == first_play("site.yml")["serial"]
    assert play["max_fail_percentage"] == first_play("site.yml")["max_fail_percentage"]
    # any_errors_fatal is not templated by Ansible (a template string is
    # always true): neurallog_any_errors_fatal goes through max_fail_percentage.
    assert "any_errors_fatal" not in play


def test_the_summary_play_reads_the_same_clusters():
    summary = yaml.safe_load((ROOT / "playbooks" / "site.yml").read_text())[1]
    assert summary["tasks"][0]["vars"]["_site_pattern"] == HOSTS


@pytest.mark.parametrize("message, result", [
    ("the Kubernetes API server https://127.0.0.1:6443 did not answer GET /version (connect timeout 10s, read "
     "timeout 20s): Max retries exceeded ... [Errno 111] Connection refused", "unreachable"),
    ("The Kubernetes API server https://10.0.0.1:6443 could not be reached: no answer in time (timed out)",
     "unreachable"),
    ("no usable Kubernetes connection (kubeconfig /nope): Invalid kube-config file.", "unreachable"),
    ("Failed to establish a new connection: [Errno 111] Connection refused", "unreachable"),
    ("Not rolled out in time: redis (redis_wait_timeout=300s).", "failed"),
    ("redis_replicas must be an odd number from 1 to 9, got 4", "failed"),
    ("", "failed"),
])
def test_a_failure_is_unreachable_only_when_the_api_server_did_not_answer(message, result):
    assert fleet.failure_result(message) == result


def test_the_summary_table_has_one_line_per_cluster_sorted_with_counts():
    lines = fleet.summary_table({
        "staging": {"result": "ok", "changed": "0", "urls": []},
        "prod-us": {"result": "unreachable",
                    "message": "the Kubernetes API server https://10.0.0.2:6443 did not answer GET /version\nsecond line"},
        "prod-eu": {"result": "ok", "changed": 42, "urls": ["https://logs.eu.example.com",
                                                            "https://api.eu.example.com"]},
        "dr": {"result": "failed", "message": "Task failed: Not rolled out in time: redis."},
        "never": {"result": "started"},
    })
    assert re.split(r"\s*\|\s*", lines[0]) == ["cluster", "result", "objects changed", "URLs"]
    assert set(lines[1]) <= {"-", "+"}
    rows = [re.split(r"\s*\|\s*", line) for line in lines[2:-1]]
    assert rows == [
        ["dr", "failed", "-", "Not rolled out in time: redis."],
        ["never", "unreachable", "-", ""],
        ["prod-eu", "ok", "42", "https://logs.eu.example.com, https://api.eu.example.com"],
        ["prod-us", "unreachable", "-", "the Kubernetes API server https://10.0.0.2:6443 did not answer GET /version"],
        ["staging", "ok", "0", "-"],
    ]
    assert lines[-1] == "5 cluster(s): 2 ok, 1 failed, 2 unreachable"
    # the columns line up
    assert len(set(line.index("|") for line in lines[:-1] if "|" in line)) == 1


def test_the_run_lock_holder_names_the_cluster():
    assert default_holder("site.yml", "prod-eu").endswith(" site.yml on prod-eu")
    assert default_holder("site.yml", "prod-eu") != default_holder("site.yml", "prod-us")
    assert default_holder("site.yml") == default_holder("site.yml", "").strip()


def test_two_hosts_of_one_run_naming_the_same_cluster_do_not_both_get_its_lock():
    store = MemoryStore()
    first = default_holder("site.yml", "prod-eu")
    assert acquire(store, "neurallog-lock", "neurallog-system", first, 900, clock(T0))["action"] == "created"
    with pytest.raises(LockRefused) as refused:
        acquire(store, "neurallog-lock", "neurallog-system", default_holder("site.yml", "prod-eu-again"), 900,
                clock(T0))
    assert first in str(refused.value)


def list_hosts(playbook, inventory, *extra):
    import os
    import subprocess
    import sys
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), playbook, "-i", str(inventory),
                           "--list-hosts"] + list(extra), cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plays = {}
    for block in proc.stdout.split("play #")[1:]:
        name = re.match(r"\d+ \([^)]*\): (.*?)\s+TAGS", block).group(1)
        plays[name] = sorted(block.split("hosts (", 1)[1].split()[1:])
    return plays


def test_a_single_cluster_inventory_targets_localhost_as_before():
    assert list_hosts("site.yml", ROOT / "inventories" / "onprem") == {
        "NeuralLog platform": ["localhost"], "NeuralLog fleet summary": ["localhost"]}
    assert list_hosts("playbooks/tenants.yml", ROOT / "inventories" / "local") == {
        "Reconcile the declared NeuralLog tenants": ["localhost"]}


def test_a_fleet_inventory_targets_its_clusters_group(tmp_path):
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"bastion": {}}, "children": {
        "neurallog_clusters": {"hosts": {"prod-eu": {}, "prod-us": {}, "staging": {}}}}}}))
    hosts = list_hosts("site.yml", tmp_path / "hosts.yml")
    assert hosts["NeuralLog platform"] == ["prod-eu", "prod-us", "staging"]
    assert list_hosts("playbooks/uninstall.yml", tmp_path / "hosts.yml", "-e", "neurallog_hosts=staging") == {
        "Uninstall NeuralLog": ["staging"]}


@pytest.mark.parametrize("value, expected", [
    (0, 0), ("0", 0), (None, 0), (2, 2), ("50%", "50%"), ([1, "50%"], [1, "50%"]), (["1", "100%"], [1, "100%"]),
])
def test_serial_batches_accepts_numbers_percentages_and_lists(value, expected):
    assert fleet.serial_batches(value) == expected


@pytest.mark.parametrize("value", ["abc", -1, "150%", "0%", True, [1, "x"], [], [0, 1], "1.5"])
def test_serial_batches_refuses_anything_else_naming_the_setting(value):
    with pytest.raises(ValueError, match=r"^neurallog_serial"):
        fleet.serial_batches(value)


@pytest.mark.parametrize("value, fatal, expected", [
    (100, False, 100), ("25", "no", 25), (0, False, 0), (100, True, 0), (50, "true", 0)])
def test_max_fail_percentage_and_any_errors_fatal(value, fatal, expected):
    assert fleet.max_fail_percentage(value, fatal) == expected


@pytest.mark.parametrize("value, fatal, setting", [
    ("abc", False, "neurallog_max_fail_percentage"), (101, False, "neurallog_max_fail_percentage"),
    (-5, False, "neurallog_max_fail_percentage"), (True, False, "neurallog_max_fail_percentage"),
    (100, "maybe", "neurallog_any_errors_fatal")])
def test_max_fail_percentage_refuses_bad_values_naming_the_setting(value, fatal, setting):
    with pytest.raises(ValueError, match="^" + setting):
        fleet.max_fail_percentage(value, fatal)
