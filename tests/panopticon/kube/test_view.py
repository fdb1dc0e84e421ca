"""The reflector's view: what each change becomes for the consumer, and its memory."""

from __future__ import annotations

import gc
import tracemalloc
import uuid
from typing import Any

from panopticon.kube.events import Event
from panopticon.kube.view import Seen, View
from panopticon.sharding.buckets import BucketSpace, ShardFilter
from tests.panopticon.kube.helpers import PODS


def pod(uid: str, rv: str, name: str = "p", namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"uid": uid, "resourceVersion": rv, "name": name, "namespace": namespace}}


def test_watch_changes_become_added_modified_deleted_and_repeats_vanish() -> None:
    view = View(PODS)
    a = pod("a", "10")
    assert view.apply("MODIFIED", a, "a", "10") == Event("ADDED", a, "a", "10")
    assert view.apply("MODIFIED", a, "a", "10") is None
    b = pod("a", "11")
    assert view.apply("ADDED", b, "a", "11") == Event("MODIFIED", b, "a", "11")
    assert view.apply("DELETED", b, "a", "12") == Event("DELETED", b, "a", "12")
    assert view.apply("DELETED", b, "a", "12") is None
    assert len(view) == 0


def test_a_sync_reports_what_vanished_with_its_last_identity() -> None:
    view = View(PODS, track_names=True)
    for uid in ("a", "b", "c"):
        view.apply("ADDED", pod(uid, "1", name=f"n-{uid}"), uid, "1")
    seen = Seen()
    assert view.listed(pod("a", "1"), "a", "1", seen) is None
    assert view.listed(pod("c", "2"), "c", "2", seen) is not None
    (gone,) = view.vanished(seen)
    assert gone == Event(
        "DELETED",
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"uid": "b", "name": "n-b", "namespace": "ns"}},
        "b",
        "1",
        True,
    )
    assert view.snapshot() == {"a": "1", "c": "2"}


def test_retain_drops_silently() -> None:
    view = View(PODS)
    for uid in ("a", "b", "c"):
        view.apply("ADDED", pod(uid, "1"), uid, "1")
    everything = ShardFilter(BucketSpace(4), frozenset(range(4)))  # View asks `keep`, not the filter
    assert view.retain(everything, lambda u: u != "b") == 1 and sorted(view.uids()) == ["a", "c"]


def bytes_per_object(track_names: bool, count: int = 20_000) -> float:
    objs = [
        pod(str(uuid.uuid4()), str(987_654_321 + i), f"web-{i:06d}-5d9c7b", f"ns-{i % 7}")
        for i in range(count)
    ]
    view = View(PODS, track_names=track_names)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for o in objs:
            m = o["metadata"]
            view.apply("ADDED", o, m["uid"], m["resourceVersion"])
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    return sum(s.size_diff for s in after.compare_to(before, "filename")) / count


def test_the_view_keeps_about_a_hundred_bytes_per_object() -> None:
    # uid -> int RV; the uid string is the one the consumer keeps from the event.
    assert bytes_per_object(track_names=False) < 110
    assert bytes_per_object(track_names=True) < 220


def test_a_sync_of_many_objects_adds_nothing_for_a_full_collection_to_walk() -> None:
    """What a sync keeps per object (the view's uid -> RV, the uids listed so far) is
    untracked by the cyclic GC: a set of uids added one reference per object to every
    full collection during a sync, holding the embedding operator's loop (docs/library.md)."""
    view = View(PODS)
    objects = [pod(f"uid-{i:05d}", str(1000 + i)) for i in range(20_000)]
    gc.collect()
    before = sum(len(gc.get_referents(o)) for o in gc.get_objects())
    seen = Seen()
    for obj in objects:
        view.listed(obj, obj["metadata"]["uid"], obj["metadata"]["resourceVersion"], seen)
    gc.collect(1)  # young collections only, as between two full ones
    added = sum(len(gc.get_referents(o)) for o in gc.get_objects()) - before
    assert len(seen) == len(view) == 20_000
    assert added < 100, f"the sync added {added} references to the cyclic GC's walk"


def test_a_sync_that_lost_nothing_reports_nothing_and_one_that_lost_one_reports_it() -> None:
    """`vanished` skips its scan when the sync listed as many uids as the view holds:
    right only because every listed uid is in the view, which this checks both ways."""
    view = View(PODS)
    for i in range(1000):
        view.apply("ADDED", pod(f"u{i}", "1"), f"u{i}", "1")
    everything = Seen()
    for i in range(1000):
        view.listed(pod(f"u{i}", "2"), f"u{i}", "2" if i % 2 else "1", everything)
    assert view.vanished(everything) == [] and len(view) == 1000
    new_one_instead = Seen()
    for i in range(1, 1001):  # u0 went away, u1000 is new: as many listed as held before
        view.listed(pod(f"u{i}", "3"), f"u{i}", "3", new_one_instead)
    assert [event.uid for event in view.vanished(new_one_instead)] == ["u0"]
    assert len(view) == 1000 and "u0" not in view and "u1000" in view
