# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The monitoring role: the Prometheus selector check (module_utils/monitoring.py),
the Grafana dashboards' ConfigMaps and the alert rules, rendered by site.yml
(render mode, no cluster) and checked with promtool (Debian's prometheus
package, fetched by hack/promtool.sh): `promtool check rules` and
`promtool test rules` with tests/promtool/neurallog_rules_test.yml, in which
every rendered alert fires once and stays silent once."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.neurallog.platform.plugins.module_utils import monitoring

ROOT = Path(__file__).resolve().parents[2]
RULE_TESTS = ROOT / "tests" / "promtool" / "neurallog_rules_test.yml"
CAPABILITIES = json.dumps({"preflight_render_capabilities": {
    "cert_manager": True, "vpa": True, "gateway_api": True, "prometheus_operator": True}})


def _prometheus(name="k8s", namespace="monitoring", **spec):
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


OURS = {"app.kubernetes.io/part-of": "neurallog", "app.kubernetes.io/component": "monitoring"}
NS_LABELS = {"kubernetes.io/metadata.name": "neurallog-monitoring", "neurallog-monitoring": "true"}
KINDS = ["ServiceMonitor", "PrometheusRule"]


# -- the selector check ---------------------------------------------------------

def test_unmet_requirements_of_a_label_selector():
    selector = {"matchLabels": {"release": "kps"},
                "matchExpressions": [{"key": "team", "operator": "In", "values": ["obs", "sre"]},
                                     {"key": "tier", "operator": "NotIn", "values": ["test"]},
                                     {"key": "owner", "operator": "Exists"},
                                     {"key": "legacy", "operator": "DoesNotExist"}]}
    assert monitoring.unmet(selector, {"release": "kps", "team": "sre", "tier": "prod", "owner": "x"}) == []
    assert monitoring.unmet(selector, {"tier": "test", "legacy": "1"}) == [
        "release=kps", "team in (obs, sre)", "tier not in (test)", "a label owner", "no label legacy"]
    assert monitoring.unmet({}, {}) == []


def test_a_prometheus_selecting_our_labels_gives_no_warning():
    prom = _prometheus(serviceMonitorSelector={"matchLabels": {"release": "kps"}}, serviceMonitorNamespaceSelector={},
                       ruleSelector={"matchLabels": {"release": "kps"}}, ruleNamespaceSelector={})
    labels = dict(OURS, release="kps")
    assert monitoring.selection_warnings([prom], KINDS, labels, "neurallog-monitoring", NS_LABELS) == []


def test_a_missing_object_label_is_named_with_the_prometheus_and_the_setting():
    prom = _prometheus(serviceMonitorSelector={"matchLabels": {"release": "kube-prometheus-stack"}},
                       serviceMonitorNamespaceSelector={},
                       ruleSelector={"matchLabels": {"release": "kube-prometheus-stack", "role": "alert-rules"}},
                       ruleNamespaceSelector={})
    warnings = monitoring.selection_warnings([prom], KINDS, OURS, "neurallog-monitoring", NS_LABELS)
    assert warnings == [
        "Prometheus monitoring/k8s would not pick up the platform's ServiceMonitors in neurallog-monitoring: its "
        "serviceMonitorSelector needs the label release=kube-prometheus-stack, which the platform's ServiceMonitors "
        "lack (add the label to monitoring_selector_labels).",
        "Prometheus monitoring/k8s would not pick up the platform's PrometheusRules in neurallog-monitoring: its "
        "ruleSelector needs the label release=kube-prometheus-stack and role=alert-rules, which the platform's "
        "PrometheusRules lack (add the label to monitoring_selector_labels)."]


def test_namespace_selectors_null_means_its_own_namespace_and_labels_are_checked():
    own_only = _prometheus(serviceMonitorSelector={}, ruleSelector={})
    warnings = monitoring.selection_warnings([own_only], KINDS, OURS, "neurallog-monitoring", NS_LABELS)
    assert len(warnings) == 2
    assert "its serviceMonitorNamespaceSelector is unset, so it reads ServiceMonitors only from its own namespace " \
           "monitoring, not from neurallog-monitoring" in warnings[0]
    # in its own namespace, the same Prometheus selects them
    assert monitoring.selection_warnings([own_only], KINDS, OURS, "monitoring", {}) == []
    labelled = _prometheus(serviceMonitorSelector={}, ruleSelector={},
                           serviceMonitorNamespaceSelector={"matchLabels": {"monitoring": "enabled"}},
                           ruleNamespaceSelector={"matchLabels": {"monitoring": "enabled"}})
    warnings = monitoring.selection_warnings([labelled], ["ServiceMonitor"], OURS, "neurallog-monitoring", NS_LABELS)
    assert warnings == [
        "Prometheus monitoring/k8s would not pick up the platform's ServiceMonitors in neurallog-monitoring: its "
        "serviceMonitorNamespaceSelector needs monitoring=enabled on the namespace neurallog-monitoring, which "
        "lacks it (add it to the namespace with namespaces_extra_labels.monitoring)."]
    assert monitoring.selection_warnings([labelled], ["ServiceMonitor"], OURS, "neurallog-monitoring",
                                         dict(NS_LABELS, monitoring="enabled")) == []


