# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rollout state of Deployments and StatefulSets, and why one is not ready.

Used by bounded rollout waits: ``pending_workloads`` says which workloads are
not rolled out yet; ``rollout_report`` explains each one from its pods'
phases and conditions and the related events."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _why_not_ready(obj):
    """None when the workload is rolled out, else a short reason."""
    kind = obj.get("kind", "")
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    wanted = spec.get("replicas", 1)
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return "the controller has not yet observed generation %s" % meta.get("generation")
    ready = status.get("readyReplicas", 0) or 0
    updated = status.get("updatedReplicas", 0) or 0
    if kind == "Deployment":
        available = status.get("availableReplicas", 0) or 0
        for condition in status.get("conditions") or []:
            if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
                return "progress deadline exceeded: %s" % condition.get("message", "")
        if updated < wanted:
            return "%d of %d replicas updated" % (updated, wanted)
        if (status.get("replicas", 0) or 0) > updated:
            return "%d old replicas still terminating" % ((status.get("replicas", 0) or 0) - updated)
        if available < wanted:
            return "%d of %d replicas available" % (available, wanted)
        return None
    if kind == "StatefulSet":
        if ready < wanted:
            return "%d of %d replicas ready" % (ready, wanted)
        strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
        if strategy == "RollingUpdate":
            if updated < wanted:
                return "%d of %d replicas updated" % (updated, wanted)
            if status.get("updateRevision") and status.get("currentRevision") != status.get("updateRevision"):
                return "revision %s not yet rolled out" % status.get("updateRevision")
        return None
    return None


def pending_workloads(objects):
    """``[{kind, namespace, name, reason, selector}]`` for every object not rolled out."""
    if isinstance(objects, dict) and "resources" in objects:
        objects = objects["resources"]
    pending = []
    for obj in objects or []:
        reason = _why_not_ready(obj)
        if reason:
            meta = obj.get("metadata") or {}
            pending.append({
                "kind": obj.get("kind", ""),
                "namespace": meta.get("namespace", ""),
                "name": meta.get("name", ""),
                "reason": reason,
                "selector": ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {},
            })
    return pending


def _pod_line(pod):
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    parts = ["%s %s" % (meta.get("name"), status.get("phase", "Unknown"))]
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            text = "%s=%s" % (condition.get("type"), condition.get("status"))
            if condition.get("reason"):
                text += " " + condition["reason"]
            if condition.get("message"):
                text += ": " + condition["message"]
            parts.append(text)
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (container.get("state") or {}).get("waiting")
        if waiting:
            parts.append("container %s waiting: %s %s" % (
                container.get("name"), waiting.get("reason", ""), waiting.get("message", "")))
    return "; ".join(p.strip() for p in parts)


def rollout_report(pending, pods=None, events=None, max_events=5):
    """Human explanation of every pending workload: reason, pods, recent events."""
    pods = pods or []
    events = events or []
    if isinstance(pods, dict) and "resources" in pods:
        pods = pods["resources"]
    if isinstance(events, dict) and "resources" in events:
        events = events["resources"]
    lines = []
    for item in pending or []:
        lines.append("%s %s/%s not ready: %s" % (item["kind"], item["namespace"], item["name"], item["reason"]))
        selector = item.get("selector") or {}
        mine = [
            pod for pod in pods
            if (pod.get("metadata") or {}).get("namespace") == item["namespace"]
            and selector
            and all(((pod.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in selector.items())
        ]
        names = set([item["name"]] + [(p.get("metadata") or {}).get("name") for p in mine])
        if not mine:
            lines.append("  no pods found for selector %s" % ",".join("%s=%s" % kv for kv in sorted(selector.items())))
        for pod in sorted(mine, key=lambda p: (p.get("metadata") or {}).get("name", "")):
            lines.append("  pod " + _pod_line(pod))
        related = [
            event for event in events
            if (event.get("involvedObject") or {}).get("name") in names
            and (event.get("metadata") or {}).get("namespace") == item["namespace"]
        ]
        related.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        for event in related[-max_events:]:
            involved = event.get("involvedObject") or {}
            lines.append("  event %s %s/%s: %s %s" % (
                event.get("type", ""), involved.get("kind", ""), involved.get("name", ""),
                event.get("reason", ""), (event.get("message") or "").strip()))
    return "\n".join(lines)
