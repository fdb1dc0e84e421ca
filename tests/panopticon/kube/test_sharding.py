"""Sharded reflectors: server-side `shardSelector` detected or not, client-side
filtering always, and ownership handed over at run time with `set_filter`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

import pytest

from kubesim import SimServer
from panopticon.kube.client import KubeClient
from panopticon.kube.events import Event
from panopticon.kube.reflector import Reflector
from panopticon.sharding.buckets import BucketSpace, ShardFilter
from tests.panopticon.kube.helpers import (
    CONFIGMAPS,
    FAST,
    NS,
    Applied,
    configmap,
    converged,
    running,
    server_state,
    sim_client,
    sim_config,
    wait_until,
)
from tests.support.aio import asynctest

SPACE = BucketSpace(16)


def owning(*buckets: int) -> ShardFilter:
    return ShardFilter(SPACE, frozenset(buckets))


THIRDS = [owning(*range(0, 6)), owning(*range(6, 11)), owning(*range(11, 16))]


def populate(server: SimServer, count: int) -> None:
    for i in range(count):
        server.sim.create(configmap(f"cm-{i}", k=str(i)))


def churn(server: SimServer, step: int, *, size: int = 6) -> None:
    sim = server.sim
    for j in range(size):
        sim.create(configmap(f"new-{step}-{j}", v="1"))
    items = sim.list_objects("v1", "ConfigMap", namespace=NS)
    for item in items[: size * 2 : 2]:
        sim.patch("v1", "ConfigMap", item["metadata"]["name"], {"data": {"s": str(step)}}, namespace=NS)
    for item in items[-size:]:
        sim.delete("v1", "ConfigMap", item["metadata"]["name"], namespace=NS)


def reflector(client: KubeClient, shard_filter: ShardFilter | None, **settings: Any) -> Reflector:
    return Reflector(
        client, CONFIGMAPS, shard_filter=shard_filter, settings=dataclasses.replace(FAST, **settings), seed=2
    )


@pytest.mark.parametrize("watch_list", [True, False], ids=["watch-list", "list"])
@pytest.mark.parametrize("sharding", [True, False], ids=["server-filters", "server-ignores"])
@asynctest
async def test_sharded_reflectors_partition_the_objects_whether_or_not_the_server_filters(
    sharding: bool, watch_list: bool
) -> None:
    async with sim_client(sim_config(sharding=sharding, watch_list=watch_list)) as (server, client):
        populate(server, 90)
        reflectors = [reflector(client, f, watch_list=watch_list) for f in THIRDS]
        applied = [Applied() for _ in reflectors]
        async with contextlib.AsyncExitStack() as stack:
            for r, a in zip(reflectors, applied, strict=True):
                await stack.enter_async_context(running(r, a))
            await wait_until(lambda: all(a.synced for a in applied), what="three syncs")
            for step in range(4):
                churn(server, step)
            states = [
                await converged(r, a, client, shard_filter=f)
                for r, a, f in zip(reflectors, applied, THIRDS, strict=True)
            ]
        everything = await server_state(client, CONFIGMAPS)
        assert sum(len(s) for s in states) == len(everything)
        assert {u: rv for s in states for u, rv in s.items()} == everything
        for r in reflectors:
            assert r.server_sharding is sharding
            if sharding:
                assert r.stats.skipped == 0
            else:
                assert r.stats.skipped > 0
        queries = [q.query for q in server.sim.requests.since(0) if q.path == CONFIGMAPS.path and q.query]
        assert all("shardSelector" in q for q in queries)
        if watch_list:
            assert sum(1 for q in queries if q.get("limit") == "1") == 3  # one probe each


@pytest.mark.parametrize("code", [400, 422, 500])
@pytest.mark.parametrize("watch_list", [True, False], ids=["watch-list", "list"])
@asynctest
async def test_a_refused_shard_selector_falls_back_to_client_side_filtering_logged_once(
    code: int, watch_list: bool, caplog: pytest.LogCaptureFixture
) -> None:
    config = sim_config(
        sharding=True, shard_selector_refused=True, shard_selector_error_code=code, watch_list=watch_list
    )
    async with sim_client(config) as (server, client):
        populate(server, 60)
        reflectors = [reflector(client, f, watch_list=watch_list) for f in THIRDS]
        applied = [Applied() for _ in reflectors]
        async with contextlib.AsyncExitStack() as stack:
            for r, a in zip(reflectors, applied, strict=True):
                await stack.enter_async_context(running(r, a))
            await wait_until(lambda: all(a.synced for a in applied), what="three syncs")
            churn(server, 0)
            states = [
                await converged(r, a, client, shard_filter=f)
                for r, a, f in zip(reflectors, applied, THIRDS, strict=True)
            ]
        everything = await server_state(client, CONFIGMAPS)
        assert {u: rv for s in states for u, rv in s.items()} == everything
        for r in reflectors:
            assert r.selector_refused and r.server_sharding is False
            assert r.stats.errors == {"shard_selector_refused": 1}
            assert r.stats.skipped > 0  # filtered here
    refused = [rec for rec in caplog.records if "refused shardSelector" in rec.getMessage()]
    assert len(refused) == 3, [rec.getMessage() for rec in refused]  # once per reflector


async def drive_with_handover(
    r: Reflector, applied: Applied, plan: dict[int, ShardFilter], switched: list[tuple[int, ShardFilter]]
) -> None:
    """Consume `r`, calling `set_filter(plan[n])` right after the n-th event."""
    async with contextlib.aclosing(r.events()) as events:
        async for ev in events:
            applied.apply(ev)
            n = len(applied.events)
            if n in plan:
                r.set_filter(plan[n])
                switched.append((n, plan[n]))


@pytest.mark.parametrize("watch_list", [True, False], ids=["watch-list", "list"])
@asynctest
async def test_set_filter_drops_lost_objects_silently_and_adds_gained_ones(watch_list: bool) -> None:
    async with sim_client(sim_config(watch_list=watch_list)) as (server, client):
        populate(server, 80)
        first, second = owning(*range(0, 8)), owning(*range(4, 12))
        r = reflector(client, first, watch_list=watch_list)
        async with running(r) as applied:
            await wait_until(lambda: applied.synced == 1, what="first sync")
            await converged(r, applied, client, shard_filter=first)
            before = dict(applied.objects)
            mark = len(applied.events)
            r.set_filter(second)  # from another task, while the consumer waits on an idle watch
            lost = {u for u in before if not second.contains(u)}
            for uid in lost:  # the consumer drops what it no longer owns, as the shard does
                del applied.objects[uid]
            assert r.view.snapshot().keys() == before.keys() - lost
            await wait_until(lambda: applied.synced == 2, within=1.5, what="prompt handover sync")
            expected = await converged(r, applied, client, shard_filter=second)
        after = applied.events[mark:]
        assert [e.type for e in after[:-1]] == ["ADDED"] * len(after[:-1]) and after[-1].type == "SYNCED"
        assert {e.uid for e in after[:-1]} == expected.keys() - before.keys()
        assert r.synced_filter == second


@asynctest
async def test_events_decided_under_an_old_filter_never_reach_the_consumer_after_set_filter() -> None:
    async with sim_client(sim_config(bookmark_interval=None)) as (server, client):
        populate(server, 60)
        filters = [
            owning(*range(0, 8)),
            owning(*range(8, 16)),
            owning(1, 3, 5, 9, 11, 13),
            owning(*range(16)),
        ]
        r = reflector(client, filters[0])
        applied, switched = Applied(), []
        plan = {}
        task = asyncio.create_task(drive_with_handover(r, applied, plan, switched))
        try:
            await wait_until(lambda: applied.synced == 1, what="first sync")
            for i, f in enumerate(filters[1:], start=1):
                for step in range(3):
                    churn(server, 10 * i + step, size=4)
                plan[len(applied.events) + 3] = f
                await wait_until(lambda: len(switched) == i, what=f"switch {i}")  # noqa: B023
                for uid in [u for u in applied.objects if not f.contains(u)]:
                    del applied.objects[uid]
                await wait_until(lambda: applied.synced == i + 1, what=f"sync {i + 1}")  # noqa: B023
                await converged(r, applied, client, shard_filter=f)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert len(switched) == 3
        ends = [n for n, _ in switched[1:]] + [len(applied.events)]
        for (n, f), end in zip(switched, ends, strict=True):
            stray = [e for e in applied.events[n:end] if e.type != "SYNCED" and not f.contains(e.uid)]
            assert stray == [], "an event for a uid the new filter does not own"


@asynctest
async def test_a_filter_without_buckets_lists_nothing_and_reports_synced() -> None:
    async with sim_client() as (server, client):
        populate(server, 20)
        everything = owning(*range(16))
        r = reflector(client, owning())
        async with running(r) as applied:
            await wait_until(lambda: applied.synced == 1, what="empty sync")
            assert applied.events == [Event("SYNCED", None, "", "")]
            assert [q for q in server.sim.requests.since(0) if q.path == CONFIGMAPS.path] == []
            r.set_filter(everything)
            await wait_until(lambda: applied.synced == 2, what="full sync")
            await converged(r, applied, client)
            assert len(applied.of_type("ADDED")) == 20
            r.set_filter(owning())
            await wait_until(lambda: applied.synced == 3, what="empty again")
            assert len(r.view) == 0 and applied.of_type("DELETED") == []
            await wait_until(lambda: server.sim.open_watches("configmaps") == [], what="watch closed")
