"""The run lock's decisions (module_utils/run_lock.py) against an in-memory
store that behaves like the API server: 409 on a second create and on a
replace or delete with a stale resourceVersion."""

import copy
import datetime
import threading

import pytest

from ansible_collections.neurallog.platform.plugins.module_utils.run_lock import (
    LockConflict, LockRefused, acquire, check, format_time, lease_state, release)

T0 = datetime.datetime(2026, 11, 27, 16, 0, 0, tzinfo=datetime.timezone.utc)


class MemoryStore:
    def __init__(self):
        self.objects = {}
        self.version = 0
        self.lock = threading.Lock()
        self.writes = 0

    def get(self, name, namespace):
        with self.lock:
            obj = self.objects.get((namespace, name))
            return copy.deepcopy(obj)

    def _stamp(self, body):
        self.version += 1
        self.writes += 1
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(self.version)
        return body

    def create(self, body):
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        with self.lock:
            if key in self.objects:
                raise LockConflict("exists")
            self.objects[key] = self._stamp(body)
            return copy.deepcopy(self.objects[key])

    def replace(self, body):
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        with self.lock:
            live = self.objects.get(key)
            if live is None or live["metadata"]["resourceVersion"] != body["metadata"].get("resourceVersion"):
                raise LockConflict("stale")
            self.objects[key] = self._stamp(body)
            return copy.deepcopy(self.objects[key])

    def delete(self, name, namespace, resource_version):
        with self.lock:
            live = self.objects.get((namespace, name))
            if live is None:
                return
            if live["metadata"]["resourceVersion"] != resource_version:
                raise LockConflict("stale")
            del self.objects[(namespace, name)]


def clock(moment):
    return lambda: moment


def test_first_run_creates_the_lease_with_holder_duration_and_renew_time():
    store = MemoryStore()
    out = acquire(store, "neurallog-lock", "ns", "alice@a pid 1 site.yml", 600, clock(T0))
    assert out["action"] == "created"
    spec = store.get("neurallog-lock", "ns")["spec"]
    assert spec["holderIdentity"] == "alice@a pid 1 site.yml"
    assert spec["leaseDurationSeconds"] == 600
    assert spec["renewTime"] == format_time(T0)


def test_a_second_holder_is_refused_naming_the_holder_and_nothing_is_written():
    store = MemoryStore()
    acquire(store, "l", "ns", "alice@a pid 1 site.yml", 600, clock(T0))
    before = store.get("l", "ns")
    with pytest.raises(LockRefused) as info:
        acquire(store, "l", "ns", "bob@b pid 2 tenants.yml", 600, clock(T0 + datetime.timedelta(seconds=10)))
    assert "alice@a pid 1 site.yml" in str(info.value)
    assert "neurallog_lock_break=true" in str(info.value)
    assert info.value.holder == "alice@a pid 1 site.yml"
    assert store.get("l", "ns") == before


def test_the_holder_renews_its_own_lock():
    store = MemoryStore()
    acquire(store, "l", "ns", "alice", 600, clock(T0))
    later = T0 + datetime.timedelta(seconds=500)
    out = acquire(store, "l", "ns", "alice", 600, clock(later))
    assert out["action"] == "renewed"
    spec = store.get("l", "ns")["spec"]
    assert spec["renewTime"] == format_time(later)
    assert spec["acquireTime"] == format_time(T0)
    # renewed: still valid 599 s after the first expiry would have been
    assert not lease_state(store.get("l", "ns"), T0 + datetime.timedelta(seconds=1099))[2]


def test_an_expired_lock_is_taken_over_with_a_warning():
    store = MemoryStore()
    acquire(store, "l", "ns", "killed-run", 60, clock(T0))
    out = acquire(store, "l", "ns", "new-run", 600, clock(T0 + datetime.timedelta(seconds=61)))
    assert out["action"] == "took_over"
    assert out["previous_holder"] == "killed-run"
    assert "killed-run" in out["warnings"][0] and "expired" in out["warnings"][0]
    spec = store.get("l", "ns")["spec"]
    assert spec["holderIdentity"] == "new-run"
    assert spec["leaseTransitions"] == 1


def test_a_live_lock_is_broken_only_when_asked():
    store = MemoryStore()
    acquire(store, "l", "ns", "stuck", 600, clock(T0))
    with pytest.raises(LockRefused):
        acquire(store, "l", "ns", "me", 600, clock(T0))
    out = acquire(store, "l", "ns", "me", 600, clock(T0), break_lock=True)
    assert out["action"] == "broke" and "stuck" in out["warnings"][0]
    assert store.get("l", "ns")["spec"]["holderIdentity"] == "me"


def test_of_many_simultaneous_runs_exactly_one_wins():
    store = MemoryStore()
    barrier = threading.Barrier(8)
    outcomes = []

    def run(index):
        barrier.wait()
        try:
            acquire(store, "l", "ns", "run-%d" % index, 600, clock(T0))
            outcomes.append("won")
        except LockRefused:
            outcomes.append("refused")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["won"]


def test_a_lost_race_on_takeover_rereads_and_refuses():
    """Two runs both see an expired Lease; the second replace carries a stale
    resourceVersion, is refused by the store, and the re-read names the winner."""
    store = MemoryStore()
    acquire(store, "l", "ns", "killed", 60, clock(T0))
    later = clock(T0 + datetime.timedelta(seconds=120))
    real_get = store.get
    seen = []

    def get_then_race(name, namespace):
        obj = real_get(name, namespace)
        if not seen:
            seen.append(1)
            acquire(store, "l", "ns", "winner", 600, later)  # wins between our read and write
        return obj

    store.get = get_then_race
    with pytest.raises(LockRefused) as info:
        acquire(store, "l", "ns", "loser", 600, later)
    assert "winner" in str(info.value)


def test_release_deletes_only_our_own_lease():
    store = MemoryStore()
    acquire(store, "l", "ns", "alice", 600, clock(T0))
    assert release(store, "l", "ns", "bob")["action"] == "not_held"
    assert store.get("l", "ns") is not None
    assert release(store, "l", "ns", "alice")["action"] == "released"
    assert store.get("l", "ns") is None
    assert release(store, "l", "ns", "alice")["action"] == "absent"


def test_check_mode_reads_only():
    store = MemoryStore()
    assert check(store, "l", "ns", "me", clock(T0))["action"] == "free"
    acquire(store, "l", "ns", "other", 600, clock(T0))
    writes = store.writes
    with pytest.raises(LockRefused):
        check(store, "l", "ns", "me", clock(T0))
    assert check(store, "l", "ns", "me", clock(T0 + datetime.timedelta(seconds=601)))["action"] == "free"
    assert store.writes == writes


def test_a_lease_without_holder_or_time_counts_as_expired():
    assert lease_state({"spec": {}}, T0)[2]
    assert lease_state({"spec": {"holderIdentity": "x"}}, T0)[2]
    assert not lease_state({"spec": {"holderIdentity": "x", "renewTime": "2026-11-27T16:00:00.000000Z",
                                     "leaseDurationSeconds": 10}}, T0)[2]
