"""Aggregate families stored per bucket (`shard.partials`): one exact partial per bucket,
held back while a bucket is not synced, so a handover or a shard restarted after a
kill never serves a bucket counted twice or half, and the combination of the stored
partials always equals that of every object's partial."""

from __future__ import annotations

import math
import random
import time

from panopticon.render.combine import combine
from panopticon.store.layout import Layout, bucket_field, field_bucket
from panopticon.store.memory import MemoryStore
from panopticon.text import format_number
from shard.membership import RingSpec
from shard.partials import BucketPartials
from shard.worker import Worker
from tests.shard.test_worker import worker as worker_of
from tests.support import aio

LAYOUT = Layout(prefix="t", buckets=64, slots=8)
FUNCTIONS = {"agg_sum": "sum", "agg_max": "max"}


LIVE: list[RingSpec] = []
"""The shard StatefulSet as the API server has it now: the last `ring` made."""


async def live_statefulset() -> RingSpec | None:
    return LIVE[-1] if LIVE else None


def worker(store: MemoryStore, index: int) -> Worker:
    # A StatefulSet's lineage becomes the store's current one on the API server's word
    # (`Worker._fenced_ring`): the shards here read it from LIVE.
    w = worker_of(store, index, ring_lookup=live_statefulset)
    w.queue.partials.set_functions(FUNCTIONS)
    return w


def ring(shards: int, generation: int) -> RingSpec:
    spec = RingSpec(shards, generation, "statefulset:test:ranges", static=False)
    LIVE.append(spec)
    return spec


class Objects:
    """Objects with a value each, rendered as their partial lines of both families."""

    def __init__(self, seed: int, count: int) -> None:
        self.rng = random.Random(seed)
        self.values: dict[str, float] = {}
        for i in range(count):
            self.values[f"u{i}"] = self.value()
        self.next = count

    def value(self) -> float:
        # Values whose float sum depends on the order: only an exact sum gets them right.
        return self.rng.choice([1e16, -1e16, 1.0, 0.1, 3e-5, self.rng.uniform(-100, 100)])

    def churn(self, n: int) -> tuple[list[str], list[str]]:
        """Change, delete and create objects; returns (changed or created, deleted)."""
        changed, deleted = [], []
        for _ in range(n):
            op = self.rng.random()
            uid = self.rng.choice(sorted(self.values))
            if op < 0.3:
                del self.values[uid]
                deleted.append(uid)
            elif op < 0.6:
                uid = f"u{self.next}"
                self.next += 1
                self.values[uid] = self.value()
                changed.append(uid)
            else:
                self.values[uid] = self.value()
                changed.append(uid)
        return [u for u in dict.fromkeys(changed) if u in self.values], deleted

    def lines_of(self, uid: str, v: float) -> dict[str, bytes]:
        group = f'g="{int(uid[1:]) % 3}"'
        return {f: f"{f}{{{group}}} {v!r}\n".encode() for f in sorted(FUNCTIONS)}

    def lines(self, uid: str) -> list[tuple[str, bytes]]:
        return sorted(self.lines_of(uid, self.values[uid]).items())

    def expected(self, values: dict[str, float] | None = None) -> dict[str, bytes]:
        """What the aggregator must serve for these object values (default: the current)."""
        values = self.values if values is None else values
        return {
            f: combine(function, [self.lines_of(uid, v)[f] for uid, v in sorted(values.items())])
            for f, function in FUNCTIONS.items()
        }


def render(w: Worker, objects: Objects, uids: list[str]) -> None:
    """What a target does with the objects of buckets it owns."""
    now = time.monotonic()
    for uid in uids:
        bucket = LAYOUT.space.bucket(uid)
        if w._owns(bucket):
            w.queue.add_object(bucket, uid, objects.lines(uid), [], at=now)


def delete(w: Worker, uids: list[str]) -> None:
    now = time.monotonic()
    for uid in uids:
        bucket = LAYOUT.space.bucket(uid)
        if w._owns(bucket):
            w.queue.add_object(bucket, uid, [], sorted(FUNCTIONS), at=now)


