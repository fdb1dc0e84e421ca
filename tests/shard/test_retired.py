"""The store's retired set stays bounded without losing a delete.

A family removed from the configs is retired: its fields left in some slot (written
by a shard that was down when it went) are garbage that each shard collects in its
buckets. The set used to keep every family ever removed. Now each shard sweeps the
families retired longer than a grace period out of its own buckets, and a family
leaves the set once no slot holds a field of it. Real Worker loops (flush,
heartbeat, sync, retired sweep) over the in-process store.
"""

from __future__ import annotations

import asyncio
from typing import Any

from panopticon.store.memory import MemoryStore
from shard.worker import Worker
from tests.shard.test_backlog import LAYOUT, Cluster, config, start_worker, stop, stored_uids, wait_for
from tests.support import aio

FAST = {"flush_interval": 0.02, "heartbeat_interval": 0.2, "retired_interval": 0.1, "retired_grace": 0.0}


async def start(store: MemoryStore, cluster: Cluster, index: int, shards: int, configs: list[Any]) -> Worker:
    w = await start_worker(store, cluster, index=index, shards=shards, **FAST)
    for body in configs:
        w.configs.upsert(body)
    w.configs_synced.set()
    await w.reconcile()
    return w


def loops(w: Worker) -> list[asyncio.Task[None]]:
    return [
        asyncio.create_task(w._flush_loop()),
        asyncio.create_task(w._heartbeat_loop()),
        asyncio.create_task(w._sync_loop()),
        asyncio.create_task(w._retired_loop()),
    ]


def test_a_family_renamed_at_every_edit_leaves_the_retired_set_once_collected() -> None:
    async def body() -> None:
        store = MemoryStore(LAYOUT)
        cluster = Cluster([f"uid-{i:04d}" for i in range(40)])
        w = await start(store, cluster, 0, 1, [config("c1", ["info", "renamed_0"])])
        tasks = loops(w)
        try:
            assert await wait_for(lambda: w.health.ready)
            for edit in range(1, 21):
                w.configs.upsert(config("c1", ["info", f"renamed_{edit}"]))
                await w.reconcile()
                assert await wait_for(
                    lambda: all(t.synced.is_set() for t in w.targets.values()) and w.settled
                )
            assert await wait_for(lambda: not store._retired, within=5), store._retired
            assert await store.retired() == set()
        finally:
            await stop(w, tasks)
        # Only the current families' hashes are left (none emptied by deletes, as in Redis).
        assert {family for family, _ in store._families} == {"kube_pod_info", "kube_pod_renamed_20"}
        assert all(store._families.values())
        assert len(await stored_uids(store, "kube_pod_renamed_20")) == 40

    aio.run(body())


def test_a_family_stays_retired_while_a_shard_that_was_down_holds_fields_of_it() -> None:
    """Shard 1 crashes; the family goes while it is down. Its fields in shard 1's
    buckets keep the family retired (shard 0's sweeps cannot delete them: fenced),
    shard 1 collects them after its first sync, and only then does it leave."""

    async def body() -> None:
        store = MemoryStore(LAYOUT)
        cluster = Cluster([f"uid-{i:04d}" for i in range(60)])
        both = [config("keep", ["info"]), config("gone", ["extra"])]
        first = await start(store, cluster, 0, 2, both)
        second = await start(store, cluster, 1, 2, both)
        workers = [first, second]
        tasks = {0: loops(first), 1: loops(second)}
        try:
            assert await wait_for(lambda: first.health.ready and second.health.ready)
            assert len(await stored_uids(store, "kube_pod_extra")) == 60
            await stop(second, tasks.pop(1))  # a crash: nothing cleaned up
            first.configs.delete("gone")
            await first.reconcile()
            assert await wait_for(lambda: "kube_pod_extra" in store._retired)
            await asyncio.sleep(0.5)  # several sweeps of shard 0
            left = await stored_uids(store, "kube_pod_extra")
            assert left and all(second._owns(LAYOUT.space.bucket(uid)) for uid in left)
            assert "kube_pod_extra" in await store.retired()
            restarted = await start(store, cluster, 1, 2, [config("keep", ["info"])])
            workers.append(restarted)
            tasks[1] = loops(restarted)
            assert await wait_for(lambda: restarted.health.ready)
            assert await wait_for(lambda: "kube_pod_extra" not in store._retired, within=5)
            assert await stored_uids(store, "kube_pod_extra") == []
            assert len(await stored_uids(store, "kube_pod_info")) == 60
        finally:
            for running in tasks.values():
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)
            for w in workers:
                for target in w.targets.values():
                    await target.wait_stopped()

    aio.run(body())