def test_a_null_object_selector_selects_nothing():
    prom = _prometheus(serviceMonitorNamespaceSelector={}, ruleNamespaceSelector={}, ruleSelector={})
    warnings = monitoring.selection_warnings([prom], KINDS, OURS, "neurallog-monitoring", NS_LABELS)
    assert warnings == ["Prometheus monitoring/k8s would not pick up the platform's ServiceMonitors in "
                        "neurallog-monitoring: its serviceMonitorSelector is unset, so it selects no ServiceMonitor."]


def test_one_prometheus_that_selects_is_enough_else_each_is_named():
    other = _prometheus("team-a", "team-a", serviceMonitorSelector={"matchLabels": {"team": "a"}},
                        ruleSelector={"matchLabels": {"team": "a"}})
    ours = _prometheus(serviceMonitorSelector={}, serviceMonitorNamespaceSelector={}, ruleSelector={},
                       ruleNamespaceSelector={})
    assert monitoring.selection_warnings([other, ours], KINDS, OURS, "neurallog-monitoring", NS_LABELS) == []
    warnings = monitoring.selection_warnings([other, _prometheus(serviceMonitorSelector={"matchLabels": {"x": "y"}})],
                                             ["ServiceMonitor"], OURS, "neurallog-monitoring", NS_LABELS)
    assert [w.split(" would")[0] for w in warnings] == ["Prometheus monitoring/k8s", "Prometheus team-a/team-a"]


def test_no_prometheus_or_unreadable_is_one_warning():
    assert monitoring.selection_warnings([], KINDS, OURS, "neurallog-monitoring", NS_LABELS) == [
        "No Prometheus resource (monitoring.coreos.com/v1 Prometheus) in the cluster: nothing will use the platform's "
        "ServiceMonitors and PrometheusRules in neurallog-monitoring until one selects the labels "
        "app.kubernetes.io/component=monitoring, app.kubernetes.io/part-of=neurallog."]
    assert monitoring.selection_warnings(None, KINDS, OURS, "x", {})[0].startswith(
        "Could not read the Prometheus resources")
    assert monitoring.selection_warnings(None, [], OURS, "x", {}) == []


# -- dashboards -------------------------------------------------------------------

