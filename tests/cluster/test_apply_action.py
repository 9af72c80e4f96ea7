"""neurallog.platform.apply against the local cluster: server-side apply in
the controller's process, created/changed/unchanged as the server sees it,
check mode writes nothing, --diff shows objects but never a hidden value,
and a refused object fails naming it."""

import json
import os
import subprocess
import sys

from kubernetes.client.rest import ApiException

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")
SECRET_VALUE = "s3cr3t-value-never-shown"


def _apply(objects, *flags, **args):
    """The task's result, run through ansible like a role runs it."""
    task_args = dict(args, definition=objects)
    proc = subprocess.run(
        [ANSIBLE, "localhost", "-c", "local", "-e", "ansible_python_interpreter=%s" % sys.executable,
         "-m", "neurallog.platform.apply", "-a", json.dumps(task_args)] + list(flags),
        cwd=REPO, env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
                           ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json"),
        capture_output=True, text=True, timeout=120, check=False)
    # -vvv writes lines before the JSON document.
    start = 0 if proc.stdout.startswith("{") else proc.stdout.index("\n{") + 1
    result = json.loads(proc.stdout[start:])
    return result["plays"][0]["tasks"][0]["hosts"]["localhost"], proc.stdout + proc.stderr


def _configmap(namespace, name, data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": data}


def _secret(namespace, value):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hidden", "namespace": namespace},
            "type": "Opaque", "stringData": {"password": value}}


def test_created_unchanged_changed(core, namespace):
    first, _output = _apply([_configmap(namespace, "a", {"k": "1"}), _configmap(namespace, "b", {"k": "1"})])
    assert first["changed"] is True
    assert first["created"] == ["ConfigMap %s/a" % namespace, "ConfigMap %s/b" % namespace]
    again, _output = _apply([_configmap(namespace, "a", {"k": "1"}), _configmap(namespace, "b", {"k": "1"})])
    assert again["changed"] is False and again["created"] == [] and again["updated"] == []
    changed, _output = _apply([_configmap(namespace, "a", {"k": "1"}), _configmap(namespace, "b", {"k": "2"})])
    assert changed["changed"] is True and changed["updated"] == ["ConfigMap %s/b" % namespace]
    assert core.read_namespaced_config_map("b", namespace).data == {"k": "2"}
    managers = [m.manager for m in core.read_namespaced_config_map("b", namespace).metadata.managed_fields]
    assert managers == ["neurallog.platform"]


def test_check_mode_reports_and_writes_nothing(core, namespace):
    _apply([_configmap(namespace, "a", {"k": "1"})])
    before = core.read_namespaced_config_map("a", namespace).metadata.resource_version
    result, output = _apply([_configmap(namespace, "a", {"k": "2"}), _configmap(namespace, "new", {"k": "1"})],
                            "--check", "--diff")
    assert result["changed"] is True, output
    assert result["updated"] == ["ConfigMap %s/a" % namespace] and result["created"] == ["ConfigMap %s/new" % namespace]
    assert [d["after"]["data"] for d in result["diff"]] == [{"k": "2"}, {"k": "1"}]
    assert core.read_namespaced_config_map("a", namespace).metadata.resource_version == before
    try:
        core.read_namespaced_config_map("new", namespace)
        raise AssertionError("check mode created ConfigMap new")
    except ApiException as exc:
        assert exc.status == 404


def test_hidden_values_never_in_the_result(namespace):
    result, output = _apply([_secret(namespace, SECRET_VALUE)], "--diff", "-vvv", hide_values=True)
    assert result["created"] == ["Secret %s/hidden" % namespace]
    assert "diff" not in result
    assert SECRET_VALUE not in json.dumps(result)
    changed, output2 = _apply([_secret(namespace, SECRET_VALUE + "2")], "--diff", "-vvv", hide_values=True)
    assert changed["updated"] == ["Secret %s/hidden" % namespace]
    assert SECRET_VALUE not in json.dumps(changed)


def test_refused_object_fails_naming_it(namespace):
    bad = _configmap(namespace, "Not_A_Name", {"k": "1"})
    result, output = _apply([bad])
    assert result.get("failed") is True, output
    assert result["msg"].startswith("apply: ConfigMap %s/Not_A_Name" % namespace) or \
        "ConfigMap %s/Not_A_Name" % namespace in result["msg"], result["msg"]
    assert "HTTP 422" in result["msg"], result["msg"]
