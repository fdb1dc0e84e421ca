"""The render table as its reflector's view: one record per owned object serves both.

The shard used to keep a uid -> resourceVersion map in the reflector beside the
table's uid -> state map; the table now holds the resourceVersion too
(`TableView`). These tests pin what that must preserve: a relist skips unchanged
objects, an object leaves only when its DELETED reaches the table, a restart
delivers everything again, and the per-object cost.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from typing import Any

from panopticon.config.model import TargetRef
from panopticon.kube.events import Event
from panopticon.kube.reflector import Reflector
from panopticon.kube.view import ObjectView, Seen
from panopticon.sharding.buckets import ShardFilter
from panopticon.sharding.ring import Ring
from panopticon.store.contract import read_family
from panopticon.store.memory import MemoryStore
from shard.table import KindTable, TableView, version_key
from shard.targets import Target
from shard.telemetry import ShardMetrics
from shard.writer import Ownership, WriteQueue
from tests.panopticon.kube.helpers import (
    CONFIGMAPS,
    FAST,
    NS,
    PODS,
    asynctest,
    configmap,
    sim_client,
    sim_config,
    wait_until,
)
from tests.shard.test_pipeline import CONFIG as PROGRAM_CONFIG
from tests.shard.test_pipeline import LAYOUT, families, pod, program

CONFIGMAP_CONFIG: dict[str, Any] = {
    "apiVersion": "metrics.appscode.com/v1alpha1",
    "kind": "MetricsConfiguration",
    "metadata": {"name": "cm"},
    "spec": {
        "targetRef": {"apiVersion": "v1", "kind": "ConfigMap"},
        "metrics": [
            {"name": "info", "help": "h", "type": "gauge",
             "labels": [{"key": "k", "valuePath": ".data.k"}], "metricValue": {"value": 1}},
        ],
    },
}  # fmt: skip


def table_and_view() -> tuple[KindTable, TableView]:
    table = KindTable([program()], LAYOUT.space, namespaced=True)
    return table, TableView(table, PODS)


def test_version_keys_are_exact_for_etcd_versions_and_never_zero() -> None:
    assert version_key("0") == 1 and version_key("41") == 42
    assert version_key("") == 0
    # Opaque versions are compared, not parsed: "007" is not "7", and text is hashed.
    assert version_key("007") != version_key("7") and version_key("007") != 0
    assert version_key("abc") not in (0, version_key("abd"))
    assert version_key("9" * 30) == version_key("9" * 30) != 0


def test_the_view_answers_from_what_the_table_rendered() -> None:
    table, view = table_and_view()
    a = pod("aaaa-1", resource_version="10")
    assert view.apply("MODIFIED", a, "aaaa-1", "10") == Event("ADDED", a, "aaaa-1", "10")
    # Not recorded until the table renders it (a consumer may drop the event).
    assert view.apply("MODIFIED", a, "aaaa-1", "10") == Event("ADDED", a, "aaaa-1", "10")
    assert table.apply("ADDED", a, "aaaa-1", rv="10").ops
    assert view.apply("MODIFIED", a, "aaaa-1", "10") is None
    b = pod("aaaa-1", resource_version="11")
    assert view.apply("MODIFIED", b, "aaaa-1", "11") == Event("MODIFIED", b, "aaaa-1", "11")
    # Nothing shown changed: no writes, but the new version is recorded.
    assert table.apply("MODIFIED", b, "aaaa-1", rv="11").ops == []
    assert view.apply("MODIFIED", b, "aaaa-1", "11") is None
    assert view.apply("DELETED", b, "zzzz-9", "12") is None


def test_an_object_stays_until_its_deleted_reaches_the_table() -> None:
    table, view = table_and_view()
    table.apply("ADDED", pod("aaaa-1"), "aaaa-1", rv="1")
    gone = view.apply("DELETED", pod("aaaa-1"), "aaaa-1", "2")
    assert gone is not None and gone.type == "DELETED"
    assert "aaaa-1" in table  # the table still knows which families to delete
    deleted = table.apply("DELETED", None, "aaaa-1")
    assert sorted(op.family for op in deleted.ops) == ["kube_pod_info", "kube_pod_phase"]
    assert view.apply("DELETED", pod("aaaa-1"), "aaaa-1", "2") is None


def test_a_sync_reports_unseen_objects_and_retain_drops_silently() -> None:
    table, view = table_and_view()
    for uid in ("aaaa-1", "bbbb-2", "cccc-3"):
        table.apply("ADDED", pod(uid), uid, rv="1")
    seen = Seen()
    assert view.listed(pod("aaaa-1"), "aaaa-1", "1", seen) is None
    assert view.listed(pod("cccc-3", resource_version="2"), "cccc-3", "2", seen) is not None
    (vanished,) = view.vanished(seen)
    assert vanished.type == "DELETED" and vanished.uid == "bbbb-2" and vanished.final_state_unknown
    assert vanished.obj == {"apiVersion": "v1", "kind": "Pod", "metadata": {"uid": "bbbb-2"}}
    # By the bucket each record holds (`keep` is not asked: no uid is hashed again).
    others = frozenset(range(LAYOUT.buckets)) - {LAYOUT.space.bucket("cccc-3")}
    assert view.retain(ShardFilter(LAYOUT.space, others), lambda uid: 1 / 0) == 1
    assert sorted(table.uids()) == ["aaaa-1", "bbbb-2"]


def test_forgotten_versions_deliver_every_object_again_without_rewriting_it() -> None:
    table, view = table_and_view()
    table.apply("ADDED", pod("aaaa-1"), "aaaa-1", rv="5")
    table.forget_versions()
    again = view.apply("ADDED", pod("aaaa-1"), "aaaa-1", "5")
    assert again is not None and again.type == "MODIFIED"
    assert table.apply("MODIFIED", pod("aaaa-1"), "aaaa-1", rv="5").ops == []
    assert view.apply("ADDED", pod("aaaa-1"), "aaaa-1", "5") is None


def test_an_empty_resource_version_never_hides_an_event() -> None:
    # Servers other than the API server may send none; "" must not equal "forgotten".
    table, view = table_and_view()
    table.apply("ADDED", pod("aaaa-1", resource_version=""), "aaaa-1", rv="")
    again = view.apply("MODIFIED", pod("aaaa-1", resource_version=""), "aaaa-1", "")
    assert again is not None and again.type == "MODIFIED"
    table.forget_versions()
    assert view.listed(pod("aaaa-1", resource_version=""), "aaaa-1", "", Seen()) is not None


def test_two_store_losses_before_a_render_still_rewrite_the_object() -> None:
    table, _ = table_and_view()
    table.apply("ADDED", pod("aaaa-1"), "aaaa-1", rv="5")
    table.invalidate()
    table.invalidate()  # a second epoch change before the object was rendered again
    table.forget_versions()
    again = table.apply("MODIFIED", pod("aaaa-1"), "aaaa-1", rv="5")
    assert again.changed and sorted(op.family for op in again.ops) == ["kube_pod_info", "kube_pod_phase"]
    assert table.apply("MODIFIED", pod("aaaa-1"), "aaaa-1", rv="5").ops == []


class ViewSource:
    """A source that asks the view exactly as `Reflector._list_at` does: every start
    lists `objects`, then reports what vanished, then SYNCED."""

    def __init__(self, objects: list[dict[str, Any]], view: ObjectView | None) -> None:
        assert view is not None
        self.objects, self.view = objects, view

    async def events(self) -> AsyncIterator[Event]:
        seen = Seen()
        for obj in self.objects:
            meta = obj["metadata"]
            event = self.view.listed(obj, meta["uid"], meta["resourceVersion"], seen)
            if event is not None:
                yield event
        for event in self.view.vanished(seen):
            yield event
        yield Event("SYNCED", None, "", "9")
        await asyncio.Event().wait()

    def set_filter(self, shard_filter: ShardFilter | None) -> None:
        pass


def test_a_restarted_target_keeps_objects_without_a_resource_version() -> None:
    async def body() -> None:
        store = MemoryStore(LAYOUT)
        ownership = Ownership(store, 0)
        await ownership.adopt(Ring(1, 1, LAYOUT.space))
        queue = WriteQueue(store)
        objects = [pod("aaaa-1", resource_version=""), pod("bbbb-2", resource_version="7")]
        target = Target(
            TargetRef("v1", "Pod"),
            PODS,
            [program()],
            queue=queue,
            metrics=ShardMetrics(),
            make_source=lambda resource, shard_filter, view: ViewSource(objects, view),
            owns=lambda bucket: True,
        )
        everything = ShardFilter(LAYOUT.space, frozenset(range(LAYOUT.buckets)))
        for _ in range(2):  # a start, then a restart (new configs, a lost store, a crash)
            target.start(everything)
            await asyncio.wait_for(target.synced.wait(), 5)
            await queue.flush(ownership.token)
            lines = b"".join([c async for c in read_family(store, "kube_pod_info")])
            assert sorted(target.table.uids()) == ["aaaa-1", "bbbb-2"] and lines.count(b"\n") == 2
        await target.wait_stopped()

    asyncio.run(body())


def test_the_table_is_a_protocol_complete_view() -> None:
    _, view = table_and_view()
    checked: ObjectView = view  # mypy checks the protocol; this checks the methods exist
    assert all(callable(getattr(checked, m)) for m in ("apply", "listed", "vanished", "retain"))


def test_one_record_per_object_costs_under_a_hundred_bytes_beside_its_uid() -> None:
    count = 20_000
    objs = [pod(str(uuid.uuid4()), resource_version=str(987_654_321 + i)) for i in range(count)]
    table, view = table_and_view()
    first = objs[0]["metadata"]
    table.apply("ADDED", objs[0], first["uid"], rv=first["resourceVersion"])  # warm caches
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for o in objs[1:]:
            m = o["metadata"]
            event = view.apply("ADDED", o, m["uid"], m["resourceVersion"])
            assert event is not None
            table.apply(event.type, o, event.uid, rv=event.rv)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    per_object = sum(s.size_diff for s in after.compare_to(before, "filename")) / (count - 1)
    # A dict entry and one int of mask, version, bucket and digest (was ~150 B in two maps).
    assert per_object < 100, per_object


@asynctest
async def test_refused_writes_to_buckets_already_lost_leave_the_target_synced() -> None:
    """`Worker._refused` hands the target lost buckets under an unchanged filter; the
    reflector will not sync again for it, so the target must not wait for a sync."""
    async with sim_client(sim_config(watch_list=False)) as (server, client):
        for i in range(4):
            server.sim.create(configmap(f"cm-{i}", k=str(i)))
        half = frozenset(range(LAYOUT.buckets // 2))
        settings = dataclasses.replace(FAST, watch_list=False)

        def make(resource: Any, shard_filter: ShardFilter | None, view: ObjectView | None) -> Reflector:
            return Reflector(client, resource, shard_filter=shard_filter, settings=settings, view=view)

        target = Target(
            TargetRef("v1", "ConfigMap"),
            CONFIGMAPS,
            [program(CONFIGMAP_CONFIG)],
            queue=WriteQueue(MemoryStore(LAYOUT)),
            metrics=ShardMetrics(),
            make_source=make,
            owns=lambda bucket: bucket in half,
        )
        target.start(ShardFilter(LAYOUT.space, half))
        try:
            await asyncio.wait_for(target.synced.wait(), 10)
            target.set_filter(ShardFilter(LAYOUT.space, half), frozenset({LAYOUT.buckets - 1}))
            assert target.synced.is_set()
        finally:
            await target.wait_stopped()


@asynctest
async def test_a_relist_rerenders_only_what_changed_while_away() -> None:
    """A 410 relists through the same table: unchanged objects are skipped by version,
    changed ones rendered, vanished ones deleted from the store."""
    async with sim_client(sim_config(watch_list=False)) as (server, client):
        for i in range(12):
            server.sim.create(configmap(f"cm-{i}", k=str(i)))
        store = MemoryStore(LAYOUT)
        ownership = Ownership(store, 0)
        await ownership.adopt(Ring(1, 1, LAYOUT.space))
        queue = WriteQueue(store)
        metrics = ShardMetrics()
        settings = dataclasses.replace(FAST, watch_list=False)

        def make(resource: Any, shard_filter: ShardFilter | None, view: ObjectView | None) -> Reflector:
            return Reflector(
                client, resource, shard_filter=shard_filter, settings=settings, seed=1, view=view
            )

        target = Target(
            TargetRef("v1", "ConfigMap"),
            CONFIGMAPS,
            [program(CONFIGMAP_CONFIG)],
            queue=queue,
            metrics=metrics,
            make_source=make,
            owns=lambda bucket: True,
        )

        def renders() -> float:
            value = metrics.registry.get_sample_value(
                "panopticon_shard_renders_total", {"target": "v1/ConfigMap"}
            )
            return value or 0.0

        def relists() -> float:
            value = metrics.registry.get_sample_value(
                "panopticon_shard_relists_total", {"target": "v1/ConfigMap"}
            )
            return value or 0.0

        everything = ShardFilter(LAYOUT.space, frozenset(range(LAYOUT.buckets)))
        target.start(everything)
        try:
            await asyncio.wait_for(target.synced.wait(), 10)
            assert renders() == 12 and len(target.table) == 12
            target.synced.clear()
            for i in range(4):
                server.sim.delete("v1", "ConfigMap", f"cm-{i}", namespace=NS)
            server.sim.patch("v1", "ConfigMap", "cm-5", {"data": {"k": "changed"}}, namespace=NS)
            server.sim.compact()
            server.sim.inject_watch_error(410)
            await wait_until(lambda: relists() == 2, what="the relist")
            # cm-5 once (by its watch event or the relist, never both); the other 7 not at all.
            assert renders() == 13
            assert len(target.table) == 8
            await queue.flush(ownership.token)
            lines = b"".join([chunk async for chunk in read_family(store, "kube_configmap_info")])
            assert lines.count(b"\n") == 8 and b'k="changed"' in lines and b'k="0"' not in lines
        finally:
            await target.wait_stopped()


@asynctest
async def test_a_family_renamed_again_and_again_keeps_the_records_small() -> None:
    """Every family a kind's configs ever defined used to keep its bit, and the bit's
    position sets the size of every object's record: a family renamed at each config
    edit grew every record by four bytes per 30 edits, forever. After each sync only
    the current families keep bits."""
    async with sim_client(sim_config(watch_list=False)) as (server, client):
        for i in range(5):
            server.sim.create(configmap(f"cm-{i}", k=str(i)))
        store = MemoryStore(LAYOUT)
        ownership = Ownership(store, 0)
        await ownership.adopt(Ring(1, 1, LAYOUT.space))
        queue = WriteQueue(store)
        settings = dataclasses.replace(FAST, watch_list=False)

        def make(resource: Any, shard_filter: ShardFilter | None, view: ObjectView | None) -> Reflector:
            return Reflector(client, resource, shard_filter=shard_filter, settings=settings, view=view)

        def renamed(edit: int) -> Any:
            config = copy.deepcopy(CONFIGMAP_CONFIG)
            config["spec"]["metrics"][0]["name"] = f"info_{edit}"
            return program(config)

        target = Target(
            TargetRef("v1", "ConfigMap"),
            CONFIGMAPS,
            [renamed(0)],
            queue=queue,
            metrics=ShardMetrics(),
            make_source=make,
            owns=lambda bucket: True,
        )
        everything = ShardFilter(LAYOUT.space, frozenset(range(LAYOUT.buckets)))
        target.start(everything)
        try:
            await asyncio.wait_for(target.synced.wait(), 10)
            first = max(state.bit_length() for state in target.table._state.values())
            for edit in range(1, 40):
                target.set_programs([renamed(edit)], everything)
                await asyncio.wait_for(target.synced.wait(), 10)
            assert len(target.table._families) == 1
            assert max(state.bit_length() for state in target.table._state.values()) == first
            # The renumbered records still say which families each object has.
            await queue.flush(ownership.token)
            for edit in (0, 38):
                assert [chunk async for chunk in read_family(store, f"kube_configmap_info_{edit}")] == []
            lines = b"".join([chunk async for chunk in read_family(store, "kube_configmap_info_39")])
            assert lines.count(b"\n") == 5
            assert families(target.table.clear_ops()) == [("kube_configmap_info_39", False)] * 5
        finally:
            await target.wait_stopped()


def test_compaction_keeps_the_bit_of_a_family_an_object_still_holds() -> None:
    """Between new programs and the re-render of an object, the object's record still
    names its old families: their deletes must not be lost to a compaction."""
    table = KindTable([program()], LAYOUT.space)
    table.apply("ADDED", pod("u1"), "u1")
    table.apply("ADDED", pod("u2"), "u2")
    smaller = copy.deepcopy(PROGRAM_CONFIG)
    smaller["spec"]["metrics"] = smaller["spec"]["metrics"][:1]
    table.set_programs([program(smaller)])
    table.apply("MODIFIED", pod("u1", resource_version="2"), "u1")
    assert table.compact() == 0  # u2 still has its phase series
    replay = table.apply("MODIFIED", pod("u2", resource_version="2"), "u2")
    assert families(replay.ops) == [("kube_pod_info", True), ("kube_pod_phase", False)]
    assert table.compact() == 1
    assert families(table.clear_ops()) == [("kube_pod_info", False)] * 2
