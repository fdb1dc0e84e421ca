"""The worker's write and registry paths against an in-process store, with faults:
cancelled flushes, concurrent reliefs, a failed first registry publication, and a
queue that outgrew one script call."""

from __future__ import annotations

import asyncio
import gc
import time
import warnings
from collections.abc import Sequence

from panopticon.errors import StoreError
from panopticon.sharding.ring import Ring
from panopticon.store.batch import Batch, Op
from panopticon.store.contract import ClaimResult
from panopticon.store.layout import Layout, RegistryEntry
from panopticon.store.memory import MemoryStore
from shard.membership import RingLookup
from shard.state import WorkerSettings
from shard.telemetry import Health, ShardMetrics
from shard.worker import Worker
from shard.writer import ROUND_TRIP_FIELDS, WriteQueue
from tests.support import aio

LAYOUT = Layout(prefix="t", buckets=64, slots=8)


class SlowStore(MemoryStore):
    """Writes take `delay` seconds; every call's batches are recorded."""

    def __init__(self, layout: Layout, delay: float = 0.2) -> None:
        super().__init__(layout)
        self.delay = delay
        self.calls: list[list[tuple[int, int]]] = []

    async def write_batches(
        self, owner: str, batches: Sequence[tuple[int, Batch]]
    ) -> list[list[int] | StoreError]:
        self.calls.append([(slot, len(batch)) for slot, batch in batches])
        await asyncio.sleep(self.delay)
        return await super().write_batches(owner, batches)


def worker(store: MemoryStore, index: int = 0, ring_lookup: RingLookup | None = None) -> Worker:
    return Worker(
        WorkerSettings(index=index, static_ring=None),
        store=store,
        discovery=None,  # type: ignore[arg-type]  # not used by these paths
        make_source=None,  # type: ignore[arg-type]
        status=None,
        metrics=ShardMetrics(),
        health=Health(),
        ring_lookup=ring_lookup,
    )


async def stored(store: MemoryStore, family: str) -> list[str]:
    uids: list[str] = []
    for slot in range(LAYOUT.slots):
        uids += await store.fields(slot, family)
    return sorted(uids)


def test_a_target_cancelled_while_it_waits_for_a_flush_loses_no_write() -> None:
    """A target restarting (config change) while it waits in `relieve` must not cancel
    the flush it waits for: that flush carries every target's operations."""

    async def body() -> None:
        store = SlowStore(LAYOUT)
        w = worker(store)
        await w.ownership.adopt(Ring(1, 1, LAYOUT.space))
        w.queue.add([Op("f", 1, "u1", b"f 1\n")])
        await w.relieve()  # a flush of u1 is in flight
        w.queue.add([Op("f", 2, "u2", b"f 2\n")])
        waiting = asyncio.create_task(w.relieve())
        await asyncio.sleep(0.05)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        await asyncio.sleep(0.3)
        await w.flush()
        assert await stored(store, "f") == ["u1", "u2"]
        assert len(w.queue) == 0

    aio.run(body())


def test_targets_relieving_at_once_start_one_flush_and_every_flush_is_tracked() -> None:
    async def body() -> None:
        store = SlowStore(LAYOUT)
        w = worker(store)
        await w.ownership.adopt(Ring(1, 1, LAYOUT.space))
        w.queue.add([Op("g", 3, "u3", b"g 1\n")])
        await w.relieve()
        waiting = [asyncio.create_task(w.relieve()) for _ in range(3)]
        await asyncio.sleep(0.05)
        w.queue.add([Op("g", 3, f"v{i}", b"g 1\n") for i in range(10)])
        await asyncio.gather(*waiting)
        running = [t for t in asyncio.all_tasks() if t.get_name() == "flush" and not t.done()]
        assert len(running) == 1 and set(running) <= w._flush_tasks
        await asyncio.wait(set(w._flush_tasks))
        assert len(await stored(store, "g")) == 11

    aio.run(body())


def test_a_cancelled_flush_puts_back_what_the_store_did_not_acknowledge() -> None:
    async def body() -> None:
        store = SlowStore(LAYOUT, delay=0.2)
        queue = WriteQueue(store)
        owner = worker(store).ownership
        await owner.adopt(Ring(1, 1, LAYOUT.space))
        queue.add([Op("f", b, f"u{b}", b"f 1\n") for b in range(64)])
        flushing = asyncio.create_task(queue.flush(owner.token))
        await asyncio.sleep(0.05)
        queue.add([Op("f", 5, "u5", None)])  # queued meanwhile: must win over the requeued set
        flushing.cancel()
        await asyncio.gather(flushing, return_exceptions=True)
        assert len(queue) == 64
        await queue.flush(owner.token)
        assert await stored(store, "f") == sorted(f"u{b}" for b in range(64) if b != 5)

    aio.run(body())


