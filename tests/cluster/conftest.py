"""Fixtures for tests against the local test cluster.

The cluster is reached only through the kubeconfig in K8S_AUTH_KUBECONFIG
(or KUBECONFIG), as the playbooks and Molecule reach it. `make cluster-test`
and hack/run-tests.sh bring a cluster up and set it.
"""

import os
import time
import uuid

import pytest
from kubernetes import client, config


def _kubeconfig():
    path = os.environ.get("K8S_AUTH_KUBECONFIG") or os.environ.get("KUBECONFIG")
    if not path or not os.path.exists(path):
        pytest.fail(
            "tests/cluster needs a cluster: set K8S_AUTH_KUBECONFIG "
            "(hack/localcluster/cluster.py up prints the path)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def api_client():
    return config.new_client_from_config(config_file=_kubeconfig())


@pytest.fixture(scope="session")
def core(api_client):
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def apps(api_client):
    return client.AppsV1Api(api_client)


@pytest.fixture()
def namespace(core):
    name = "t-" + uuid.uuid4().hex[:8]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    # The ServiceAccount admission plugin needs the namespace's default
    # ServiceAccount before it admits pods.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if core.list_namespaced_service_account(name).items:
            break
        time.sleep(0.2)
    yield name
    core.delete_namespace(name)
