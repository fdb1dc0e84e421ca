"""Batched, fenced writes to the store, and the ownership they are fenced by.

Render results queue here per storage slot; a newer operation on the same
(family, uid) replaces an older one still queued, so bursts of updates to one object
cost one write. `flush()` sends every slot's batch through the store's fenced write;
buckets the store refuses (another shard owns them at a newer ring generation) are
reported so the shard stops writing them until its ring catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from panopticon.errors import StoreError
from panopticon.sharding.ring import Ring
from panopticon.store.batch import Batch, Burial, Op, bucket_fields
from panopticon.store.contract import Store
from panopticon.store.layout import Layout, field_bucket, token
from shard.partials import BucketPartials

MAX_CONCURRENT_WRITES = 2
"""Round trips in flight at once: one being applied by Redis while the next is built."""
MAX_BURIALS = 10_000
"""Burials kept for retry while the store fails (each is a few short strings)."""
ROUND_TRIP_FIELDS = 20_000
"""Field operations per round trip: slot batches are sent together (one pipelined
exchange) up to about this many, so a steady trickle of events costs one round trip
per flush while an initial sync still streams in bounded pieces."""


@dataclass(slots=True)
class FlushResult:
    written: int = 0
    slots: int = 0
    refused: set[int] = field(default_factory=set)
    refused_batches: list[tuple[int, Batch, float]] = field(default_factory=list)
    """(slot, the operations of its refused buckets, when the oldest of them was
    queued), for the caller to requeue (`WriteQueue.merge`) or drop."""
    failed_slots: int = 0
    latencies: list[float] = field(default_factory=list)
    """Seconds from the oldest queued event of each written batch to its acknowledgement."""
    buried: int = 0
    """Dead objects whose fields were deleted before the batches were written."""
    burial_failed: bool = False


class WriteQueue:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.layout: Layout = store.layout
        self._pending: dict[int, Batch] = {}
        self._since: dict[int, float] = {}
        self._shift = (self.layout.buckets // self.layout.slots).bit_length() - 1
        self._added = 0
        """Operations queued since the queue was last emptied: at least `len(self)`."""
        self._burials: list[Burial] = []
        """Dead objects' fields to delete before any batch is written (`bury`)."""
        self.partials = BucketPartials()
        """Aggregate families: kept per object here, written per bucket at each flush."""

    def __len__(self) -> int:
        """Field operations queued (a field written twice before a flush counts once)."""
        return sum(len(batch) for batch in self._pending.values())

    def __bool__(self) -> bool:
        """Whether anything is queued (without counting it: the flush loop asks every 50 ms)."""
        return bool(self._pending or self._burials) or self.partials.due()

    def bury(self, burial: Burial) -> None:
        """Queue the deletion of a dead object's fields (an object deleted, whose name a
        new object now holds: `shard.successors`). The next flush sends every burial
        first and writes its batches only once the store acknowledged them, so the new
        object's series are never stored before its predecessor's are deleted. Burials
        are not fenced and not tied to owned buckets: `discard` and `clear` keep them."""
        self._burials.append(burial)

    def exceeds(self, bound: int) -> bool:
        """`len(self) > bound`, counted only once enough operations were queued to
        make it possible (the render path asks every few milliseconds; counting
        walks every queued bucket)."""
        return self._added > bound and len(self) > bound

    def _batch(self, bucket: int, now: float) -> Batch:
        slot = bucket >> self._shift
        batch = self._pending.get(slot)
        if batch is None:
            batch = self._pending[slot] = Batch()
            self._since[slot] = now
        return batch

    def add(self, ops: Iterable[Op], *, at: float | None = None) -> None:
        if self.partials.functions:
            ops = self.partials.take_ops(ops)
        self._put(ops, time.monotonic() if at is None else at)

    def _put(self, ops: Iterable[Op], now: float) -> None:
        for op in ops:
            self._batch(op.bucket, now).put(op.family, op.bucket, op.uid, op.value)
            self._added += 1

    def add_object(
        self, bucket: int, uid: str, sets: Sequence[tuple[str, bytes]], dels: Sequence[str], *, at: float
    ) -> None:
        """Queue one object's families to set and to delete (the render path)."""
        if self.partials.functions:
            sets, dels = self.partials.take(bucket, uid, sets, dels)
        if sets or dels:
            self._batch(bucket, at).put_object(bucket, uid, sets, dels)
            self._added += len(sets) + len(dels)

    def merge(self, slot: int, batch: Batch, *, since: float | None = None) -> None:
        """Queue a batch again; operations queued since win over its. `since`: when
        its oldest operation was first queued, so that the latency reported once it is
        written counts from the event, not from the retry."""
        if not batch.segments:
            return
        newer = self._pending.get(slot)
        if newer is not None:
            batch.merge(newer)
        self._pending[slot] = batch
        earliest = self._since.get(slot)
        if since is not None and (earliest is None or since < earliest):
            earliest = since
        self._since[slot] = time.monotonic() if earliest is None else earliest
        self._added += len(batch)

    def clear(self) -> None:
        """Drop everything queued (the caller arranges for it to be written again)."""
        self._pending, self._since, self._added = {}, {}, 0

    def discard(self, buckets: frozenset[int] | set[int]) -> None:
        """Drop queued operations of buckets no longer owned. A slot keeps its queue
        time (`_since` is per slot, not per operation): when the dropped operations were
        the slot's oldest (refused ones merged back), the others' latency is reported
        from that earlier time, over-stated by as long as the dropped ones had waited
        (usually about one flush interval). The buckets' kept partials go too."""
        self.partials.forget(buckets)
        for slot, batch in list(self._pending.items()):
            batch.drop(buckets)
            if not batch.segments:
                del self._pending[slot]
                self._since.pop(slot, None)

    async def flush(self, owner: str) -> FlushResult:
        """Write everything queued, burials first. Batches that fail stay queued for the
        next flush."""
        result = FlushResult()
        if self._burials:
            await self._bury(result)
        partials = self.partials.ops()
        if partials:
            self._put(partials, time.monotonic())
        if not self._pending:
            return result
        batches = self._pending
        since = self._since
        self._pending, self._since = {}, {}
        self._added = 0
        semaphore = asyncio.Semaphore(MAX_CONCURRENT_WRITES)

        pieces, sizes = _pieces(batches.items())
        settled: set[int] = set()
        """Pieces acknowledged by the store or queued again: the others go back to the
        queue if this flush is cancelled (a target restarting, shutdown)."""

        def requeue(slot: int, batch: Batch) -> None:
            self.merge(slot, batch, since=since.get(slot))

        async def write(chunk: list[int]) -> None:
            async with semaphore:
                try:
                    outcomes = await self.store.write_batches(owner, [pieces[i] for i in chunk])
                except StoreError:
                    for i in chunk:
                        result.failed_slots += 1
                        requeue(*pieces[i])
                        settled.add(i)
                    return
            acked = time.monotonic()
            for i, outcome in zip(chunk, outcomes, strict=True):
                slot, batch = pieces[i]
                settled.add(i)
                if isinstance(outcome, StoreError):
                    result.failed_slots += 1
                    requeue(slot, batch)
                    continue
                written = sizes[i]
                if outcome:
                    refused = batch.select(outcome)
                    result.refused.update(outcome)
                    result.refused_batches.append((slot, refused, since.get(slot, acked)))
                    written -= len(refused)
                    if len(refused.segments) == len(batch.segments):
                        continue  # nothing of this piece was stored: no write, no latency
                result.written += written
                result.slots += 1
                result.latencies.append(acked - since.get(slot, acked))

        try:
            await asyncio.gather(*(write(chunk) for chunk in _chunks(sizes)))
        except BaseException:
            # Unacknowledged pieces may or may not have been applied: writing them again
            # is harmless (newer operations queued since still win), losing them is not.
            for i, (slot, batch) in enumerate(pieces):
                if i not in settled:
                    requeue(slot, batch)
            # Refused operations too: the caller, which would queue them again, never
            # sees this result.
            for slot, batch, queued in result.refused_batches:
                self.merge(slot, batch, since=queued)
            raise
        return result

    async def _bury(self, result: FlushResult) -> None:
        """Send the queued burials. One that fails is kept for the next flush, and the
        batches go out anyway: a store node that fails must not hold every write of the
        shard, and the dead object's owner deletes its fields in any case (the overlap
        then lasts until it does, as without burials)."""
        burials, self._burials = self._burials, []
        try:
            await self.store.bury(burials)
        except StoreError:
            result.burial_failed = True
            self._burials = burials[-MAX_BURIALS:] + self._burials
        except BaseException:
            self._burials = burials + self._burials
            raise
        else:
            result.buried = len(burials)