def test_a_slot_batch_larger_than_a_round_trip_goes_out_in_pieces_of_whole_buckets() -> None:
    async def body() -> None:
        store = SlowStore(LAYOUT, delay=0)
        queue = WriteQueue(store)
        owner = worker(store).ownership
        await owner.adopt(Ring(1, 1, LAYOUT.space))
        per_bucket = ROUND_TRIP_FIELDS // 4
        ops = [Op("f", b, f"u{b}-{i}", b"f 1\n") for b in range(8) for i in range(per_bucket)]  # slot 0
        queue.add(ops)
        result = await queue.flush(owner.token)
        sizes = [size for call in store.calls for _, size in call]
        assert sum(sizes) == len(ops) == result.written
        assert len(sizes) == 2 and max(sizes) <= ROUND_TRIP_FIELDS
        assert len(await stored(store, "f")) == len(ops)

    aio.run(body())


class FlakyRegistry(MemoryStore):
    failures = 0

    async def set_registry(self, entries: dict[str, RegistryEntry], remove: Sequence[str]) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreError("redis registry: connection reset")
        await super().set_registry(entries, remove)


def test_a_failed_first_publication_still_unregisters_families_no_config_defines() -> None:
    async def body() -> None:
        store = FlakyRegistry(LAYOUT)
        entry = RegistryEntry(b"# HELP old h\n", b"# HELP old h\n", ("deleted-config",))
        await store.set_registry({"kube_old_family": entry}, [])
        store.failures = 1
        w = worker(store)
        await w._publish_registry()  # Redis hiccup
        assert w._registry_dirty and not w._registry_read
        await w._publish_registry()  # the retry (heartbeat loop)
        assert list(await store.registry()) == []
        assert await store.retired() == {"kube_old_family"}
        assert not w._registry_dirty and w._registry_read

    aio.run(body())


class ForgetfulStore(MemoryStore):
    """A store that forgot its owners (Redis restarted empty): the next write of a
    bucket is refused and the re-claim succeeds. `write_gate` holds the first write
    after deciding its refusal; `claim_gate` holds a claim after applying it."""

    def __init__(self, layout: Layout) -> None:
        super().__init__(layout)
        self.write_gate = asyncio.Event()
        self.claim_gate = asyncio.Event()
        self.written = asyncio.Event()
        self.claimed = asyncio.Event()
        self.writes = 0

    async def write_batches(
        self, owner: str, batches: Sequence[tuple[int, Batch]]
    ) -> list[list[int] | StoreError]:
        self.writes += 1
        outcome = await super().write_batches(owner, batches)
        if self.writes == 1:
            self.written.set()
            await self.write_gate.wait()
        return outcome

    async def claim(self, slot: int, shard: int, generation: int, buckets: Sequence[int]) -> ClaimResult:
        result = await super().claim(slot, shard, generation, buckets)
        self.claimed.set()
        await self.claim_gate.wait()
        return result


def test_a_refused_write_never_overwrites_a_newer_value_written_while_its_bucket_was_reclaimed() -> None:
    """A write refused because the store forgot its owners is re-queued; a newer value
    of the same field, queued during that write and flushed while the bucket was being
    claimed again, must stay the stored one (the older value must not follow it)."""

    async def body() -> None:
        store = ForgetfulStore(LAYOUT)
        store.claim_gate.set()
        w = worker(store)
        await w.ownership.adopt(Ring(1, 1, LAYOUT.space))
        store._owners.clear()  # Redis restarted empty
        store.claim_gate.clear()
        store.claimed.clear()
        w.queue.add([Op("f", 3, "u1", b"f 1\n")])
        first = asyncio.create_task(w.flush())  # refused, held before it returns
        await store.written.wait()
        w.queue.add([Op("f", 3, "u1", b"f 2\n")])  # the object changed meanwhile
        store.write_gate.set()
        await store.claimed.wait()  # the re-claim applied, its answer held
        await w.flush()
        store.claim_gate.set()
        await first
        await w.flush()
        assert store._families[("f", LAYOUT.slot_of(3))] == {"u1": b"f 2\n"}
        assert len(w.queue) == 0

    aio.run(body())


def test_refused_writes_to_a_bucket_another_shard_owns_are_dropped_even_without_targets() -> None:
    """The last config deleted (its deletes queued, no target left) while a ring change
    gave a bucket to another shard: the refused deletes are dropped once, not sent
    again at every flush. (Found in review: the drop went only through the targets.)"""

    async def body() -> None:
        store = MemoryStore(LAYOUT)
        w = worker(store)
        await w.ownership.adopt(Ring(1, 1, LAYOUT.space))
        await store.claim(LAYOUT.slot_of(3), 1, 2, [3])  # shard 1 owns bucket 3, newer generation
        w.queue.add([Op("f", 3, "u1", None)])
        await w.flush()
        assert len(w.queue) == 0 and 3 not in w.ownership.owned
        await w.flush()
        assert w.metrics.refused._value.get() == 1

    aio.run(body())