def _dashboard(**extra):
    doc = {"uid": "d1", "title": "t", "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus"},
        {"name": "system_namespace", "type": "constant", "query": "neurallog-system"}]},
        "panels": [{"type": "timeseries", "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "targets": [{"expr": "up", "datasource": {"type": "prometheus", "uid": "${datasource}"}}]}]}
    doc.update(extra)
    return doc


def test_dashboard_problems_finds_inputs_and_fixed_datasources():
    assert monitoring.dashboard_problems(_dashboard()) == []
    imported = _dashboard(__inputs=[{"name": "DS_PROMETHEUS", "type": "datasource"}])
    imported["panels"][0]["datasource"] = "${DS_PROMETHEUS}"
    problems = monitoring.dashboard_problems(imported)
    assert "import inputs (__inputs/__requires) instead of the ${datasource} variable" in problems
    assert "a DS_* input is referenced" in problems
    assert "panels[0].datasource is '${DS_PROMETHEUS}' instead of ${datasource}" in problems
    fixed = _dashboard()
    fixed["panels"][0]["targets"][0]["datasource"] = {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}
    assert monitoring.dashboard_problems(fixed) == [
        "panels[0].targets[0].datasource uses 'P1809F7CD0C75ACF3' instead of ${datasource}"]
    no_variable = _dashboard(templating={"list": []}, uid="")
    assert monitoring.dashboard_problems(no_variable) == [
        "uid '' must be set and at most 40 characters", "needs exactly one datasource variable named datasource, has []"]


def test_dashboard_configmap_sets_the_constants_and_refuses_a_missing_one():
    cm = monitoring.dashboard_configmap(_dashboard(), "neurallog-x", "mon", {"grafana_dashboard": "1"},
                                        {"grafana_folder": "NeuralLog"}, {"system_namespace": "prod-system"})
    assert cm["metadata"] == {"name": "neurallog-x", "namespace": "mon", "labels": {"grafana_dashboard": "1"},
                              "annotations": {"grafana_folder": "NeuralLog"}}
    body = json.loads(cm["data"]["neurallog-x.json"])
    assert body["templating"]["list"][1]["query"] == "prod-system"
    assert body["templating"]["list"][1]["current"]["value"] == "prod-system"
    with pytest.raises(ValueError, match="no value for its constant variable system_namespace"):
        monitoring.dashboard_configmap(_dashboard(), "neurallog-x", "mon", constants={})


# -- rendered by site.yml -----------------------------------------------------------

def _render(out, *extra, expect_ok=True):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               K8S_AUTH_KUBECONFIG=str(out / "no-such-kubeconfig"), KUBECONFIG=str(out / "no-such-kubeconfig"))
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "site.yml", "-i", "inventories/local",
           "--tags", "monitoring", "-e", "neurallog_render_dir=%s" % out, "-e", CAPABILITIES]
    for arg in extra:
        cmd += ["-e", arg]
    proc = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=600, check=False)
    if not expect_ok:
        return proc
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return [d for d in yaml.safe_load_all((out / "monitoring.yaml").read_text()) if d]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return _render(tmp_path_factory.mktemp("monitoring"))


@pytest.fixture(scope="module")
def rendered_custom(tmp_path_factory):
    return _render(tmp_path_factory.mktemp("monitoring-custom"),
                   json.dumps({"monitoring_dashboard_labels": {"team": "obs"},
                               "monitoring_dashboard_folder_annotation": "k8s-sidecar-target-directory",
                               "monitoring_dashboard_folder": "/tmp/dashboards/neurallog",
                               "monitoring_runbook_url": "https://runbooks.example.org/neurallog",
                               "neurallog_namespace_system": "prod-system"}))


def _dashboards(docs):
    return [d for d in docs if d["kind"] == "ConfigMap"]


def _alerts(docs):
    rules = [d for d in docs if d["kind"] == "PrometheusRule"]
    assert [r["metadata"]["name"] for r in rules] == ["neurallog"]
    return [rule for group in rules[0]["spec"]["groups"] for rule in group["rules"]]


@pytest.fixture(scope="module")
def promtool():
    proc = subprocess.run([str(ROOT / "hack" / "promtool.sh")], capture_output=True, text=True, timeout=900,
                          check=True)
    return proc.stdout.strip().splitlines()[-1]


def test_dashboards_are_configmaps_for_the_grafana_sidecar(rendered):
    dashboards = _dashboards(rendered)
    assert sorted(d["metadata"]["name"] for d in dashboards) == [
        "neurallog-data-services", "neurallog-overview", "neurallog-tenant-usage"]
    uids = []
    for cm in dashboards:
        assert cm["metadata"]["namespace"] == "neurallog-monitoring"
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["annotations"]["grafana_folder"] == "NeuralLog"
        (key, text), = cm["data"].items()
        assert key == cm["metadata"]["name"] + ".json"
        body = json.loads(text)
        assert monitoring.dashboard_problems(body) == [], cm["metadata"]["name"]
        assert "${DS_" not in text and "__inputs" not in text
        assert body["panels"] and all(p.get("targets") for p in body["panels"] if p["type"] != "row")
        uids.append(body["uid"])
    assert len(set(uids)) == len(uids) == 3


def test_dashboard_sources_hold_only_the_datasource_variable():
    """The files themselves, as a user would import them into Grafana."""
    files = sorted((ROOT / "roles" / "monitoring" / "files" / "dashboards").glob("*.json"))
    assert len(files) == 3
    uids = set()
    for path in files:
        body = json.loads(path.read_text())
        assert monitoring.dashboard_problems(body) == [], path.name
        uids.add(body["uid"])
    assert len(uids) == 3