async def served(store: MemoryStore) -> dict[str, bytes]:
    """What an aggregator serves of each family, and a check of the stored fields."""
    out: dict[str, bytes] = {}
    for family, function in FUNCTIONS.items():
        chunks = [chunk async for _, chunk in store.read_families([family])]
        out[family] = combine(function, chunks)
        for slot in range(LAYOUT.slots):
            for field in await store.fields(slot, family):
                bucket = field_bucket(field)
                assert bucket is not None and LAYOUT.slot_of(bucket) == slot, field
    return out


async def stored_lines(store: MemoryStore) -> list[bytes]:
    lines: list[bytes] = []
    async for _, chunk in store.read_families(sorted(FUNCTIONS)):
        lines += chunk.splitlines()
    return sorted(lines)


async def synced(w: Worker) -> None:
    """The worker's targets have listed every object of its buckets: collect, then flush."""
    await w._collect(frozenset(w.pending_gc))
    assert not w.pending_gc & w.ownership.owned
    await w.flush()


def test_a_bucket_stores_one_exact_partial_of_its_objects_and_the_buckets_combine_to_the_objects() -> None:
    partials = BucketPartials()
    partials.set_functions({"s": "sum"})
    for i, v in enumerate([1e16, 1.0, -1e16, 0.1]):
        partials.take(7, f"u{i}", [("s", f's{{a="x"}} {v!r}\n'.encode())], [])
    [op] = partials.ops()
    assert (op.family, op.bucket, op.uid) == ("s", 7, bucket_field(7))
    assert op.value is not None and b"p-" in op.value  # 1.1 is no float: stored exact
    assert combine("sum", [op.value]) == b's{a="x"} 1.1\n'
    partials.take(7, "u1", [], ["s"])
    assert combine("sum", [partials.partial("s", 7) or b""]) == b's{a="x"} 0.1\n'
    for uid in ("u0", "u2", "u3"):
        partials.take(7, uid, [], ["s"])
    [gone] = partials.ops()
    assert gone.value is None  # no object left: the bucket's field is deleted


