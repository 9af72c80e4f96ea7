# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""On the cluster before the install (only the optional CRDs): check mode
predicts changes without making any, and a bad setting of any role stops
site.yml before the first object is written. On an empty cluster every role
would create something, so a check that only runs when its role starts (after
the namespaces and data services were applied) is caught here.

Run by prepare.yml; the cluster comes from K8S_AUTH_KUBECONFIG."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from safety_helpers import changed, changed_tasks, failure_message, run_playbook, snapshot

# One bad setting per role: (role, extra vars, words the message must contain).
BAD_SETTINGS = [
    ("preflight", {"preflight_min_kubernetes_version": "1.x"}, ["preflight_min_kubernetes_version"]),
    ("namespaces", {"namespaces_pod_security_levels": {"system": "strict"}},
     ["namespaces_pod_security_levels", "strict"]),
    ("postgresql", {"postgresql_storage_size": "lots"}, ["postgresql_storage_size"]),
    ("redis", {"redis_maxmemory": "64gb"}, ["redis_maxmemory"]),
    ("elasticsearch", {"elasticsearch_replicas": 2}, ["elasticsearch_replicas"]),
    ("core_services", {"core_services_overrides": {"no-such-service": {"replicas": 1}}}, ["no-such-service"]),
    ("ingress", {"ingress_tls_mode": "secret"}, ["ingress_tls_certificate"]),
    ("scaling", {"scaling_hpa_behavior": "fast"}, ["scaling_hpa_behavior"]),
    ("monitoring", {"monitoring_scrape_interval": "often"}, ["monitoring_scrape_interval"]),
]


@pytest.fixture(scope="module")
def empty_cluster():
    """The snapshot of the cluster as prepare left it: no platform namespace."""
    before = snapshot()
    platform = [name for name in before if name.startswith("Namespace /neurallog")]
    assert not platform, "the cluster is not empty: %s" % platform
    return before


def test_check_mode_on_the_empty_cluster_predicts_changes_and_makes_none(empty_cluster, tmp_path):
    rc, output, recap = run_playbook("site.yml", check=True, tmp_path=tmp_path)
    written = changed(empty_cluster, snapshot())
    assert rc == 0, "site.yml --check failed on the empty cluster:\n" + output[-4000:]
    assert recap.get("changed", 0) > 0, "check mode predicted no change on an empty cluster:\n" + output[-2000:]
    assert written == [], "check mode wrote %s" % written
    # The first thing an install does is create the namespaces.
    assert any("namespaces" in task.lower() for task in changed_tasks(output)), changed_tasks(output)


@pytest.mark.parametrize("role,extra_vars,words", BAD_SETTINGS, ids=[case[0] for case in BAD_SETTINGS])
def test_bad_setting_fails_before_any_change(empty_cluster, tmp_path, role, extra_vars, words):
    rc, output, _recap = run_playbook("site.yml", extra_vars=extra_vars, tmp_path=tmp_path)
    written = changed(empty_cluster, snapshot())
    print("%s %s: rc %s, wrote %s\n%s" % (role, extra_vars, rc, written, failure_message(output)))
    assert rc != 0, "site.yml accepted the bad %s setting %s" % (role, extra_vars)
    assert written == [], "site.yml with the bad %s setting %s wrote %s before failing" % (role, extra_vars, written)
    missing = [word for word in words if word not in output]
    assert not missing, "the failure does not name %s:\n%s" % (missing, output[-3000:])
