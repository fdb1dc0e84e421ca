"""Burying the series of an object deleted and created again under the same name.

`tests/shard/test_recreated.py` drives real shard processes with the old and the new
uid on different shards; these check the parts: what `Successors` remembers and
forgets, and that one shard owning both uids never has the store hold both, whatever
the order of the slots in its flush.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson

from panopticon.config.model import TargetRef
from panopticon.kube.discovery import ResourceRef
from panopticon.kube.events import Event
from panopticon.sharding.buckets import ShardFilter
from panopticon.store.batch import Batch, Burial, Op
from panopticon.store.memory import MemoryStore
from shard.successors import MAX_NAMES, WINDOW, Successors
from shard.targets import Target
from shard.telemetry import ShardMetrics
from shard.writer import WriteQueue
from tests.shard.test_pipeline import LAYOUT, program
from tests.support import aio


def pod(uid: str, name: str, rv: str = "1") -> dict[str, Any]:
    meta = {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": rv}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "status": {"phase": "Running"}}


def test_a_deleted_uid_is_handed_once_to_the_next_object_of_its_name() -> None:
    s = Successors()
    s.deleted(pod("u1", "a"), "u1", 0.0)
    s.deleted(pod("u2", "a"), "u2", 1.0)  # deleted again before this shard saw a successor
    s.deleted(pod("v1", "b"), "v1", 1.0)
    assert s.predecessors(pod("u3", "other"), "u3", 2.0) == []
    assert s.predecessors(pod("u3", "a"), "u3", 2.0) == ["u1", "u2"]
    assert s.predecessors(pod("u3", "a"), "u3", 3.0) == ["u1", "u2"]  # again, within the window
    other_namespace = pod("w1", "b") | {"metadata": {"name": "b", "namespace": "elsewhere", "uid": "w1"}}
    assert s.predecessors(other_namespace, "w1", 2.0) == []
    assert s.predecessors(pod("w2", "b"), "w2", 2.0 + WINDOW) == []  # too late: forgotten


def test_what_is_remembered_is_bounded_in_time_and_in_names() -> None:
    s = Successors()
    s.deleted(pod("u1", "old"), "u1", 0.0)
    s.deleted(pod("u2", "new"), "u2", WINDOW + 1)
    assert len(s) == 1  # "old" expired when "new" came
    for i in range(MAX_NAMES + 10):
        s.deleted(pod(f"x{i}", f"n{i}"), f"x{i}", WINDOW + 2)
    assert len(s) == MAX_NAMES
    assert s.predecessors(pod("y", "n0"), "y", WINDOW + 2) == []  # the oldest went first
    assert s.predecessors(pod("y", f"n{MAX_NAMES + 9}"), "y", WINDOW + 2) == [f"x{MAX_NAMES + 9}"]


def test_a_skipped_watch_line_is_parsed_for_its_name_and_a_malformed_one_ignored() -> None:
    s = Successors()
    line = orjson.dumps({"type": "DELETED", "object": pod("u1", "a")})
    s.deleted_line(line, 0.0)
    for bad in (b"{", b'{"type":"DELETED"}', b'{"object":{"metadata":{"uid":7,"name":"a"}}}', b"[]"):
        s.deleted_line(bad, 0.0)
    s.deleted_line(orjson.dumps({"object": {"metadata": {"uid": "u9"}}}), 0.0)  # no name
    assert len(s) == 1
    assert s.predecessors(pod("u2", "a"), "u2", 1.0) == ["u1"]


class WatchingStore(MemoryStore):
    """A store that checks, after every call, that the two uids are never both stored."""

    def __init__(self, pair: tuple[str, str]) -> None:
        super().__init__(LAYOUT)
        self.pair = pair
        self.calls: list[str] = []
        self.both_stored = 0

    def _check(self) -> None:
        stored = {uid for fields in self._families.values() for uid in fields}
        self.both_stored += set(self.pair) <= stored

    async def write_batch(self, slot: int, owner: str, batch: Batch) -> list[int]:
        refused = await super().write_batch(slot, owner, batch)
        self.calls.append(f"write {slot}")
        self._check()
        return refused

    async def bury(self, burials: Sequence[Burial]) -> None:
        await super().bury(burials)
        self.calls.append("bury")
        self._check()


class ScriptedSource:
    """A reflector stand-in that delivers the events it is fed."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue()

    async def events(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()
            self.queue.task_done()  # the consumer asks for the next one: this one is handled

    def set_filter(self, shard_filter: ShardFilter | None) -> None:
        return None


def uid_in(slot: int, prefix: str) -> str:
    for i in range(10_000):
        uid = f"{prefix}-{i}"
        if LAYOUT.slot_of(LAYOUT.space.bucket(uid)) == slot:
            return uid
    raise AssertionError("no uid found")


def test_one_shard_owning_both_uids_never_stores_both_whatever_the_slot_order() -> None:
    old, new = uid_in(1, "old"), uid_in(5, "new")
    neighbour = uid_in(5, "neighbour")  # a change in the new uid's slot, queued first

    async def body() -> None:
        store = WatchingStore((old, new))
        queue = WriteQueue(store)
        source = ScriptedSource()
        target = Target(
            TargetRef("v1", "Pod"),
            ResourceRef("", "v1", "pods", "Pod", True),
            [program()],
            queue=queue,
            metrics=ShardMetrics(),
            make_source=lambda resource, shard_filter, view: source,
            owns=lambda bucket: True,
        )
        for bucket in range(LAYOUT.buckets):
            await store.claim(LAYOUT.slot_of(bucket), 0, 1, [bucket])
        target.start(ShardFilter(LAYOUT.space, frozenset(range(LAYOUT.buckets))))
        for uid, name in ((old, "web-0"), (neighbour, "web-1")):
            source.queue.put_nowait(Event("ADDED", pod(uid, name), uid, "1"))
        source.queue.put_nowait(Event("SYNCED", None, "", "1"))
        await asyncio.wait_for(source.queue.join(), 5)
        assert target.synced.is_set()
        await queue.flush("0:1")
        assert store.both_stored == 0
        # One flush's worth of events: the neighbour changes, web-0 is deleted and
        # created again. The new uid's slot is queued before the old one's.
        neighbour_changed = pod(neighbour, "web-1", "2") | {"status": {"phase": "Failed"}}
        source.queue.put_nowait(Event("MODIFIED", neighbour_changed, neighbour, "2"))
        source.queue.put_nowait(Event("DELETED", pod(old, "web-0", "3"), old, "3"))
        source.queue.put_nowait(Event("ADDED", pod(new, "web-0", "4"), new, "4"))
        await asyncio.wait_for(source.queue.join(), 5)
        store.calls.clear()
        await queue.flush("0:1")
        assert store.calls[0] == "bury", store.calls
        assert store.both_stored == 0, store.calls
        stored = {uid for fields in store._families.values() for uid in fields}
        assert new in stored and old not in stored

        # Redis restored from a snapshot taken before the delete: the old uid is back.
        # The rewrite re-renders every object; the new one's name is remembered, so
        # the old uid is buried again before the new one is rewritten.
        bucket = LAYOUT.space.bucket(old)
        await store.write(LAYOUT.slot_of(bucket), "0:1", [Op("kube_pod_info", bucket, old, b"x 1\n")])
        store.both_stored = 0
        target.start(ShardFilter(LAYOUT.space, frozenset(range(LAYOUT.buckets))))
        for uid, obj in ((neighbour, neighbour_changed), (new, pod(new, "web-0", "4"))):
            source.queue.put_nowait(Event("MODIFIED", obj, uid, "5"))
        source.queue.put_nowait(Event("SYNCED", None, "", "5"))
        await asyncio.wait_for(source.queue.join(), 5)
        store.calls.clear()
        await queue.flush("0:1")
        assert store.calls[0] == "bury", store.calls
        stored = {uid for fields in store._families.values() for uid in fields}
        assert new in stored and old not in stored
        await target.wait_stopped()

    aio.run(body())