def test_a_refused_write_reports_its_latency_from_the_event_not_from_the_retry() -> None:
    """A write refused once (the store forgot its owners) and written by the next flush
    is observed in `event_to_store` from when its event was queued, once. (Before, the
    re-queued batch started a new clock, so refusals hid their delay, and the refused
    attempt counted as a write.)"""

    async def body() -> None:
        store = MemoryStore(LAYOUT)
        w = worker(store)
        await w.ownership.adopt(Ring(1, 1, LAYOUT.space))
        store._owners.clear()  # Redis restarted empty: the next write is refused
        w.queue.add([Op("f", 3, "u1", b"f 1\n")], at=time.monotonic() - 5)
        await w.flush()  # refused, re-queued, bucket claimed again
        assert w.metrics.refused._value.get() == 1 and len(w.queue) == 1
        await w.flush()
        assert store._families[("f", LAYOUT.slot_of(3))] == {"u1": b"f 1\n"}
        samples = {s.name: s.value for s in w.metrics.event_to_store.collect()[0].samples}
        assert samples["panopticon_shard_event_to_store_seconds_count"] == 1
        assert samples["panopticon_shard_event_to_store_seconds_sum"] >= 5
        assert w.metrics.fields_written._value.get() == 1  # the refused attempt stored nothing

    aio.run(body())


def test_a_partly_refused_flush_counts_only_the_fields_it_stored() -> None:
    """One slot's batch with a bucket another shard took: the fields of the other bucket
    are stored and counted, the refused ones are neither counted nor sent again."""

    async def body() -> None:
        store = MemoryStore(LAYOUT)
        w = worker(store)
        await w.ownership.adopt(Ring(1, 1, LAYOUT.space))
        assert LAYOUT.slot_of(3) == LAYOUT.slot_of(4)
        await store.claim(LAYOUT.slot_of(3), 1, 2, [3])  # shard 1 owns bucket 3 now
        w.queue.add([Op("f", 3, "u1", b"f 1\n"), Op("f", 4, "u2", b"f 2\n"), Op("g", 4, "u2", b"g 2\n")])
        await w.flush()
        await w.flush()
        assert await stored(store, "f") == ["u2"] and await stored(store, "g") == ["u2"]
        assert w.metrics.fields_written._value.get() == 2
        assert w.metrics.refused._value.get() == 1 and len(w.queue) == 0

    aio.run(body())


class FailingOnceStore(MemoryStore):
    """The first write fails as if Redis were unreachable."""

    failed = False

    async def write_batches(
        self, owner: str, batches: Sequence[tuple[int, Batch]]
    ) -> list[list[int] | StoreError]:
        if not self.failed:
            self.failed = True
            raise StoreError("connection refused")
        return await super().write_batches(owner, batches)


def test_a_write_that_failed_once_reports_its_latency_from_the_event() -> None:
    async def body() -> None:
        store = FailingOnceStore(LAYOUT)
        w = worker(store)
        await w.ownership.adopt(Ring(1, 1, LAYOUT.space))
        w.queue.add([Op("f", 3, "u1", b"f 1\n")], at=time.monotonic() - 5)
        await w.flush()  # fails: queued again
        assert len(w.queue) == 1 and w.metrics.fields_written._value.get() == 0
        await w.flush()
        samples = {s.name: s.value for s in w.metrics.event_to_store.collect()[0].samples}
        assert samples["panopticon_shard_event_to_store_seconds_count"] == 1
        assert samples["panopticon_shard_event_to_store_seconds_sum"] >= 5

    aio.run(body())


class HangingSlotStore(MemoryStore):
    """Writes to `slow_slot` never finish; the others are applied at once."""

    slow_slot = 1

    async def write_batches(
        self, owner: str, batches: Sequence[tuple[int, Batch]]
    ) -> list[list[int] | StoreError]:
        if any(slot == self.slow_slot for slot, _ in batches):
            await asyncio.Event().wait()
        return await super().write_batches(owner, batches)


def test_a_cancelled_flush_puts_back_refused_operations_too() -> None:
    """A flush cancelled (shutdown) after one round trip was refused and before another
    was acknowledged: both go back to the queue (the caller never sees the refusal)."""

    async def body() -> None:
        store = HangingSlotStore(LAYOUT)
        queue = WriteQueue(store)
        owner = worker(store).ownership
        await owner.adopt(Ring(1, 1, LAYOUT.space))
        await store.claim(0, 1, 2, [3])  # bucket 3 (slot 0) now belongs to shard 1
        queue.add([Op("f", 3, f"u{i}", b"f 1\n") for i in range(ROUND_TRIP_FIELDS)])  # one round trip
        queue.add([Op("f", 9, "v", b"f 1\n")])  # slot 1: another round trip, never answered
        flushing = asyncio.create_task(queue.flush(owner.token))
        await asyncio.sleep(0.2)
        flushing.cancel()
        await asyncio.gather(flushing, return_exceptions=True)
        assert len(queue) == ROUND_TRIP_FIELDS + 1

    aio.run(body())


def test_a_worker_stopped_before_its_loops_start_leaves_no_never_awaited_coroutine() -> None:
    """An exporter that fails at start-up (a port in use) stops its worker before the
    loops' tasks first run: no "coroutine ... was never awaited" may follow the error."""

    async def body() -> None:
        stop = asyncio.Event()
        stop.set()  # run() creates its tasks, then stops before any of them ran
        await worker(MemoryStore(LAYOUT)).run(stop)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        aio.run(body())
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]
