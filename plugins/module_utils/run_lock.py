# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run lock: a coordination.k8s.io/v1 Lease that one playbook run holds
while it writes to the cluster.

Every write is optimistic: a Lease is created only if absent (the API server
answers 409 to the second creator) and replaced only with the
resourceVersion that was read (409 when someone wrote in between), so two
runs started at the same moment cannot both win. The store is passed in
(an object with get/create/replace/delete, see LeaseStore), so the decisions
here are tested without a cluster.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

LEASE_API_VERSION = "coordination.k8s.io/v1"
# How often a lost race is retried before giving up (each retry re-reads).
MAX_ATTEMPTS = 5


class LockConflict(Exception):
    """The store refused a write: the Lease exists already, or its
    resourceVersion changed since it was read (HTTP 409)."""


class LockRefused(Exception):
    """Another live run holds the lock."""

    def __init__(self, message, holder):
        super(LockRefused, self).__init__(message)
        self.holder = holder


class LeaseStore(object):  # pragma: no cover - interface only
    """What the lock needs from the cluster; every method works on dicts."""

    def get(self, name, namespace):
        """The Lease, or None."""
        raise NotImplementedError

    def create(self, body):
        """Create; raise LockConflict if it exists."""
        raise NotImplementedError

    def replace(self, body):
        """Replace (body carries metadata.resourceVersion); raise LockConflict on a stale version."""
        raise NotImplementedError

    def delete(self, name, namespace, resource_version):
        """Delete if still at resource_version; raise LockConflict otherwise. Absent is fine."""
        raise NotImplementedError


def format_time(moment):
    """A MicroTime as the API server writes it."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text):
    """A MicroTime or RFC 3339 time (None when absent or unreadable)."""
    if not text:
        return None
    if isinstance(text, datetime.datetime):
        return text if text.tzinfo else text.replace(tzinfo=datetime.timezone.utc)
    value = str(text).replace("Z", "+00:00")
    for pattern in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.datetime.strptime(value, pattern)
        except ValueError:
            continue
    return None


def lease_state(lease, now):
    """(holder, expires_at, expired) of a Lease; a Lease without a holder or
    a renewal time counts as expired."""
    spec = (lease or {}).get("spec") or {}
    holder = spec.get("holderIdentity") or ""
    renewed = parse_time(spec.get("renewTime") or spec.get("acquireTime"))
    duration = int(spec.get("leaseDurationSeconds") or 0)
    if not holder or renewed is None:
        return holder, None, True
    expires = renewed + datetime.timedelta(seconds=duration)
    return holder, expires, expires <= now


def lease_body(name, namespace, holder, duration, now, labels=None, previous=None):
    """The Lease this holder writes: a new one, or `previous` taken over or
    renewed (its resourceVersion kept for the optimistic replace)."""
    previous = previous or {}
    old_spec = previous.get("spec") or {}
    same_holder = old_spec.get("holderIdentity") == holder
    metadata = {"name": name, "namespace": namespace, "labels": dict(labels or {})}
    if previous.get("metadata", {}).get("resourceVersion"):
        metadata["resourceVersion"] = previous["metadata"]["resourceVersion"]
    transitions = int(old_spec.get("leaseTransitions") or 0)
    return {
        "apiVersion": LEASE_API_VERSION,
        "kind": "Lease",
        "metadata": metadata,
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": int(duration),
            "acquireTime": old_spec.get("acquireTime") if (same_holder and old_spec.get("acquireTime")) else format_time(now),
            "renewTime": format_time(now),
            "leaseTransitions": transitions if (same_holder or not previous) else transitions + 1,
        },
    }


def refusal_message(name, namespace, holder, expires, now, break_setting="neurallog_lock_break"):
    """Why a run is refused, naming the holder and how to proceed."""
    left = int((expires - now).total_seconds()) if expires else 0
    return (
        "Another NeuralLog run holds the lock (Lease %s/%s): holder '%s', expires at %s (in %ss) unless "
        "renewed. Two runs at once can write different passwords into a first install. Wait for that run "
        "to finish; if it was killed, the lock expires by itself, or break it now with -e %s=true "
        "(only when you are sure that run is gone)."
        % (namespace, name, holder, format_time(expires) if expires else "?", max(left, 0), break_setting))


def acquire(store, name, namespace, holder, duration, now_fn, labels=None, break_lock=False):
    """Take or renew the lock for `holder`.

    Returns a dict: action (created, renewed, took_over, broke), holder,
    previous_holder, lease (as written) and warnings. Raises LockRefused
    when another live holder has it (or keeps winning the race).
    """
    for _attempt in range(MAX_ATTEMPTS):
        now = now_fn()
        current = store.get(name, namespace)
        if current is None:
            body = lease_body(name, namespace, holder, duration, now, labels)
            try:
                written = store.create(body)
            except LockConflict:
                continue  # another run created it first: read it and decide again
            return {"action": "created", "holder": holder, "previous_holder": "", "lease": written or body,
                    "warnings": []}
        current_holder, expires, expired = lease_state(current, now)
        warnings = []
        if current_holder == holder:
            action = "renewed"
        elif expired:
            action = "took_over"
            warnings.append(
                "The run lock (Lease %s/%s) held by '%s' expired at %s without being released (a killed or "
                "failed run?); taking it over." % (namespace, name, current_holder or "nobody",
                                                   format_time(expires) if expires else "?"))
        elif break_lock:
            action = "broke"
            warnings.append(
                "Breaking the run lock (Lease %s/%s) held by '%s' (still valid until %s) as asked by "
                "neurallog_lock_break." % (namespace, name, current_holder, format_time(expires)))
        else:
            raise LockRefused(refusal_message(name, namespace, current_holder, expires, now), current_holder)
        body = lease_body(name, namespace, holder, duration, now, labels, previous=current)
        try:
            written = store.replace(body)
        except LockConflict:
            continue  # written in between: read it again
        return {"action": action, "holder": holder, "previous_holder": current_holder if action != "renewed" else "",
                "lease": written or body, "warnings": warnings}
    current = store.get(name, namespace)
    current_holder, expires, _expired = lease_state(current, now_fn())
    raise LockRefused(refusal_message(name, namespace, current_holder, expires, now_fn()), current_holder)


def check(store, name, namespace, holder, now_fn):
    """Read-only (check mode): raise LockRefused if another live holder has
    the lock, else return its state."""
    now = now_fn()
    current = store.get(name, namespace)
    if current is None:
        return {"action": "free", "holder": "", "previous_holder": "", "lease": None, "warnings": []}
    current_holder, expires, expired = lease_state(current, now)
    if current_holder != holder and not expired:
        raise LockRefused(refusal_message(name, namespace, current_holder, expires, now), current_holder)
    return {"action": "free" if current_holder != holder else "held", "holder": current_holder,
            "previous_holder": "", "lease": current, "warnings": []}


def release(store, name, namespace, holder):
    """Delete the Lease if `holder` still holds it. Returns the action:
    released, absent, or not_held (someone else has it: left alone)."""
    for _attempt in range(MAX_ATTEMPTS):
        current = store.get(name, namespace)
        if current is None:
            return {"action": "absent", "holder": ""}
        current_holder = ((current.get("spec") or {}).get("holderIdentity")) or ""
        if current_holder != holder:
            return {"action": "not_held", "holder": current_holder}
        try:
            store.delete(name, namespace, current["metadata"].get("resourceVersion"))
        except LockConflict:
            continue
        return {"action": "released", "holder": holder}
    return {"action": "not_held", "holder": holder}
