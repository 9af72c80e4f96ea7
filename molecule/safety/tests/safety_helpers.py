# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What changed in the cluster, seen by the API server alone.

A snapshot lists every object of every listable API resource (built-in and
custom) and records its resourceVersion and a fingerprint: the object without
its status, its resourceVersion and the managedFields entries of
subresources. An object has *changed* between two snapshots when it was
created, deleted, or when its resourceVersion moved and its fingerprint
differs -- so a controller updating a status (a Deployment's ready count, an
HPA's conditions) does not count, but any write to metadata, spec or data by
anyone does. Nothing here uses the collection's own filters or plugins.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import os
import re
import subprocess
import sys

import yaml
from kubernetes import config

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", ".."))
INVENTORY = "inventories/local"

# Kinds that controllers and kwok write to all the time and that the
# collection never declares.
CHURNING_KINDS = {"Event", "Lease", "EndpointSlice", "Endpoints", "Pod", "ReplicaSet",
                  "ControllerRevision", "Node", "ComponentStatus"}
SYSTEM_NAMESPACES = {"kube-system", "kube-node-lease"}


def api_client():
    return config.new_client_from_config(config_file=os.environ["K8S_AUTH_KUBECONFIG"])


def _get(api, path):
    method, url, headers, body, post_params = api.param_serialize(
        "GET", path, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
    response = api.call_api(method, url, header_params=headers, body=body, post_params=post_params)
    response.read()
    return json.loads(response.data)


def _resources(api):
    """(list path, kind) of every listable resource, in the preferred version."""
    out = []
    versions = [("/api/v1", "v1")]
    for group in _get(api, "/apis")["groups"]:
        preferred = group["preferredVersion"]["groupVersion"]
        versions.append(("/apis/" + preferred, preferred))
    for base, _group_version in versions:
        for res in _get(api, base)["resources"]:
            if "/" in res["name"] or "list" not in res.get("verbs", []) or res["kind"] in CHURNING_KINDS:
                continue
            out.append((base + "/" + res["name"], res["kind"]))
    return out


def _fingerprint(obj):
    obj = copy.deepcopy(obj)
    obj.pop("status", None)
    meta = obj.get("metadata", {})
    meta.pop("resourceVersion", None)
    meta["managedFields"] = [m for m in meta.get("managedFields", []) if not m.get("subresource")]
    return json.dumps(obj, sort_keys=True)


def snapshot(api=None):
    """{"Kind namespace/name": (resourceVersion, fingerprint)} of the whole cluster."""
    api = api or api_client()
    objects = {}
    for path, kind in _resources(api):
        for obj in _get(api, path).get("items", []):
            meta = obj["metadata"]
            if meta.get("namespace") in SYSTEM_NAMESPACES:
                continue
            key = "%s %s/%s" % (kind, meta.get("namespace", ""), meta["name"])
            objects[key] = (meta.get("resourceVersion"), _fingerprint(obj))
    return objects


def changed(before, after):
    """Sorted names of the objects created, deleted or written between two snapshots."""
    names = set(before) ^ set(after)
    for key in set(before) & set(after):
        if before[key][0] != after[key][0] and before[key][1] != after[key][1]:
            names.add(key)
    return sorted(names)


def inventory_settings(name):
    """A settings file of inventories/local, as a dict."""
    path = os.path.join(PROJECT, INVENTORY, "group_vars", "all", name)
    with open(path) as handle:
        return yaml.safe_load(handle)


def run_playbook(playbook, extra_vars=None, check=False, tmp_path=None):
    """Runs a playbook of the checkout on the scenario's cluster; returns
    (return code, output, {"changed": n, "failed": n} of the recap)."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), playbook, "-i", INVENTORY]
    if extra_vars is not None:
        path = os.path.join(str(tmp_path), "extra-vars.json")
        with open(path, "w") as handle:
            json.dump(extra_vars, handle)
        cmd += ["-e", "@" + path]
    if check:
        cmd += ["--check", "--diff"]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(PROJECT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=os.path.join(PROJECT, "collections"),
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    proc = subprocess.run(cmd, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=1500, check=False)
    output = proc.stdout + proc.stderr
    recap = re.search(r"localhost\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", output)
    counts = {"changed": int(recap.group(1)), "failed": int(recap.group(2))} if recap else {}
    return proc.returncode, output, counts


def changed_tasks(output):
    """Names of the tasks a run reported as changed (default callback output)."""
    names, task = [], None
    for line in output.splitlines():
        match = re.match(r"TASK \[(.*)\]", line)
        if match:
            task = match.group(1)
        elif line.startswith("changed:") and task and task not in names:
            names.append(task)
    return names


def failure_message(output):
    """What the failed task(s) said: each "fatal:" or "failed:" block of the output."""
    blocks, block = [], None
    for line in output.splitlines():
        if line.startswith(("fatal:", "failed:")):
            block = [line]
            blocks.append(block)
        elif block is not None and line.strip():
            block.append(line)
        else:
            block = None
    return "\n".join("\n".join(block) for block in blocks)[-3000:]