def test_dashboards_use_the_metrics_named_in_the_docs(rendered):
    text = {d["metadata"]["name"]: next(iter(d["data"].values())) for d in _dashboards(rendered)}
    for metric in ("pg_up", "pg_stat_activity_count", "redis_up", "redis_memory_used_bytes",
                   "elasticsearch_cluster_health_status", "elasticsearch_jvm_memory_used_bytes"):
        assert metric in text["neurallog-data-services"], metric
    assert "kube_resourcequota" in text["neurallog-tenant-usage"]
    body = json.loads(text["neurallog-tenant-usage"])
    assert [v["name"] for v in body["templating"]["list"]] == ["datasource", "tenant"]
    overview = json.loads(text["neurallog-overview"])
    constants = {v["name"]: v["query"] for v in overview["templating"]["list"] if v["type"] == "constant"}
    assert constants == {"system_namespace": "neurallog-system", "data_namespace": "neurallog-data"}


def test_dashboard_label_folder_and_namespaces_follow_the_settings(rendered_custom):
    for cm in _dashboards(rendered_custom):
        assert cm["metadata"]["labels"]["team"] == "obs"
        assert "grafana_dashboard" not in cm["metadata"]["labels"]
        assert cm["metadata"]["annotations"]["k8s-sidecar-target-directory"] == "/tmp/dashboards/neurallog"
        assert "grafana_folder" not in cm["metadata"]["annotations"]
        body = json.loads(next(iter(cm["data"].values())))
        for variable in body["templating"]["list"]:
            if variable["name"] == "system_namespace":
                assert variable["query"] == "prod-system"
    alerts = _alerts(rendered_custom)
    assert all(a["annotations"]["runbook_url"] == "https://runbooks.example.org/neurallog#" + a["alert"].lower()
               for a in alerts)
    assert 'namespace="prod-system"' in next(a["expr"] for a in alerts if a["alert"] == "NeurallogServiceDown")


def test_every_alert_has_a_severity_and_its_runbook(rendered):
    alerts = _alerts(rendered)
    assert len(alerts) == 17
    for alert in alerts:
        assert alert["labels"]["severity"] in ("warning", "critical"), alert["alert"]
        assert set(alert["annotations"]) == {"summary", "description", "runbook"}, alert["alert"]
        assert len(alert["annotations"]["runbook"]) > 60, alert["alert"]
    docs = (ROOT / "docs" / "monitoring.md").read_text()
    missing = [a["alert"] for a in alerts if "### %s" % a["alert"] not in docs]
    assert not missing, "alerts without a runbook section in docs/monitoring.md: %s" % missing


def test_bad_thresholds_fail_before_anything_is_written(tmp_path):
    proc = _render(tmp_path, "monitoring_alert_memory_percent=150", expect_ok=False)
    assert proc.returncode != 0
    assert "monitoring_alert_connections_percent, monitoring_alert_memory_percent and monitoring_alert_disk_percent " \
           "must be whole per cents from 1 to 100" in proc.stdout + proc.stderr
    assert "memory=150" in proc.stdout + proc.stderr
    assert not list(tmp_path.glob("*.yaml"))


def _rule_files(docs, folder):
    """The PrometheusRule's groups as a Prometheus rule file, next to a
    copy of the rule unit tests (which name it)."""
    rules = [d for d in docs if d["kind"] == "PrometheusRule"][0]
    (folder / "neurallog-rules.yml").write_text(yaml.safe_dump({"groups": rules["spec"]["groups"]}, sort_keys=False))
    shutil.copy(str(RULE_TESTS), str(folder / RULE_TESTS.name))
    return folder


def test_promtool_check_rules(rendered, promtool, tmp_path):
    folder = _rule_files(rendered, tmp_path)
    proc = subprocess.run([promtool, "check", "rules", "neurallog-rules.yml"], cwd=str(folder), capture_output=True,
                          text=True, timeout=120, check=False)
    print(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 17 rules found" in proc.stdout


def test_promtool_test_rules(rendered, promtool, tmp_path):
    folder = _rule_files(rendered, tmp_path)
    proc = subprocess.run([promtool, "test", "rules", RULE_TESTS.name], cwd=str(folder), capture_output=True,
                          text=True, timeout=120, check=False)
    print(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_alert_fires_in_one_case_and_stays_silent_in_another(rendered):
    cases = [case for group in yaml.safe_load(RULE_TESTS.read_text())["tests"]
             for case in group.get("alert_rule_test") or []]
    fires = {c["alertname"] for c in cases if c.get("exp_alerts")}
    silent = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    alerts = {a["alert"] for a in _alerts(rendered)}
    assert fires == alerts, "fire: %s" % sorted(alerts ^ fires)
    assert silent == alerts, "silent: %s" % sorted(alerts ^ silent)