def test_a_handover_serves_the_old_owners_partial_until_the_new_owner_has_synced_the_bucket() -> None:
    async def body() -> None:
        store = MemoryStore(LAYOUT)
        objects = Objects(seed=1, count=400)
        a = worker(store, 0)
        await a._adopt(ring(1, 1))
        render(a, objects, sorted(objects.values))
        await synced(a)
        assert await served(store) == objects.expected()

        # Shard 1 starts: the ring moves half the buckets to it. It has rendered only
        # some of its objects when it flushes, and the old owner has not yet applied
        # the new ring: the old owner's partials must still be what is served.
        b = worker(store, 1)
        before = objects.expected()
        await b._adopt(ring(2, 2))
        moved = b.ownership.owned
        assert moved and b.pending_gc == set(moved)
        uids = sorted(objects.values)
        render(b, objects, uids[: len(uids) // 2])
        await b.flush()
        assert await served(store) == before
        # Churn meanwhile: the old owner's writes to moved buckets are refused, those to
        # the buckets it keeps go through; the moved buckets still serve their old partials.
        old = dict(objects.values)
        changed, deleted = objects.churn(60)
        for w in (a, b):
            render(w, objects, changed)
            delete(w, deleted)
        await a.flush()
        await b.flush()
        assert a.metrics.refused._value.get() > 0
        mixed = {u: v for u, v in objects.values.items() if LAYOUT.space.bucket(u) not in moved}
        mixed |= {u: v for u, v in old.items() if LAYOUT.space.bucket(u) in moved}
        assert await served(store) == objects.expected(mixed)
        await a._adopt(ring(2, 2))
        # The new owner lists everything (its sync), collects, and writes whole partials.
        render(b, objects, sorted(objects.values))
        await synced(b)
        await synced(a)
        assert await served(store) == objects.expected()
        changed, deleted = objects.churn(100)
        for w in (a, b):
            render(w, objects, changed)
            delete(w, deleted)
            await w.flush()
        assert await served(store) == objects.expected()
        assert a.queue.partials.objects() + b.queue.partials.objects() == 2 * len(objects.values)

    aio.run(body())


def test_a_shard_killed_and_restarted_rewrites_its_buckets_partials_only_once_synced() -> None:
    async def body() -> None:
        store = MemoryStore(LAYOUT)
        objects = Objects(seed=2, count=300)
        shards = [worker(store, i) for i in range(2)]
        for w in shards:
            await w._adopt(ring(2, 1))
            render(w, objects, sorted(objects.values))
            await synced(w)
        assert await served(store) == objects.expected()

        # Shard 1 is killed (nothing flushed, nothing forgotten in the store) while the
        # objects change; its replacement starts with nothing in memory.
        changed, deleted = objects.churn(80)
        render(shards[0], objects, changed)
        delete(shards[0], deleted)
        await shards[0].flush()
        restarted = worker(store, 1)
        await restarted._adopt(ring(2, 1))
        assert restarted.pending_gc == set(restarted.ownership.owned)
        # Part of its relist: partials held back, the dead incarnation's still served.
        listed = sorted(objects.values)
        before = await stored_lines(store)
        render(restarted, objects, listed[::2])
        await restarted.flush()
        assert await stored_lines(store) == before
        # The relist completes (deleted objects never show up again): exact again.
        render(restarted, objects, listed[1::2])
        await synced(restarted)
        assert await served(store) == objects.expected()

    aio.run(body())


def test_a_bucket_lost_and_won_back_keeps_nothing_of_objects_deleted_while_another_shard_had_it() -> None:
    async def body() -> None:
        store = MemoryStore(LAYOUT)
        objects = Objects(seed=3, count=300)
        a, b = worker(store, 0), worker(store, 1)
        await a._adopt(ring(1, 1))
        render(a, objects, sorted(objects.values))
        await synced(a)
        await b._adopt(ring(2, 2))
        await a._adopt(ring(2, 2))
        render(b, objects, sorted(objects.values))
        await synced(b)
        await synced(a)
        changed, deleted = objects.churn(120)
        assert any(b._owns(LAYOUT.space.bucket(u)) for u in deleted)
        for w in (a, b):
            render(w, objects, changed)
            delete(w, deleted)
            await w.flush()
        # Shard 1 goes away: shard 0 takes its buckets back and relists them.
        await a._adopt(ring(1, 3))
        render(a, objects, sorted(objects.values))
        await synced(a)
        assert await served(store) == objects.expected()

    aio.run(body())


def test_running_totals_give_what_recomputing_the_bucket_gives_whatever_the_values_and_changes() -> None:
    rng = random.Random(4)
    values = [math.nan, math.inf, -math.inf, 0.1, -0.0, 1e308, -1e308, 5e-324, 3, -7, 1e16, 2.5]
    for function in ("count", "sum", "min", "max"):
        partials = BucketPartials()
        partials.set_functions({"f": function})
        live: dict[str, bytes] = {}
        for step in range(600):
            uid = f"u{rng.randrange(40)}"
            bucket = int(uid[1:]) % 3
            if rng.random() < 0.25:
                partials.take(bucket, uid, [], ["f"])
                live.pop(uid, None)
            else:
                lines = b"".join(
                    f'f{{g="{g}"}} {format_number(rng.choice(values))}\n'.encode()
                    for g in sorted(rng.sample(range(3), rng.randrange(1, 3)))
                )
                partials.take(bucket, uid, [("f", lines)], [])
                live[uid] = lines
            if step % 50 == 49 and function == "sum":
                partials.set_functions({"f": "sum", "other": "max"})  # totals rebuilt
                partials.set_functions({"f": "sum"})
            for b in range(3):
                assert partials.partial("f", b) == partials.recomputed("f", b), (function, step, b)
            stored = [partials.partial("f", b) or b"" for b in range(3)]
            assert combine(function, stored) == combine(function, list(live.values())), (function, step)
