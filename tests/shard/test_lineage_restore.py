"""A store rolled back (restored, or restarted empty) forgets which StatefulSet replaced
which; a shard whose watch lags still holds the replaced one (issue 14).

Found by a chaos run (seed 1): after a Redis restore, the lagging shard presented the
replaced StatefulSet's lineage to the store, which had forgotten it, took it as new,
made it current above the live one and declared the live one superseded: the live
ring's other shards were fenced out for good and never became ready. A lineage now
becomes current only once the API server confirms it (`panopticon.sharding.fencing`),
so the lagging shard adopts the live StatefulSet instead.

In-process: three workers on one in-process store, an API server of one StatefulSet
(`Api`), recovery driven by calling each worker's rewrite the way its heartbeat does.
"""

from __future__ import annotations

import copy
from typing import Any

from panopticon.kube.errors import KubeError
from panopticon.store.layout import Layout
from panopticon.store.memory import MemoryStore
from shard.command import statefulset_lookup
from shard.membership import RingSpec, ring_of_statefulset
from shard.worker import Worker
from tests.panopticon.kube.helpers import sim_client
from tests.shard.test_worker import worker as worker_of
from tests.support import aio
from tests.support.aio import asynctest
from tests.support.cluster import NAMESPACE, STATEFULSET
from tests.support.cluster import statefulset as cluster_statefulset

LAYOUT = Layout(prefix="t", buckets=64, slots=8)
SHARDS = 3


def statefulset(uid: str, generation: int, replicas: int = SHARDS) -> dict[str, Any]:
    return {"metadata": {"uid": uid, "generation": generation}, "spec": {"replicas": replicas}}


def ring(obj: dict[str, Any]) -> RingSpec:
    spec = ring_of_statefulset(obj)
    assert spec is not None
    return spec


OLD = statefulset("1111-old", 4)
NEW = statefulset("2222-new", 1)  # deleted and created again: generation 1


class Api:
    """The API server's StatefulSet: what a GET answers (`shard.membership.RingLookup`)."""

    def __init__(self, obj: dict[str, Any] | None) -> None:
        self.obj = obj
        self.gets = 0
        self.failing = False

    async def lookup(self) -> RingSpec | None:
        self.gets += 1
        if self.failing:
            raise KubeError("the API server is unreachable")
        return None if self.obj is None else ring_of_statefulset(self.obj)


def worker(store: MemoryStore, index: int, api: Api) -> Worker:
    return worker_of(store, index, ring_lookup=api.lookup)


def snapshot(store: MemoryStore) -> dict[str, Any]:
    """What Redis persists: the data, not this process's connection state."""
    return {k: copy.deepcopy(v) for k, v in vars(store).items() if k not in ("layout", "_marks", "_run_id")}


def restore(store: MemoryStore, state: dict[str, Any]) -> None:
    for key, value in copy.deepcopy(state).items():
        setattr(store, key, value)


async def replaced_while_shard_0_lags(store: MemoryStore, api: Api) -> list[Worker]:
    """Three shards on OLD; OLD replaced by NEW, which shards 1 and 2 adopt while shard
    0's watch has not delivered it yet."""
    workers = [worker(store, i, api) for i in range(SHARDS)]
    for w in workers:
        await w.adopt(ring(OLD))
    api.obj = NEW
    for w in workers[1:]:
        await w.adopt(ring(NEW))
    assert workers[0].ring_spec == ring(OLD)
    return workers


async def assert_the_live_ring_owns_every_bucket(
    store: MemoryStore, workers: list[Worker], *, live: dict[str, Any] = NEW, one_fence: bool = True
) -> None:
    assert await store.ring_lineage() == ring(live).lineage
    owners = await store.owners()
    fences = {w.ownership.ring.generation for w in workers if w.ownership.ring is not None}
    if one_fence:
        assert len(fences) == 1, fences  # one ring, one fence
    for w in workers:
        assert w.ring_spec == ring(live), (w.settings.index, w.ring_spec)
        assert w.ownership.assigned and w.ownership.owned == w.ownership.assigned, w.settings.index
        for bucket in w.ownership.assigned:
            assert owners[bucket] == w.ownership.token, (bucket, owners[bucket])
    assert len(owners) == LAYOUT.buckets


