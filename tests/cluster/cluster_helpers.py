# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the local-cluster tests (a module of its own, not conftest:
several test folders have a conftest)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys
import time

import pytest
import yaml
from kubernetes.dynamic import DynamicClient


def wait_until(what, check, timeout=90):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    pytest.fail("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLUSTER_SCRIPT = os.path.join(REPO, "hack", "localcluster", "cluster.py")
CRDS_SCRIPT = os.path.join(REPO, "hack", "localcluster", "crds.sh")


def own_cluster(suffix, command):
    """`cluster.py <command>` (up, down …) for the local cluster of a test
    module's own, `<prefix>pytest-<suffix>`; its output (up: the kubeconfig)."""
    env = dict(os.environ, NEURALLOG_CLUSTER_NAME=os.environ.get("NEURALLOG_CLUSTER_PREFIX", "") + "pytest-" + suffix,
               NEURALLOG_CLUSTER_PROVIDER="local")
    proc = subprocess.run([sys.executable, CLUSTER_SCRIPT, command], env=env, check=True, timeout=600,
                          capture_output=True, text=True)
    return proc.stdout.strip()


def install_crds(cluster, which, kinds, apply=None):
    """Install the CRDs `crds.sh <which>` writes into `cluster` (with `.api`
    and `.dynamic`), wait until they are Established and every (apiVersion,
    kind) of `kinds` lists (Established comes before the new resources'
    storage serves lists: HTTP 429 meanwhile). `apply(crd)` applies one CRD
    (default: server-side apply). Returns the CRDs' names, sorted."""
    path = subprocess.run([CRDS_SCRIPT, which], check=True, capture_output=True, text=True,
                          timeout=600).stdout.strip().splitlines()[-1]
    with open(path) as handle:
        crds = [d for d in yaml.safe_load_all(handle) if d]
    resource = cluster.dynamic.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    for crd in crds:
        if apply:
            apply(crd)
        else:
            cluster.dynamic.server_side_apply(resource, body=crd, name=crd["metadata"]["name"],
                                              field_manager="neurallog-test-crds", force_conflicts=True)

    def established():
        for crd in crds:
            status = resource.get(name=crd["metadata"]["name"]).to_dict().get("status") or {}
            if not any(c["type"] == "Established" and c["status"] == "True" for c in status.get("conditions") or []):
                return False
        return True
    wait_until("the %s CRDs Established" % which, established, timeout=120)

    def listable():
        try:
            for api_version, kind in kinds:
                cluster.dynamic.resources.get(api_version=api_version, kind=kind).get()
        except Exception:  # pylint: disable=broad-exception-caught  # 429 or not discovered yet
            cluster.dynamic = DynamicClient(cluster.api)
            return False
        return True
    wait_until("the %s kinds listable" % which, listable, timeout=180)
    return sorted(crd["metadata"]["name"] for crd in crds)