def _pieces(batches: Iterable[tuple[int, Batch]]) -> tuple[list[tuple[int, Batch]], list[int]]:
    """Slot batches, the large ones cut into pieces of whole buckets of about
    `ROUND_TRIP_FIELDS` fields: one script call never holds Redis for long (a queue
    that grew during an outage would otherwise go out as one huge call). With each
    piece's field count (counting walks every object: once per flush)."""
    out: list[tuple[int, Batch]] = []
    sizes: list[int] = []
    for slot, batch in batches:
        piece, fields = Batch(), 0
        for bucket, objects in batch.segments.items():
            piece.segments[bucket] = objects
            fields += bucket_fields(objects)
            if fields >= ROUND_TRIP_FIELDS:
                out.append((slot, piece))
                sizes.append(fields)
                piece, fields = Batch(), 0
        if piece.segments:
            out.append((slot, piece))
            sizes.append(fields)
    return out, sizes


def _chunks(sizes: list[int]) -> list[list[int]]:
    """Indices of pieces (by their field counts) grouped into round trips of about
    `ROUND_TRIP_FIELDS` fields."""
    out: list[list[int]] = []
    chunk: list[int] = []
    fields = 0
    for i, size in enumerate(sizes):
        chunk.append(i)
        fields += size
        if fields >= ROUND_TRIP_FIELDS:
            out.append(chunk)
            chunk, fields = [], 0
    if chunk:
        out.append(chunk)
    return out


