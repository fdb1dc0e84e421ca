"""A seeded, randomized run: more than 10,000 mutations through the simulator's bulk
API (a separate process), faults injected between batches, and five reflectors
(watch-list, paged LIST+WATCH, three sharded ones handing buckets over midway).
At the end every view, and every event stream applied to a dict, equals the
simulator's LIST: no update and no delete was lost."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from kubesim import AdminClient, SimProcess
from panopticon.kube.client import KubeClient
from panopticon.kube.credentials import load_credentials
from panopticon.kube.reflector import Reflector
from panopticon.sharding.buckets import BucketSpace, ShardFilter
from tests.panopticon.kube.helpers import (
    CONFIGMAPS,
    FAST,
    FAST_CLIENT,
    Applied,
    converged,
    running,
    server_state,
    wait_until,
)
from tests.support.aio import asynctest

SEED = 20261122
MUTATIONS = 10_500
BATCH = 150
NAMESPACES = ("default", "team-a", "team-b")
NAMES = 700
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 äöüßé✓日本語🎉"
SPACE = BucketSpace(16)
SETTINGS = dataclasses.replace(FAST, inactivity_timeout=0.5, page_size=50, watch_timeout=(3.0, 6.0))


def owning(*buckets: int) -> ShardFilter:
    return ShardFilter(SPACE, frozenset(buckets))


class Mutator:
    """Random creates, updates and deletes of ConfigMaps, as bulk operations."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.live: set[tuple[str, str]] = set()

    def text(self) -> str:
        return "".join(self.rng.choices(ALPHABET, k=self.rng.randrange(8, 600)))

    def op(self) -> dict[str, Any]:
        rng = self.rng
        key = (rng.choice(NAMESPACES), f"cm-{rng.randrange(NAMES)}")
        ns, name = key
        if key not in self.live:
            self.live.add(key)
            obj = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns, "labels": {"n": str(rng.randrange(9))}},
                "data": {"text": self.text()},
            }
            return {"op": "create", "object": obj}
        if rng.random() < 0.25:
            self.live.discard(key)
            return {"op": "delete", "apiVersion": "v1", "kind": "ConfigMap", "name": name, "namespace": ns}
        patch = {"data": {"text": self.text(), "step": str(rng.randrange(10**6))}}
        return {
            "op": "patch",
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": name,
            "namespace": ns,
            "patch": patch,
        }


def faults(admin: AdminClient) -> list[tuple[str, Callable[[random.Random], Any]]]:
    return [
        ("compact", lambda rng: admin.compact()),
        ("compact+eof", lambda rng: (admin.compact(), admin.close_watches("eof"))),
        ("error-410", lambda rng: admin.inject_watch_error(410)),
        ("error-500", lambda rng: admin.inject_watch_error(500)),
        ("abort", lambda rng: admin.close_watches("abort")),
        ("eof", lambda rng: admin.close_watches("eof")),
        ("stall", lambda rng: (admin.stall_watches(None), time.sleep(0.8), admin.unstall_watches())),
        ("throttle", lambda rng: admin.throttle(rng.randrange(1, 15), form=rng.choice(["text", "json"]))),
        ("unavailable", lambda rng: admin.make_unavailable(count=rng.randrange(1, 4))),
        ("split", lambda rng: admin.split_chunks(max_piece=rng.randrange(8, 400), utf8=True, delay=0.0)),
        ("clear", lambda rng: admin.clear_faults()),
        ("none", lambda rng: None),
    ]


@pytest.mark.slow
@asynctest(timeout=240)  # ten thousand mutations: a minute on a loaded 2-core machine
async def test_ten_thousand_mutations_under_faults_lose_nothing() -> None:
    rng = random.Random(SEED)
    args = ["--scale", "0", "--namespaces", "0", "--nodes", "0", "--seed", str(SEED)]
    args += ["--bookmark-interval", "0.2", "--compaction-window", "0", "--rv0-honours-limit"]
    proc = await asyncio.to_thread(SimProcess(args).start)
    try:
        admin = proc.admin
        creds = load_credentials(str(proc.kubeconfig_path))
        async with KubeClient(creds, settings=FAST_CLIENT) as client:
            try:
                await run(rng, admin, client)
            except Exception as e:
                assert proc.proc is not None
                code = proc.proc.poll()
                if code is not None:  # make a dead simulator obvious, not a refused connection
                    raise AssertionError(f"the simulator process exited with {code}") from e
                raise
    finally:
        await asyncio.to_thread(proc.stop)


async def run(rng: random.Random, admin: AdminClient, client: KubeClient) -> None:
    halves = [owning(*range(8)), owning(*range(8, 12)), owning(*range(12, 16))]
    later = [owning(*range(0, 4)), owning(*range(4, 13)), owning(*range(13, 16))]
    full_watch_list = Reflector(client, CONFIGMAPS, settings=SETTINGS, seed=1, name="watch-list")
    list_settings = dataclasses.replace(SETTINGS, watch_list=False)
    full_list = Reflector(client, CONFIGMAPS, settings=list_settings, seed=2, name="list-watch")
    sharded = [
        Reflector(client, CONFIGMAPS, shard_filter=f, settings=SETTINGS, seed=3 + i, name=f"shard-{i}")
        for i, f in enumerate(halves)
    ]
    everyone = [full_watch_list, full_list, *sharded]
    applied = {r.name: Applied() for r in everyone}
    mutator = Mutator(rng)
    menu = faults(admin)
    injected: dict[str, int] = {}
    async with contextlib.AsyncExitStack() as stack:
        for r in everyone:
            await stack.enter_async_context(running(r, applied[r.name]))
        await wait_until(lambda: all(a.synced for a in applied.values()), what="first syncs")
        done = 0
        while done < MUTATIONS:
            ops = [mutator.op() for _ in range(BATCH)]
            result = await asyncio.to_thread(admin.bulk, ops)
            assert all(r["code"] in (200, 201) for r in result["results"]), result["results"][:3]
            done += len(ops)
            name, fault = rng.choice(menu)
            await asyncio.to_thread(fault, rng)
            injected[name] = injected.get(name, 0) + 1
            if done >= MUTATIONS // 2 and sharded[0].shard_filter == halves[0]:
                hand_over(sharded, applied, later)
            await asyncio.sleep(rng.choice([0.0, 0.01, 0.05]))
        await asyncio.to_thread(admin.clear_faults)
        final = await server_state(client, CONFIGMAPS)
        for r in everyone:
            await converged(r, applied[r.name], client, shard_filter=r.shard_filter, within=30.0)
    assert len(final) > 300
    union = {u: rv for r in sharded for u, rv in applied[r.name].objects.items()}
    assert union == final and sum(len(applied[r.name].objects) for r in sharded) == len(final)
    changes = sum(1 for e in applied["watch-list"].events if e.type != "SYNCED")
    assert changes >= 8_000, changes
    relists = sum(r.stats.relists for r in everyone)
    assert relists >= 5 and injected.get("compact+eof", 0) >= 1
    assert full_list.stats.errors.get("expired", 0) >= 1
    assert sum(r.stats.skipped for r in sharded) > 0
    if injected.get("stall"):
        assert sum(r.stats.errors.get("inactivity", 0) for r in everyone) >= 1


def hand_over(sharded: list[Reflector], applied: dict[str, Applied], filters: list[ShardFilter]) -> None:
    """Move buckets between the sharded reflectors, as a ring change does."""
    for r, f in zip(sharded, filters, strict=True):
        r.set_filter(f)
        objects = applied[r.name].objects
        for uid in [u for u in objects if not f.contains(u)]:
            del objects[uid]
