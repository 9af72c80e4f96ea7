# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of neurallog.platform.wait (documented in
plugins/modules/wait.py): a bounded wait for the workloads a run applied."""

from __future__ import annotations

import time

from ansible.errors import AnsibleError

from ansible_collections.neurallog.platform.plugins.module_utils.rollout import pending_workloads, rollout_report
from ansible_collections.neurallog.platform.plugins.plugin_utils.cluster import Cluster, ClusterError
from ansible_collections.neurallog.platform.plugins.plugin_utils.controller_action import ControllerAction


class ActionModule(ControllerAction):
    NAME = "wait"

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self.validated_args()
        workloads = args["workloads"]
        result.update(changed=False, workloads=len(workloads))
        if not workloads or self._task.check_mode:
            return result
        try:
            cluster = Cluster(args["kubeconfig"] or None, args["context"] or None)
            start = time.monotonic()
            deadline = dict((id(w), start + int(w.get("timeout") or 300)) for w in workloads)
            waiting = list(workloads)
            polls = 0
            while waiting:
                live = []
                for workload in waiting:
                    obj = cluster.request("GET", cluster.path(workload["api_version"], workload["kind"],
                                                              workload["namespace"], workload["name"]), missing_ok=True)
                    live.append((workload, obj or {"kind": workload["kind"], "metadata": {
                        "namespace": workload["namespace"], "name": workload["name"], "generation": 1}}))
                pending = dict(((p["kind"], p["namespace"], p["name"]), p)
                               for p in pending_workloads([obj for _w, obj in live]))
                waiting = [w for w, _obj in live if (w["kind"], w["namespace"], w["name"]) in pending]
                late = [w for w in waiting if time.monotonic() >= deadline[id(w)]]
                if late:
                    return self._fail(result, cluster, late, pending)
                if waiting:
                    # Short polls first (a rollout that is done at once is
                    # seen at once), then every `delay` seconds.
                    time.sleep(min(args["delay"], 0.1 * 2 ** polls))
                    polls += 1
        except ClusterError as exc:
            raise AnsibleError(str(exc))
        result["seconds"] = round(time.monotonic() - start, 1)
        return result

    @staticmethod
    def _fail(result, cluster, late, pending):
        lines = []
        for namespace in sorted(set(w["namespace"] for w in late)):
            mine = [pending[(w["kind"], w["namespace"], w["name"])] for w in late if w["namespace"] == namespace]
            pods = cluster.list("v1", "Pod", namespace)
            events = cluster.list("v1", "Event", namespace)
            lines.append(rollout_report(mine, pods, events))
        names = ", ".join(sorted(set("%s (%s_wait_timeout=%ss)" % (w["role"], w["role"], w["timeout"]) for w in late)))
        result.update(failed=True, msg="Not rolled out in time: %s.\n%s" % (names, "\n".join(lines)))
        return result