def test_a_lagging_shard_after_a_restore_that_forgot_the_replaced_statefulset_adopts_the_live_one() -> None:
    """The snapshot predates both lineages (a backup from before the install; an
    empty restart forgets the same). Shard 1 recovers first and records NEW; then the
    lagging shard 0 presents OLD, which the store no longer knows; then shard 2."""

    async def body() -> None:
        store, api = MemoryStore(LAYOUT), Api(OLD)
        await store.ensure_layout()
        before = snapshot(store)
        workers = await replaced_while_shard_0_lags(store, api)
        fence_before = workers[1].ownership.ring.generation if workers[1].ownership.ring else 0
        restore(store, before)
        for i in (1, 0, 2):  # each shard's heartbeat saw the epoch change
            assert await workers[i]._rewrite_all()
        await assert_the_live_ring_owns_every_bucket(store, workers)
        assert workers[1].ownership.ring is not None
        assert workers[1].ownership.ring.generation >= fence_before  # the fence never goes back
        # Shard 0's watch delivers OLD again, late: never current again.
        await workers[0].adopt(ring(OLD))
        await assert_the_live_ring_owns_every_bucket(store, workers)

    aio.run(body())


def test_a_restore_to_a_store_where_the_lagging_shard_made_the_replaced_one_current_is_undone() -> None:
    """The snapshot holds what the unfixed rule left behind: OLD current above NEW, NEW
    superseded. Every recovering shard confirms its StatefulSet with the API server:
    the lagging one finds NEW and fences it above OLD; the others follow."""

    async def body() -> None:
        store, api = MemoryStore(LAYOUT), Api(OLD)
        await store.ensure_layout()
        workers = await replaced_while_shard_0_lags(store, api)
        store._rings = {"current": ring(OLD).lineage, f"base:{ring(OLD).lineage}": 10, "top": 14}
        store._rings[f"base:{ring(NEW).lineage}"] = 0
        await store.claim(0, 0, 14, list(range(LAYOUT.buckets)))  # shard 0 at OLD's fence took all
        stale = snapshot(store)
        restore(store, stale)
        for i in (0, 2, 1):  # the lagging shard first: OLD is what the store holds current
            assert await workers[i]._rewrite_all()
        await assert_the_live_ring_owns_every_bucket(store, workers)
        assert workers[0].ownership.ring is not None and workers[0].ownership.ring.generation > 14

    aio.run(body())


def test_a_shard_started_after_a_restore_whose_watch_lists_the_replaced_statefulset_adopts_the_live_one() -> (
    None
):
    """A stale watch cache can list the replaced StatefulSet to a shard that just
    started; the store, restored, no longer knows it was replaced."""

    async def body() -> None:
        store, api = MemoryStore(LAYOUT), Api(NEW)
        await store.ensure_layout()
        before = snapshot(store)
        workers = [worker(store, i, api) for i in range(SHARDS)]
        for w in workers:
            await w.adopt(ring(NEW))
        restore(store, before)
        late = worker(store, 0, api)
        await late.adopt(ring(OLD))  # first: the lineage is new to the store
        workers[0] = late
        for w in workers[1:]:
            assert await w._rewrite_all()
        await assert_the_live_ring_owns_every_bucket(store, workers)

    aio.run(body())


def test_a_rewrite_that_cannot_confirm_the_statefulset_is_retried_and_claims_nothing_meanwhile() -> None:
    async def body() -> None:
        store, api = MemoryStore(LAYOUT), Api(OLD)
        await store.ensure_layout()
        before = snapshot(store)
        workers = await replaced_while_shard_0_lags(store, api)
        restore(store, before)
        api.failing = True
        assert not await workers[0]._rewrite_all()  # the heartbeat tries again
        assert await store.ring_lineage() is None and await store.owners() == {}
        api.failing = False
        for w in workers:
            assert await w._rewrite_all()
        await assert_the_live_ring_owns_every_bucket(store, workers)

    aio.run(body())