class Ownership:
    """The buckets this shard owns and has claimed in the store."""

    def __init__(self, store: Store, shard: int) -> None:
        self.store = store
        self.shard = shard
        self.ring: Ring | None = None
        self.owned: frozenset[int] = frozenset()
        """Buckets claimed in the store (a subset of `assigned`)."""
        self.assigned: frozenset[int] = frozenset()
        """Buckets the ring gives this shard."""
        self.refused: set[int] = set()

    @property
    def token(self) -> str:
        return token(self.shard, self.ring.generation if self.ring else 0)

    async def adopt(self, ring: Ring) -> tuple[frozenset[int], frozenset[int]]:
        """Switch to `ring`: claim the buckets it gives this shard; return (gained, lost).

        Buckets the store refuses (owned at a newer generation: this shard lags) are
        not owned until a later ring says otherwise."""
        wanted = ring.buckets_of(self.shard) if self.shard < ring.shards else frozenset()
        previous = self.owned
        claimed = await self._claim(wanted, ring.generation)
        self.ring = ring  # only once claimed: a failed adoption leaves everything as it was
        self.assigned = wanted
        self.owned = frozenset(claimed)
        return self.owned - previous, previous - self.owned

    async def claim(self, buckets: Iterable[int]) -> set[int]:
        assert self.ring is not None
        return await self._claim(buckets, self.ring.generation)

    async def _claim(self, buckets: Iterable[int], generation: int) -> set[int]:
        layout = self.store.layout
        by_slot: dict[int, list[int]] = {}
        for b in buckets:
            by_slot.setdefault(layout.slot_of(b), []).append(b)
        claimed: set[int] = set()
        self.refused = set()
        for slot, slot_buckets in sorted(by_slot.items()):
            result = await self.store.claim(slot, self.shard, generation, slot_buckets)
            claimed.update(result.claimed)
            self.refused.update(result.refused)
        return claimed

    def lose(self, buckets: Iterable[int]) -> None:
        """Another shard owns `buckets` now."""
        self.owned = self.owned - frozenset(buckets)

    async def reclaim(self, buckets: Iterable[int]) -> tuple[set[int], set[int]]:
        """After refused writes: claim the owned ones among `buckets` again.

        A refusal means the store's owner token differs from ours: either another shard
        claimed the bucket at a newer ring generation (the claim is refused too: the
        bucket is lost), or the store forgot its owners (Redis restarted empty: the claim
        succeeds and the bucket stays ours). Returns (kept, lost)."""
        mine = set(buckets) & self.owned
        kept = await self.claim(mine) if mine and self.ring is not None else set()
        lost = set(buckets) - kept
        self.lose(lost)
        return kept, lost


async def collect_garbage(
    store: Store,
    owner: str,
    buckets: frozenset[int],
    families: Sequence[str],
    live_in: Callable[[str], Callable[[str], bool]],
    *,
    guard: asyncio.Lock | None = None,
) -> int:
    """Delete stored series in `buckets` that the shard does not render any more.

    Covers what changed while a bucket had no running owner (its shard was down, or
    the bucket was moving): after a sync, a field the store holds for an owned bucket
    but the shard does not render (`live_in(family)(uid)` is false) belongs to an
    object that no longer exists, or that no longer has lines in that family (a field
    it lost, a family whose config was deleted).

    `live_in` is asked at decision time, and `guard` (the flush lock) is held from
    reading a slot to writing its deletes, so an object that appears meanwhile is
    never collected: its own write is queued behind the guard. Deletes go through the
    fenced write, so a lagging shard cannot collect a bucket it lost."""
    layout = store.layout
    space = layout.space
    slots = sorted({layout.slot_of(b) for b in buckets})
    deleted = 0
    for slot in slots:
        async with guard or contextlib.nullcontext():
            ops: list[Op] = []
            stored = await store.fields_of(slot, families)
            for family, uids in zip(families, stored, strict=True):
                live = live_in(family)
                for uid in uids:
                    if live(uid):
                        continue  # checked first: hashing every uid would cost more
                    bucket = field_bucket(uid)
                    if bucket is None:
                        bucket = space.bucket(uid)
                    if bucket in buckets:
                        ops.append(Op(family, bucket, uid, None))
            if ops:
                await store.write(slot, owner, ops)
                deleted += len(ops)
    return deleted
