"""The lookup neurallog.platform.k8s_pending against the local cluster: what
an apply could change is found with one list per kind, including drift made
by hand and fields removed from the declaration."""

import json
import os
import subprocess
import sys
import uuid

from ansible_collections.neurallog.platform.plugins.module_utils.manifests import stamp_applied_hash

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")


def _pending(objects, selector):
    """Names the lookup returns, asked through ansible like a role does."""
    expression = ("{{ query('neurallog.platform.k8s_pending', objs | neurallog.platform.stamp_applied_hash, "
                  "label_selector='%s') | map(attribute='metadata.name') | list | to_json }}" % selector)
    proc = subprocess.run(
        [ANSIBLE, "localhost", "-c", "local", "-e", "ansible_python_interpreter=%s" % sys.executable,
         "-e", json.dumps({"objs": objects}), "-m", "ansible.builtin.debug", "-a", "msg=%s" % expression],
        cwd=REPO, env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
                           ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json"),
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    msg = result["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]
    return msg if isinstance(msg, list) else json.loads(msg)


def _stamped(obj):
    """The object as the filter stamps it."""
    return stamp_applied_hash([obj])[0]


def test_only_missing_drifted_and_redeclared_objects_are_pending(core, namespace):
    run = "r" + uuid.uuid4().hex[:6]
    labels = {"app.kubernetes.io/managed-by": "neurallog.platform", "run": run}
    selector = "app.kubernetes.io/managed-by=neurallog.platform,run=%s" % run

    def configmap(name, data):
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": namespace, "labels": labels}, "data": data}

    declared = [configmap("same", {"a": "1"}), configmap("by-hand", {"a": "1"}),
                configmap("redeclared", {"a": "1", "b": "2"}), configmap("missing", {"a": "1"})]
    # Nothing exists yet: everything is pending.
    assert _pending(declared, selector) == ["same", "by-hand", "redeclared", "missing"]

    for obj in declared[:3]:
        core.create_namespaced_config_map(namespace, _stamped(obj))
    # Changed by hand after the apply.
    core.patch_namespaced_config_map("by-hand", namespace, {"data": {"a": "edited"}})
    # The declaration drops field b: every declared field is still live,
    # only the applied hash tells the difference.
    declared[2] = configmap("redeclared", {"a": "1"})

    assert _pending(declared, selector) == ["by-hand", "redeclared", "missing"]