def test_the_live_rings_fence_does_not_go_back_when_a_lagging_shard_confirmed_it_after_a_restore() -> None:
    """Shard 0 lags two generations of OLD behind its peers, whose NEW was fenced above
    OLD's latest. After a restore that forgot every lineage, shard 0 recovers first and
    confirms NEW: it knows only its own, lower fence. Shard 1, refused meanwhile (the
    owners went back too), re-claimed its buckets at the fence it holds; its recovery
    must not fence NEW below that, or its own claims refuse it."""

    async def body() -> None:
        store, api = MemoryStore(LAYOUT), Api(OLD)
        await store.ensure_layout()
        before = snapshot(store)
        workers = [worker(store, i, api) for i in range(SHARDS)]
        for w in workers:
            await w.adopt(ring(OLD))
        api.obj = statefulset("1111-old", 6)
        for w in workers[1:]:
            await w.adopt(ring(api.obj))
        api.obj = NEW
        for w in workers[1:]:
            await w.adopt(ring(NEW))
        assert workers[0].ring_spec == ring(OLD)
        held = workers[1].ownership.ring.generation if workers[1].ownership.ring else 0
        restore(store, before)
        assert await workers[0]._rewrite_all()  # confirms NEW, from its own fence (OLD's 4)
        kept, lost = await workers[1].ownership.reclaim(workers[1].ownership.owned)  # a refused write
        assert kept and not lost
        assert await workers[1]._rewrite_all()
        assert await workers[2]._rewrite_all()
        await assert_the_live_ring_owns_every_bucket(store, workers, one_fence=False)
        assert workers[1].ownership.ring is not None and workers[1].ownership.ring.generation >= held

    aio.run(body())


def test_a_shard_whose_watch_lags_behind_a_replacement_follows_the_stores_current_lineage() -> None:
    """No restore: OLD (three shards) replaced by NEW with two; shard 1 adopts NEW,
    shard 0's watch does not deliver it. On OLD's ring shard 0 keeps its third and
    never claims the rest of NEW's first half, which nobody writes then. Its ownership
    check sees another lineage current, asks the API server and adopts NEW."""

    async def body() -> None:
        store, api = MemoryStore(LAYOUT), Api(OLD)
        await store.ensure_layout()
        workers = [worker(store, i, api) for i in range(2)]
        for w in workers:
            await w.adopt(ring(OLD))
        two = statefulset("3333-two", 1, replicas=2)
        api.obj = two
        await workers[1].adopt(ring(two))
        await workers[0]._check_ownership()
        await assert_the_live_ring_owns_every_bucket(store, workers, live=two)
        gets = api.gets
        await workers[0]._check_ownership()  # current now: no GET
        await workers[1]._check_ownership()
        assert api.gets == gets

    aio.run(body())


def test_a_recovery_while_the_statefulset_is_gone_keeps_the_current_lineage_and_claims_again() -> None:
    """Deleted, not created again yet (`kubectl delete --cascade=orphan` then apply):
    nothing to confirm. The current lineage keeps its fence and the shard claims its
    buckets again; a lineage that is not current is not adopted."""

    async def body() -> None:
        store, api = MemoryStore(LAYOUT), Api(NEW)
        await store.ensure_layout()
        workers = [worker(store, i, api) for i in range(SHARDS)]
        for w in workers:
            await w.adopt(ring(NEW))
        fence = workers[0].ownership.ring.generation if workers[0].ownership.ring else 0
        store._owners.clear()  # a restore that lost the claims, not the lineages
        api.obj = None  # deleted: a 404
        for w in workers:
            assert await w._rewrite_all()
        await assert_the_live_ring_owns_every_bucket(store, workers)
        assert {w.ownership.ring.generation for w in workers if w.ownership.ring} == {fence}
        stale = worker(store, 0, api)
        await stale.adopt(ring(OLD))
        assert stale.ring_spec is None and await store.ring_lineage() == ring(NEW).lineage

    aio.run(body())


@asynctest
async def test_the_lookup_reads_the_live_statefulset_and_none_once_it_is_gone() -> None:
    """`shard.command.statefulset_lookup` against the simulator: a GET of the object."""
    async with sim_client() as (server, client):
        server.sim.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        lookup = statefulset_lookup(client, NAMESPACE, STATEFULSET)
        assert await lookup() is None  # not created yet
        first = server.sim.create(cluster_statefulset(3), namespace=NAMESPACE)
        spec = await lookup()
        assert spec is not None and spec.shards == 3 and first["metadata"]["uid"] in spec.lineage
        server.sim.delete("apps/v1", "StatefulSet", STATEFULSET, namespace=NAMESPACE)
        again = server.sim.create(cluster_statefulset(2), namespace=NAMESPACE)
        spec = await lookup()
        assert spec is not None and spec.shards == 2 and again["metadata"]["uid"] in spec.lineage
        assert ring_of_statefulset({"metadata": {"generation": 1}, "spec": {"replicas": 2}}) is None  # no uid
        server.sim.delete("apps/v1", "StatefulSet", STATEFULSET, namespace=NAMESPACE)
        assert await lookup() is None
