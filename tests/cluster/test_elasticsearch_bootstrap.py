"""Elasticsearch's bootstrap master list on the local cluster
(roles/elasticsearch/README.md, "Bootstrap").

- A live first install bootstraps with the list and clears it in the same
  run once the nodes are Ready; the second run changes nothing.
- Render mode renders what a running cluster has (the empty list): the
  rendered files applied to a cluster, the next site.yml changes nothing.

Each test installs into namespaces of its own."""

import glob
import os
import re
import time

import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient

from cluster_helpers import wait_until
from test_safety_rails import Platform

ES_TAGS = ("-t", "elasticsearch")


def recap(output):
    found = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=0\s+failed=(\d+)", output)
    assert found, output[-3000:]
    return {"ok": int(found.group(1)), "changed": int(found.group(2)), "failed": int(found.group(3))}


def create_namespaces(platform):
    for name in (platform.system, platform.data):
        platform.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    platform.wait_for_namespace_defaults()


def bootstrap_list(platform):
    return platform.core.read_namespaced_config_map("elasticsearch-bootstrap", platform.data).data[
        "initial-master-nodes"]


def settled_versions(platform):
    """The versions once the controllers are done with what another tool
    applied (pods, claims and status written), so a later difference is
    site.yml's."""
    apps = client.AppsV1Api(platform.core.api_client)

    def rolled_out():
        sts = apps.read_namespaced_stateful_set("elasticsearch", platform.data)
        return (sts.status.observed_generation == sts.metadata.generation
                and (sts.status.ready_replicas or 0) == sts.spec.replicas)

    wait_until("Elasticsearch rolled out", rolled_out, timeout=180)
    previous = platform.versions()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(1)
        current = platform.versions()
        if current == previous:
            return current
        previous = current
    raise AssertionError("the objects kept changing for 60 s after the rollout")


def delete_namespaces(platform):
    for name in (platform.system, platform.data):
        try:
            platform.core.delete_namespace(name)
        except client.ApiException:
            pass


def test_first_install_clears_the_list_and_the_second_run_changes_nothing(api_client):
    platform = Platform(api_client)
    create_namespaces(platform)
    try:
        first = platform.site(*ES_TAGS)
        assert first.returncode == 0, first.output[-3000:]
        # applied with the list, then, once the nodes were Ready, cleared in the same run
        settled = re.search(r"TASK \[[^\]]*Apply what settles once the workloads are Ready, phase data\]"
                            r"[^\n]*\n(changed|ok|skipping)", first.output)
        assert settled and settled.group(1) == "changed", first.output[-3000:]
        assert bootstrap_list(platform) == ""
        before = platform.versions()
        second = platform.site(*ES_TAGS)
        assert second.returncode == 0, second.output[-3000:]
        assert recap(second.output)["changed"] == 0, second.output[-3000:]
        assert platform.versions() == before
    finally:
        delete_namespaces(platform)


def test_rendered_files_applied_then_site_changes_nothing(api_client, tmp_path):
    platform = Platform(api_client)
    render_dir = str(tmp_path / "rendered")
    rendered = platform.site(*ES_TAGS, neurallog_render_dir=render_dir)
    assert rendered.returncode == 0, rendered.output[-3000:]
    documents = []
    for path in sorted(glob.glob(os.path.join(render_dir, "*.yaml")) + glob.glob(os.path.join(render_dir, "secrets", "*.yaml"))):
        with open(path) as handle:
            documents.extend(doc for doc in yaml.safe_load_all(handle) if doc)
    bootstrap = [d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "elasticsearch-bootstrap"]
    assert [d["data"]["initial-master-nodes"] for d in bootstrap] == [""]
    create_namespaces(platform)
    try:
        # applied by another tool (as kubectl apply --server-side or a GitOps controller would)
        dynamic = DynamicClient(api_client)
        for doc in documents:
            resource = dynamic.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
            dynamic.server_side_apply(resource, body=doc, namespace=doc["metadata"].get("namespace"),
                                      field_manager="gitops", force_conflicts=True)
        before = settled_versions(platform)
        run = platform.site(*ES_TAGS)
        assert run.returncode == 0, run.output[-3000:]
        assert recap(run.output)["changed"] == 0, run.output[-3000:]
        assert platform.versions() == before
        assert bootstrap_list(platform) == ""
    finally:
        delete_namespaces(platform)
