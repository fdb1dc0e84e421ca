"""The shard's render state, write queue, ownership and garbage collection (in-process store)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from panopticon.config.model import TargetRef
from panopticon.errors import StoreError
from panopticon.kube.discovery import ResourceRef
from panopticon.kube.events import Event
from panopticon.render.program import NAME_PREFIX_ANNOTATION, Program, compile_config
from panopticon.sharding.buckets import BucketSpace, ShardFilter
from panopticon.sharding.ring import Ring
from panopticon.store.batch import Batch, Op
from panopticon.store.contract import read_family
from panopticon.store.layout import Layout, token
from panopticon.store.memory import MemoryStore
from shard.table import KindTable
from shard.targets import Target
from shard.telemetry import ShardMetrics
from shard.writer import Ownership, WriteQueue, collect_garbage
from tests.support import aio

LAYOUT = Layout(prefix="t", buckets=64, slots=8)

CONFIG: dict[str, Any] = {
    "apiVersion": "metrics.appscode.com/v1alpha1",
    "kind": "MetricsConfiguration",
    "metadata": {"name": "c"},
    "spec": {
        "targetRef": {"apiVersion": "v1", "kind": "Pod"},
        "metrics": [
            {"name": "info", "help": "h", "type": "gauge", "metricValue": {"value": 1}},
            {"name": "phase", "help": "h", "type": "gauge",
             "field": {"path": ".status.phase", "type": "String"},
             "labels": [{"key": "phase", "valuePath": ".status.phase"}], "metricValue": {"value": 1}},
        ],
    },
}  # fmt: skip


def program(config: dict[str, Any] = CONFIG) -> Program:
    p = compile_config(config).program
    assert p is not None
    return p


def pod(uid: str, phase: str | None = "Running", resource_version: str = "1") -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"p-{uid[:4]}",
            "namespace": "ns",
            "uid": uid,
            "resourceVersion": resource_version,
        },
    }
    if phase:
        obj["status"] = {"phase": phase}
    return obj


def families(ops: Sequence[Op]) -> list[tuple[str, bool]]:
    return sorted((op.family, op.value is not None) for op in ops)


def test_a_new_object_writes_every_family_and_an_unchanged_one_writes_nothing() -> None:
    table = KindTable([program()], LAYOUT.space)
    first = table.apply("ADDED", pod("u1"), "u1")
    assert families(first.ops) == [("kube_pod_info", True), ("kube_pod_phase", True)]
    assert table.apply("MODIFIED", pod("u1", resource_version="2"), "u1").ops == []


def test_a_change_rewrites_the_object_and_deletes_families_that_disappeared() -> None:
    table = KindTable([program()], LAYOUT.space)
    table.apply("ADDED", pod("u1"), "u1")
    changed = table.apply("MODIFIED", pod("u1", phase="Failed"), "u1")
    assert families(changed.ops) == [("kube_pod_info", True), ("kube_pod_phase", True)]
    assert b'phase="Failed"' in next(
        op.value for op in changed.ops if op.family == "kube_pod_phase" and op.value
    )
    gone = table.apply("MODIFIED", pod("u1", phase=None), "u1")
    assert families(gone.ops) == [("kube_pod_info", True), ("kube_pod_phase", False)]


def test_a_delete_removes_every_family_the_object_had() -> None:
    table = KindTable([program()], LAYOUT.space)
    table.apply("ADDED", pod("u1"), "u1")
    deleted = table.apply("DELETED", pod("u1"), "u1")
    assert families(deleted.ops) == [("kube_pod_info", False), ("kube_pod_phase", False)]
    assert len(table) == 0
    assert table.apply("DELETED", pod("u1"), "u1").ops == []


def test_ops_carry_the_objects_bucket_and_forget_drops_state_silently() -> None:
    space = BucketSpace(64)
    table = KindTable([program()], space)
    uids = [f"uid-{i}" for i in range(50)]
    for uid in uids:
        for op in table.apply("ADDED", pod(uid), uid).ops:
            assert op.bucket == space.bucket(uid)
    lost = {space.bucket(u) for u in uids[:10]}
    dropped = table.forget(lost)
    assert dropped == sum(1 for u in uids if space.bucket(u) in lost)
    assert all((u in table) == (space.bucket(u) not in lost) for u in uids)


def test_invalidate_makes_the_next_render_rewrite_everything() -> None:
    table = KindTable([program()], LAYOUT.space)
    table.apply("ADDED", pod("u1"), "u1")
    table.invalidate()
    assert len(table.apply("MODIFIED", pod("u1"), "u1").ops) == 2


def test_new_programs_rewrite_changed_families_and_delete_removed_ones() -> None:
    table = KindTable([program()], LAYOUT.space)
    table.apply("ADDED", pod("u1"), "u1")
    smaller = copy.deepcopy(CONFIG)
    smaller["spec"]["metrics"] = smaller["spec"]["metrics"][:1]
    table.set_programs([program(smaller)])
    replay = table.apply("MODIFIED", pod("u1"), "u1")
    assert families(replay.ops) == [("kube_pod_info", True), ("kube_pod_phase", False)]
    assert families(table.clear_ops()) == [("kube_pod_info", False)]


def test_two_configs_of_one_kind_write_and_delete_each_others_families_independently() -> None:
    other = copy.deepcopy(CONFIG)
    other["metadata"]["name"] = "c2"
    other["metadata"]["annotations"] = {NAME_PREFIX_ANNOTATION: "extra"}
    table = KindTable([program(), program(other)], LAYOUT.space)
    first = table.apply("ADDED", pod("u1"), "u1")
    assert families(first.ops) == [
        ("extra_info", True), ("extra_phase", True), ("kube_pod_info", True), ("kube_pod_phase", True)
    ]  # fmt: skip
    gone = table.apply("MODIFIED", pod("u1", phase=None), "u1")
    assert families(gone.ops) == [
        ("extra_info", True), ("extra_phase", False), ("kube_pod_info", True), ("kube_pod_phase", False)
    ]  # fmt: skip
    assert table.apply("MODIFIED", pod("u1", phase=None, resource_version="3"), "u1").ops == []


def test_lone_surrogates_in_a_label_are_written_as_replacement_characters() -> None:
    table = KindTable([program()], LAYOUT.space)
    ops = table.apply("ADDED", pod("u1", phase="Run\ud800ning"), "u1").ops
    phase = next(op.value for op in ops if op.family == "kube_pod_phase")
    assert phase is not None and 'phase="Run\ufffdning"'.encode() in phase


def test_family_masks_stay_right_past_the_remembered_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shard.table.MAX_MASKS", 2)
    wide = copy.deepcopy(CONFIG)
    wide["spec"]["metrics"] = [
        {"name": f"m{i}", "help": "h", "type": "gauge",
         "field": {"path": f".status.m{i}", "type": "String"}, "metricValue": {"value": 1}}
        for i in range(4)
    ]  # fmt: skip
    table = KindTable([program(wide)], LAYOUT.space)

    def with_fields(present: list[int], rv: str) -> dict[str, Any]:
        obj = pod("u1", phase=None, resource_version=rv)
        obj["status"] = {f"m{i}": "x" for i in present}
        return obj

    table.apply("ADDED", with_fields([0, 1, 2, 3], "1"), "u1")
    before = {f"kube_pod_m{i}" for i in range(4)}
    for step, present in enumerate([[0], [1, 2], [3], [0, 1, 2, 3], [2]]):
        expected = {f"kube_pod_m{i}" for i in present}
        ops = table.apply("MODIFIED", with_fields(present, str(step + 2)), "u1").ops
        assert {op.family for op in ops if op.value is None} == before - expected
        assert {op.family for op in ops if op.value is not None} == expected
        before = expected
    assert len(table._masks) <= 2


def test_the_queue_coalesces_and_flushes_through_the_fence() -> None:
    async def body() -> None:
        store = MemoryStore(LAYOUT)
        ownership = Ownership(store, 0)
        await ownership.adopt(Ring(1, 1, LAYOUT.space))
        queue = WriteQueue(store)
        queue.add([Op("f", 3, "a", b"f 1\n")])
        queue.add([Op("f", 3, "a", b"f 2\n"), Op("f", 40, "b", b"f 3\n")])
        assert len(queue) == 2
        result = await queue.flush(ownership.token)
        assert result.written == 2 and not result.refused and len(queue) == 0
        data = b"".join([c async for c in read_family(store, "f")])
        assert sorted(data.splitlines()) == [b"f 2", b"f 3"]

    aio.run(body())


class FlakyStore(MemoryStore):
    def __init__(self, layout: Layout) -> None:
        super().__init__(layout)
        self.fail = 1

    async def write_batch(self, slot: int, owner: str, batch: Batch) -> list[int]:
        if self.fail:
            self.fail -= 1
            raise StoreError("redis write: connection reset")
        return await super().write_batch(slot, owner, batch)


def test_a_failed_batch_stays_queued_and_newer_ops_win_on_retry() -> None:
    async def body() -> None:
        store = FlakyStore(LAYOUT)
        await store.claim(0, 0, 1, [1])
        queue = WriteQueue(store)
        queue.add([Op("f", 1, "a", b"f 1\n")])
        failed = await queue.flush(token(0, 1))
        assert failed.failed_slots == 1 and len(queue) == 1
        queue.add([Op("f", 1, "a", b"f 9\n")])
        ok = await queue.flush(token(0, 1))
        assert ok.failed_slots == 0
        assert b"".join([c async for c in read_family(store, "f")]) == b"f 9\n"

    aio.run(body())


def test_ownership_claims_what_the_ring_gives_and_reports_gains_and_losses() -> None:
    async def body() -> None:
        store = MemoryStore(LAYOUT)
        a, b = Ownership(store, 0), Ownership(store, 1)
        ring1 = Ring(1, 1, LAYOUT.space)
        gained, lost = await a.adopt(ring1)
        assert gained == frozenset(range(64)) and not lost
        ring2 = Ring(2, 2, LAYOUT.space)
        gained_b, _ = await b.adopt(ring2)
        assert gained_b == ring2.buckets_of(1)
        # Shard 0 lags: its old-generation writes to moved buckets are refused.
        moved = next(iter(gained_b))
        refused = await store.write(LAYOUT.slot_of(moved), a.token, [Op("f", moved, "x", b"f 1\n")])
        assert refused == [moved]
        _, lost = await a.adopt(ring2)
        assert lost == ring2.buckets_of(1)

    aio.run(body())


def test_garbage_collection_removes_only_dead_objects_of_owned_buckets() -> None:
    async def body() -> None:
        store = MemoryStore(LAYOUT)
        space = LAYOUT.space
        ring = Ring(2, 1, space)
        mine = ring.buckets_of(0)
        await store.claim(0, 0, 1, [])  # no-op claim keeps the API exercised
        owner0, owner1 = Ownership(store, 0), Ownership(store, 1)
        await owner0.adopt(ring)
        await owner1.adopt(ring)
        uids = [f"uid-{i}" for i in range(40)]
        for uid in uids:
            bucket = space.bucket(uid)
            who = owner0 if bucket in mine else owner1
            await store.write(LAYOUT.slot_of(bucket), who.token, [Op("f", bucket, uid, b"f 1\n")])
        live = {u for u in uids[::2]}
        deleted = await collect_garbage(store, owner0.token, owner0.owned, ["f"], lambda _: live.__contains__)
        remaining = {uid for slot in range(LAYOUT.slots) for uid in await store.fields(slot, "f")}
        for uid in uids:
            dead_and_mine = uid not in live and space.bucket(uid) in mine
            assert (uid in remaining) != dead_and_mine
        assert deleted == sum(1 for u in uids if u not in live and space.bucket(u) in mine)

    aio.run(body())


def test_garbage_collection_removes_a_family_a_live_object_no_longer_renders() -> None:
    """The object lives on, but its `phase` lines went away while nobody watched (and
    a family of a deleted config was left behind): only those fields are collected."""

    async def body() -> None:
        store = MemoryStore(LAYOUT)
        owner = Ownership(store, 0)
        await owner.adopt(Ring(1, 1, LAYOUT.space))
        uid = "uid-live"
        bucket = LAYOUT.space.bucket(uid)
        slot = LAYOUT.slot_of(bucket)
        stale = [
            Op(f, bucket, uid, f"{f} 1\n".encode())
            for f in ("kube_pod_info", "kube_pod_phase", "kube_pod_retired")
        ]
        await store.write(slot, owner.token, stale)
        table = KindTable([program()], LAYOUT.space)
        table.apply("ADDED", pod(uid, phase=None), uid)  # renders `info` only
        families = ["kube_pod_info", "kube_pod_phase", "kube_pod_retired"]
        assert [table.has(uid, f) for f in families] == [True, False, False]
        never = lambda uid: False  # noqa: E731
        deleted = await collect_garbage(
            store, owner.token, owner.owned, families, lambda f: table.holders(f) or never
        )
        assert deleted == 2
        left = [list(await store.fields(slot, f)) for f in families]
        assert left == [[uid], [], []]

    aio.run(body())


@pytest.mark.parametrize("count", [1, 3])
def test_one_shard_owns_everything_and_shards_partition_the_buckets(count: int) -> None:
    ring = Ring(count, 1, LAYOUT.space)
    owned = [ring.buckets_of(i) for i in range(count)]
    assert sorted(b for o in owned for b in o) == list(range(LAYOUT.buckets))


class ListedSource:
    """A reflector stand-in: lists its objects once, then SYNCED; a changed filter syncs again."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = objects
        self.filters: list[ShardFilter | None] = []
        self._wake = asyncio.Event()
        self._wake.set()

    async def events(self) -> AsyncIterator[Event]:
        while True:
            await self._wake.wait()
            self._wake.clear()
            for obj in self.objects:
                yield Event("ADDED", obj, obj["metadata"]["uid"], "1")
            yield Event("SYNCED", None, "", "1")

    def set_filter(self, shard_filter: ShardFilter | None) -> None:
        self.filters.append(shard_filter)
        self._wake.set()


