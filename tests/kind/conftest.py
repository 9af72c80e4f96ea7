"""The kind cluster of the tests in tests/kind: the one `make test`'s `kind up`
stage brought up (NEURALLOG_KIND_CLUSTER), else one of the tests' own named by
the module's NAME, deleted after the module unless NEURALLOG_KIND_KEEP=1. A
module's CLUSTER_IMAGES (a function returning image references) are loaded
into the node (the images built here by hack/images: no registry)."""

import os
import subprocess
from pathlib import Path

import pytest

CLUSTER_SH = Path(__file__).resolve().parents[2] / "hack" / "kind" / "cluster.sh"


@pytest.fixture(scope="module")
def cluster(request):
    env = dict(os.environ, NEURALLOG_CLUSTER_NAME=request.module.NAME, NEURALLOG_KIND_OFFLINE="1")
    up = subprocess.run(["bash", str(CLUSTER_SH), "up"], env=env, capture_output=True, text=True, check=False)
    assert up.returncode == 0, f"cluster.sh up failed:\n{up.stderr[-4000:]}"
    kubeconfig = up.stdout.strip().splitlines()[-1]
    assert Path(kubeconfig).is_file()
    images = getattr(request.module, "CLUSTER_IMAGES", None)
    if images is not None:
        load = subprocess.run(["bash", str(CLUSTER_SH), "load"] + images(), env=env, capture_output=True,
                              text=True, check=False)
        assert load.returncode == 0, f"cluster.sh load failed (hack/images/build.sh all first):\n{load.stderr[-4000:]}"
    yield kubeconfig
    if os.environ.get("NEURALLOG_KIND_KEEP") != "1":
        subprocess.run(["bash", str(CLUSTER_SH), "down"], env=env, capture_output=True, check=False)
