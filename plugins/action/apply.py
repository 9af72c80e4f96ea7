# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of neurallog.platform.apply (documented in
plugins/modules/apply.py): server-side apply of a list of objects in the
controller's own process, through the bounded client of
plugin_utils/cluster.py. A phase of the plan costs one task and no module
process (each kubernetes.core.k8s run starts Python and imports the
kubernetes client again: about 0.5 to 1 s)."""

from __future__ import annotations

import copy

from ansible.errors import AnsibleError

from ansible_collections.neurallog.platform.plugins.module_utils.undeclared import describe
from ansible_collections.neurallog.platform.plugins.plugin_utils.cluster import Cluster, ClusterError
from ansible_collections.neurallog.platform.plugins.plugin_utils.controller_action import ControllerAction


# What the server changes on every write, or keeps for itself: not a change.
_VOLATILE_METADATA = ("managedFields", "resourceVersion", "generation", "creationTimestamp", "uid")


def comparable(obj):
    """The object without what every write or the server alone changes."""
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    metadata = out.get("metadata") or {}
    for key in _VOLATILE_METADATA:
        metadata.pop(key, None)
    return out


def outcome(before, after):
    """'created', 'changed' or None (the server's object is the same)."""
    if before is None:
        return "created"
    before_rv = (before.get("metadata") or {}).get("resourceVersion")
    after_rv = (after.get("metadata") or {}).get("resourceVersion")
    if before_rv and after_rv and before_rv != after_rv:
        return "changed"
    # A dry run keeps the resourceVersion: compare the contents.
    return "changed" if comparable(before) != comparable(after) else None


class ActionModule(ControllerAction):
    NAME = "apply"

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self.validated_args()
        objects = args["definition"]
        for index, obj in enumerate(objects):
            if not (obj.get("apiVersion") and obj.get("kind") and (obj.get("metadata") or {}).get("name")):
                raise AnsibleError("apply: definition[%d] needs apiVersion, kind and metadata.name" % index)
        dry_run = bool(self._task.check_mode)
        show_diff = bool(self._task.diff) and not args["hide_values"]
        created, changed, diffs = [], [], []
        result.update(changed=False, created=created, updated=changed, objects=len(objects))
        if not objects:
            return result
        current = objects[0]
        try:
            cluster = Cluster(args["kubeconfig"] or None, args["context"] or None, timeout=args["request_timeout"])
            for obj in objects:
                current = obj
                metadata = obj["metadata"]
                before = None
                if cluster.resources().get((obj["apiVersion"], obj["kind"])):
                    before = cluster.request("GET", cluster.path(obj["apiVersion"], obj["kind"],
                                                                 metadata.get("namespace"), metadata["name"]),
                                             missing_ok=True)
                after = cluster.apply(obj, args["field_manager"], force=args["force_conflicts"], dry_run=dry_run)
                what = outcome(before, after)
                if what:
                    (created if what == "created" else changed).append(describe([obj]))
                    if show_diff:
                        diffs.append(dict(before_header=describe([obj]), after_header=describe([obj]),
                                          before=_shown(before), after=_shown(after)))
        except ClusterError as exc:
            # The message names the object and the server's answer, never a value.
            result.update(failed=True, msg="apply: %s: %s" % (describe([current]), exc))
            return result
        result["changed"] = bool(created or changed)
        if diffs:
            result["diff"] = diffs
        return result


def _shown(obj):
    """The object as --diff shows it: without managedFields."""
    if obj is None:
        return {}
    out = copy.deepcopy(obj)
    (out.get("metadata") or {}).pop("managedFields", None)
    return out