def test_a_ring_change_that_moves_nothing_here_keeps_the_target_synced() -> None:
    async def body() -> None:
        store = MemoryStore(LAYOUT)
        queue = WriteQueue(store)
        source = ListedSource([pod("aaaa-1"), pod("bbbb-2")])
        target = Target(
            TargetRef("v1", "Pod"),
            ResourceRef("", "v1", "pods", "Pod", True),
            [program()],
            queue=queue,
            metrics=ShardMetrics(),
            make_source=lambda resource, shard_filter, view: source,
            owns=lambda bucket: True,
        )
        everything = ShardFilter(LAYOUT.space, frozenset(range(LAYOUT.buckets)))
        target.start(everything)
        await asyncio.wait_for(target.synced.wait(), 5)
        assert len(target.table) == 2
        # Same buckets at a newer generation: the reflector has nothing to re-sync.
        target.set_filter(ShardFilter(LAYOUT.space, frozenset(range(LAYOUT.buckets))), frozenset())
        assert target.synced.is_set() and source.filters == []
        # A real change clears it until the source has synced again.
        half = ShardFilter(LAYOUT.space, frozenset(range(LAYOUT.buckets // 2)))
        target.set_filter(half, frozenset(range(LAYOUT.buckets // 2, LAYOUT.buckets)))
        assert not target.synced.is_set() and source.filters == [half]
        await asyncio.wait_for(target.synced.wait(), 5)
        await target.wait_stopped()

    aio.run(body())


def test_the_queue_bound_check_agrees_with_its_length() -> None:
    async def body() -> None:
        store = FlakyStore(LAYOUT)
        store.fail = 0
        queue = WriteQueue(store)
        assert not queue.exceeds(0)
        queue.add([Op("f", 3, "a", b"f 1\n"), Op("f", 3, "b", b"f 1\n")])
        queue.add_object(40, "c", [("f", b"f 1\n"), ("g", b"g 1\n")], ["h"], at=0.0)
        assert len(queue) == 5 and queue.exceeds(4) and not queue.exceeds(5)
        # Coalesced operations count once: the check still agrees with len().
        for _ in range(10):
            queue.add([Op("f", 3, "a", b"f 2\n")])
        assert len(queue) == 5 and not queue.exceeds(5)
        store.fail = 10
        await queue.flush(token(0, 1))  # fails: everything is queued again
        assert len(queue) == 5 and queue.exceeds(4) and not queue.exceeds(5)
        store.fail = 0
        await queue.flush(token(0, 1))
        assert len(queue) == 0 and not queue.exceeds(0)

    aio.run(body())


def test_render_errors_are_counted_by_config_and_family_for_every_event() -> None:
    bad = copy.deepcopy(CONFIG)
    bad["metadata"]["name"] = "bad"
    bad["spec"]["metrics"] = [
        {"name": "n", "help": "h", "type": "gauge", "metricValue": {"valueFromPath": ".metadata.name"}}
    ]

    async def body() -> None:
        metrics = ShardMetrics()
        source = ListedSource([pod("aaaa-1"), pod("bbbb-2"), pod("cccc-3")])
        target = Target(
            TargetRef("v1", "Pod"),
            ResourceRef("", "v1", "pods", "Pod", True),
            [program(), program(bad)],
            queue=WriteQueue(MemoryStore(LAYOUT)),
            metrics=metrics,
            make_source=lambda resource, shard_filter, view: source,
            owns=lambda bucket: True,
        )
        target.start(ShardFilter(LAYOUT.space, frozenset(range(LAYOUT.buckets))))
        await asyncio.wait_for(target.synced.wait(), 5)
        await target.wait_stopped()
        errors = metrics.registry.get_sample_value(
            "panopticon_shard_render_errors_total", {"config": "bad", "family": "kube_pod_n"}
        )
        assert errors == 3
        assert len(target.table) == 3  # the good config's families still render

    aio.run(body())


def test_render_error_series_of_families_no_longer_defined_are_removed() -> None:
    """A failing family renamed at every edit used to leave one more series behind each
    time (a prometheus_client child per label set, kept for good)."""

    def failing(name: str) -> Program:
        bad = copy.deepcopy(CONFIG)
        bad["metadata"]["name"] = "bad"
        bad["spec"]["metrics"] = [
            {"name": name, "help": "h", "type": "gauge", "metricValue": {"valueFromPath": ".metadata.name"}}
        ]
        return program(bad)

    def error_series(metrics: ShardMetrics) -> list[dict[str, str]]:
        return [
            sample.labels
            for family in metrics.registry.collect()
            for sample in family.samples
            if sample.name == "panopticon_shard_render_errors_total"
        ]

    async def body() -> None:
        metrics = ShardMetrics()
        source = ListedSource([pod("aaaa-1")])
        target = Target(
            TargetRef("v1", "Pod"),
            ResourceRef("", "v1", "pods", "Pod", True),
            [failing("n0")],
            queue=WriteQueue(MemoryStore(LAYOUT)),
            metrics=metrics,
            make_source=lambda resource, shard_filter, view: source,
            owns=lambda bucket: True,
        )
        everything = ShardFilter(LAYOUT.space, frozenset(range(LAYOUT.buckets)))
        target.start(everything)
        await asyncio.wait_for(target.synced.wait(), 5)
        for edit in range(1, 10):
            source._wake.set()
            target.set_programs([failing(f"n{edit}")], everything)
            await asyncio.wait_for(target.synced.wait(), 5)
        assert error_series(metrics) == [{"config": "bad", "family": "kube_pod_n9"}]
        target.remove_all()
        assert error_series(metrics) == []
        await target.wait_stopped()

    aio.run(body())
