"""A shard's write backlog while the store fails, with a real Worker (its flush,
heartbeat and sync loops) over an in-process store that can fail: the backlog is
bounded, rewrites after a drop back off when writes keep failing, and families of a
config removed during the outage are collected once the store answers."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from panopticon.errors import StoreError
from panopticon.kube.discovery import ResourceRef
from panopticon.kube.events import Event
from panopticon.sharding.buckets import ShardFilter
from panopticon.sharding.ring import Ring
from panopticon.store.batch import Batch
from panopticon.store.layout import Layout, RegistryEntry
from panopticon.store.memory import MemoryStore
from shard.state import WorkerSettings
from shard.telemetry import Health, ShardMetrics
from shard.worker import Worker
from tests.support import aio

LAYOUT = Layout(prefix="t", buckets=64, slots=8)
POD = ResourceRef("", "v1", "pods", "Pod", True)


def config(name: str, metrics: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "metrics.appscode.com/v1alpha1",
        "kind": "MetricsConfiguration",
        "metadata": {"name": name, "uid": f"uid-{name}"},
        "spec": {
            "targetRef": {"apiVersion": "v1", "kind": "Pod"},
            "metrics": [
                {"name": m, "help": "h", "type": "gauge", "metricValue": {"value": 1}} for m in metrics
            ],
        },
    }


def pod(uid: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"p-{uid}", "namespace": "ns", "uid": uid, "resourceVersion": "1"},
    }


class FaultStore(MemoryStore):
    """`down`: every call fails. `writes_fail`: only fenced writes fail (READONLY/OOM)."""

    def __init__(self, layout: Layout) -> None:
        super().__init__(layout)
        self.down = False
        self.writes_fail = False

    def _check(self) -> None:
        if self.down:
            raise StoreError("redis: timeout")

    async def epoch(self):  # type: ignore[override]
        self._check()
        return await super().epoch()

    async def write_batches(self, owner: str, batches: Sequence[tuple[int, Batch]]):  # type: ignore[override]
        self._check()
        if self.writes_fail:
            return [StoreError("READONLY You can't write against a read only replica") for _ in batches]
        return await super().write_batches(owner, batches)

    async def write(self, slot, owner, ops):  # type: ignore[override]
        self._check()
        return await super().write(slot, owner, ops)

    async def set_registry(self, entries: dict[str, RegistryEntry], remove: Sequence[str]) -> None:
        self._check()
        await super().set_registry(entries, remove)

    async def registry(self):  # type: ignore[override]
        self._check()
        return await super().registry()

    async def retired(self):  # type: ignore[override]
        self._check()
        return await super().retired()

    async def fields_of(self, slot, families):  # type: ignore[override]
        self._check()
        return await super().fields_of(slot, families)

    async def heartbeat(self, shard, info):  # type: ignore[override]
        self._check()
        await super().heartbeat(shard, info)

    async def claim(self, slot, shard, generation, buckets):  # type: ignore[override]
        self._check()
        return await super().claim(slot, shard, generation, buckets)


class Cluster:
    """The objects that exist; every source lists them once, SYNCED, then idles."""

    def __init__(self, uids: list[str]) -> None:
        self.objects = {u: pod(u) for u in uids}
        self.sources = 0

    def make_source(self, resource: ResourceRef, shard_filter: ShardFilter | None, view: Any) -> Any:
        self.sources += 1
        cluster = self

        class Source:
            async def events(self) -> AsyncIterator[Event]:
                await asyncio.sleep(0.01)
                for obj in list(cluster.objects.values()):
                    uid = obj["metadata"]["uid"]
                    if shard_filter is None or shard_filter.contains(uid):
                        yield Event("ADDED", copy.deepcopy(obj), uid, "1")
                yield Event("SYNCED", None, "", "1")
                await asyncio.Event().wait()

            def set_filter(self, f: ShardFilter | None) -> None:
                pass

        return Source()


class Discovery:
    async def resolve(self, api_version: str, kind: str) -> ResourceRef:
        return POD

    async def refresh(self) -> None:
        return None


async def start_worker(
    store: MemoryStore, cluster: Cluster, *, index: int = 0, shards: int = 1, **settings: Any
) -> Worker:
    s = WorkerSettings(index=index, static_ring=None, **settings)
    w = Worker(
        s,
        store=store,
        discovery=Discovery(),  # type: ignore[arg-type]
        make_source=cluster.make_source,
        status=None,
        metrics=ShardMetrics(),
        health=Health(),
    )
    await store.ensure_layout()
    w.epoch, w.store_was_empty = await store.epoch()
    await w.ownership.adopt(Ring(shards, 1, LAYOUT.space))
    w.ring_ready.set()
    return w


def loops(w: Worker) -> list[asyncio.Task]:
    return [
        asyncio.create_task(w._flush_loop()),
        asyncio.create_task(w._heartbeat_loop()),
        asyncio.create_task(w._sync_loop()),
    ]


def held(store: MemoryStore, family: str) -> list[str]:
    return sorted(uid for slot in range(LAYOUT.slots) for uid in store._families.get((family, slot), {}))


async def stored_uids(store: MemoryStore, family: str) -> list[str]:
    out: list[str] = []
    for slot in range(LAYOUT.slots):
        out += list(store._families.get((family, slot), {}))
    return sorted(out)


async def wait_for(cond: Callable[[], bool], within: float = 10.0) -> bool:
    deadline = asyncio.get_running_loop().time() + within
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def test_rewrites_back_off_while_writes_keep_failing_and_reads_answer() -> None:
    """A Redis Cluster node down, READONLY, OOM: the epoch read and heartbeats succeed
    while writes fail. Each rewrite relists every kind and outgrows the backlog again;
    rewriting at every heartbeat would relist against the API server without end."""

    async def body() -> None:
        store = FaultStore(LAYOUT)
        cluster = Cluster([f"uid-{i:04d}" for i in range(300)])
        w = await start_worker(store, cluster, flush_interval=0.02, heartbeat_interval=0.2, max_backlog=200)
        w.configs.upsert(config("c1", ["info", "other"]))
        w.configs_synced.set()
        await w.reconcile()
        tasks = loops(w)
        try:
            assert await wait_for(lambda: w.health.ready)
            store.writes_fail = True
            before = cluster.sources
            w.configs.upsert(config("c1", ["info", "other", "third"]))  # a relist-sized burst
            await w.reconcile()
            await asyncio.sleep(4.0)
            drops = w.metrics.backlog_drops._value.get()
            restarts = cluster.sources - before - 1  # minus the config change's own restart
            assert drops >= 1
            # One rewrite at once, the next after 5 s: not one per heartbeat (19 before).
            assert restarts <= 1, (drops, restarts)
            store.writes_fail = False  # the next rewrite (backed off) writes everything
            assert await wait_for(lambda: held(store, "kube_pod_third") == sorted(cluster.objects), within=15)
        finally:
            await stop(w, tasks)

    aio.run(body())


def test_families_of_a_config_removed_during_an_outage_are_collected() -> None:
    async def body() -> None:
        store = FaultStore(LAYOUT)
        cluster = Cluster([f"uid-{i:04d}" for i in range(40)])
        w = await start_worker(store, cluster, flush_interval=0.02, heartbeat_interval=0.5, max_backlog=10)
        w.configs.upsert(config("keep", ["info"]))
        w.configs.upsert(config("gone", ["extra"]))
        w.configs_synced.set()
        await w.reconcile()
        tasks = loops(w)
        try:
            assert await wait_for(lambda: w.health.ready)
            assert len(await stored_uids(store, "kube_pod_extra")) == 40
            store.down = True
            w.configs.delete("gone")
            await w.reconcile()  # its deletes queue, its registry removal fails
            assert await wait_for(lambda: w.metrics.backlog_drops._value.get() >= 1)
            store.down = False
            assert await wait_for(lambda: not w._rewrite_due and not w.pending_gc and w.settled, within=15)
            assert await stored_uids(store, "kube_pod_extra") == []
            assert len(await stored_uids(store, "kube_pod_info")) == 40
            assert "kube_pod_extra" in await store.retired()
        finally:
            await stop(w, tasks)

    aio.run(body())


async def stop(w: Worker, tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for target in w.targets.values():
        await target.wait_stopped()


def test_no_collection_runs_while_a_ring_change_awaits_its_sync() -> None:
    """The sync loop flushes before it collects; a ring change landing during that
    flush adds gained buckets, whose objects are not listed yet. Collecting them then
    would delete the previous owner's live series."""

    async def body() -> None:
        store = FaultStore(LAYOUT)
        cluster = Cluster([f"uid-{i:04d}" for i in range(10)])
        w = await start_worker(store, cluster, flush_interval=0.02, heartbeat_interval=0.5)
        w.configs.upsert(config("c1", ["info"]))
        w.configs_synced.set()
        await w.reconcile()
        tasks = loops(w)
        try:
            assert await wait_for(lambda: w.health.ready)
            gained = LAYOUT.space.bucket("zzzz-previous-owner")
            slot = LAYOUT.slot_of(gained)
            fields = store._families.setdefault(("kube_pod_info", slot), {})
            fields["zzzz-previous-owner"] = b"kube_pod_info 1\n"
            flush = w.flush

            async def flush_then_ring_change() -> None:
                await flush()
                for target in w.targets.values():  # what Target.set_filter does
                    target.synced.clear()
                w.pending_gc.add(gained)

            w.flush = flush_then_ring_change  # type: ignore[method-assign]
            w.pending_gc.add(gained)
            await asyncio.sleep(0.5)
            assert "zzzz-previous-owner" in store._families[("kube_pod_info", slot)]
            assert gained in w.pending_gc  # collected after the next sync instead
        finally:
            await stop(w, tasks)

    aio.run(body())
