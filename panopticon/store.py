"""The store: where shards put rendered lines and the aggregator reads them.

Invariant: **render on change, concatenate on scrape.** Shards render an object's
series when the object or a config changes and store the bytes; a scrape only reads
and concatenates them, family by family, never rendering anything.

Layout (Redis; the in-process store of embedded mode keeps the same shape):

    {p}:layout                 JSON {"version", "buckets", "slots"}: set once, checked by all
    {p}:epoch                  random token; a new token means the store lost its data
    {p}:registry               hash family -> JSON {"t": text header, "o": OpenMetrics header,
                                                    "c": [configs]}
    {p}:retired                hash family -> unix time it was unregistered (its fields
                               left in the slots are garbage, collected by each shard)
    {p}:shards                 hash shard index -> JSON heartbeat
    {p}:{s<slot>}:owners       hash bucket -> "<shard index>:<ring generation>" (fencing)
    {p}:{s<slot>}:f:<family>   hash object uid -> that object's lines of that family

Objects fall into `buckets` buckets (ownership, see `panopticon.buckets`); buckets
group into `slots` storage slots (the top bits again, so a slot is a contiguous hash
range). A slot's keys share the hash tag `{s<slot>}`, so one Lua script can check
ownership and write a batch atomically, on a single Redis or on Redis Cluster.

Fencing: a shard first claims its buckets (`CLAIM_SCRIPT`: allowed when the bucket is
unowned or owned at an older ring generation), then writes only through
`WRITE_SCRIPT`, which applies a batch's operations for the buckets whose owner token
is still the writer's and reports the others. A shard that lost a bucket (or lags
behind a ring change) can therefore never overwrite the current owner.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Literal, Protocol

import orjson

from panopticon.buckets import BucketSpace
from panopticon.errors import StoreError
from panopticon.exposition import FamilyHeader

LAYOUT_VERSION = 1
DEFAULT_SLOTS = 64
"""Storage slots: few enough that a scrape reads families × slots hashes quickly,
enough to spread a Redis Cluster and keep write batches small."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Key names and partitioning, identical in every shard and aggregator."""

    prefix: str = "pan"
    buckets: int = 4096
    slots: int = DEFAULT_SLOTS

    def __post_init__(self) -> None:
        BucketSpace(self.buckets)  # validates the power of two
        if self.slots < 1 or self.slots & (self.slots - 1) or self.slots > self.buckets:
            raise ValueError(f"slots must be a power of two between 1 and the bucket count, not {self.slots}")
        if not self.prefix or any(c in self.prefix for c in "{} \n"):
            raise ValueError(f"invalid key prefix {self.prefix!r}")

    @property
    def space(self) -> BucketSpace:
        return BucketSpace(self.buckets)

    def slot_of(self, bucket: int) -> int:
        return bucket // (self.buckets // self.slots)

    def buckets_of_slot(self, slot: int) -> range:
        width = self.buckets // self.slots
        return range(slot * width, (slot + 1) * width)

    def describe(self) -> bytes:
        return orjson.dumps({"version": LAYOUT_VERSION, "buckets": self.buckets, "slots": self.slots})

    @property
    def layout_key(self) -> str:
        return f"{self.prefix}:layout"

    @property
    def epoch_key(self) -> str:
        return f"{self.prefix}:epoch"

    @property
    def registry_key(self) -> str:
        return f"{self.prefix}:registry"

    @property
    def retired_key(self) -> str:
        return f"{self.prefix}:retired"

    @property
    def shards_key(self) -> str:
        return f"{self.prefix}:shards"

    def owners_key(self, slot: int) -> str:
        return f"{self.prefix}:{{s{slot}}}:owners"

    def family_key(self, slot: int, family: str) -> str:
        return f"{self.prefix}:{{s{slot}}}:f:{family}"


def token(shard: int, generation: int) -> str:
    """The owner token a shard writes with."""
    return f"{shard}:{generation}"


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """A family as the aggregator serves it."""

    text_header: bytes
    om_header: bytes
    configs: tuple[str, ...]

    @classmethod
    def of(cls, header: FamilyHeader, configs: Sequence[str]) -> RegistryEntry:
        return cls(header.text(), header.openmetrics(), tuple(configs))

    def encode(self) -> bytes:
        return orjson.dumps(
            {"t": self.text_header.decode(), "o": self.om_header.decode(), "c": list(self.configs)}
        )

    @classmethod
    def decode(cls, raw: bytes) -> RegistryEntry:
        data = orjson.loads(raw)
        return cls(data["t"].encode(), data["o"].encode(), tuple(data["c"]))


@dataclass(frozen=True, slots=True)
class Op:
    """One field operation in a write batch: set `uid`'s lines of `family`, or delete them."""

    family: str
    bucket: int
    uid: str
    value: bytes | None  # None deletes


class Batch:
    """Field operations of one slot, grouped as the write script takes them.

    `segments` maps (family, bucket) to ({uid: lines to set}, {uids to delete}); a later
    operation on a field replaces an earlier one, so bursts of updates coalesce."""

    __slots__ = ("count", "segments")

    def __init__(self) -> None:
        self.segments: dict[tuple[str, int], tuple[dict[str, bytes], set[str]]] = {}
        self.count = 0
        """Distinct fields with an operation (kept as operations are put and dropped)."""

    @classmethod
    def of(cls, ops: Iterable[Op]) -> Batch:
        batch = cls()
        for op in ops:
            batch.put(op.family, op.bucket, op.uid, op.value)
        return batch

    def put(self, family: str, bucket: int, uid: str, value: bytes | None) -> None:
        segment = self.segments.get((family, bucket))
        if segment is None:
            segment = self.segments[(family, bucket)] = ({}, set())
        sets, dels = segment
        if value is None:
            if sets.pop(uid, None) is None and uid not in dels:
                self.count += 1
            dels.add(uid)
        else:
            if uid in dels:
                dels.discard(uid)
            elif uid not in sets:
                self.count += 1
            sets[uid] = value

    def merge(self, later: Batch) -> None:
        """Apply `later`'s operations on top of this batch's."""
        for (family, bucket), (sets, dels) in later.segments.items():
            for uid, value in sets.items():
                self.put(family, bucket, uid, value)
            for uid in dels:
                self.put(family, bucket, uid, None)

    def buckets(self) -> set[int]:
        return {bucket for _, bucket in self.segments}

    def select(self, buckets: Iterable[int]) -> Batch:
        """A batch of this one's operations in `buckets`."""
        wanted = set(buckets)
        out = Batch()
        out.segments = {key: seg for key, seg in self.segments.items() if key[1] in wanted}
        out.count = sum(len(sets) + len(dels) for sets, dels in out.segments.values())
        return out

    def drop(self, buckets: Iterable[int]) -> None:
        unwanted = set(buckets)
        for key in [k for k in self.segments if k[1] in unwanted]:
            sets, dels = self.segments.pop(key)
            self.count -= len(sets) + len(dels)

    def ops(self) -> list[Op]:
        out: list[Op] = []
        for (family, bucket), (sets, dels) in self.segments.items():
            out.extend(Op(family, bucket, uid, value) for uid, value in sets.items())
            out.extend(Op(family, bucket, uid, None) for uid in dels)
        return out

    def __len__(self) -> int:
        return self.count


@dataclass(frozen=True, slots=True)
class ClaimResult:
    claimed: tuple[int, ...]
    refused: tuple[int, ...]
    """Buckets owned at a newer generation (or by another shard at the same one)."""


async def read_family(store: Store, family: str) -> AsyncIterator[bytes]:
    """The chunks of one family (see `Store.read_families`)."""
    async for _, chunk in store.read_families([family]):
        yield chunk


class Store(Protocol):
    """What shards and aggregators need from a store (Redis, or in-process)."""

    layout: Layout

    async def ensure_layout(self) -> None:
        """Record the layout, or check it matches the recorded one (StoreError if not)."""

    async def epoch(self) -> tuple[str, bool]:
        """The store's epoch token, and whether this call created it (the store was empty).

        A token that changes while a shard runs means the store lost its data."""

    async def claim(self, slot: int, shard: int, generation: int, buckets: Sequence[int]) -> ClaimResult: ...

    async def write_batch(self, slot: int, owner: str, batch: Batch) -> list[int]:
        """Apply `batch` for the buckets `owner` still owns; return the refused buckets."""

    async def write_batches(
        self, owner: str, batches: Sequence[tuple[int, Batch]]
    ) -> list[list[int] | StoreError]:
        """`write_batch` of several slots at once (one round trip where the store can):
        per batch, the refused buckets or the error that left it unapplied."""

    async def write(self, slot: int, owner: str, ops: Sequence[Op]) -> list[int]:
        """`write_batch` of loose operations."""

    async def fields(self, slot: int, family: str) -> list[str]:
        """The uids present in one family hash (for garbage collection)."""

    async def set_registry(self, entries: dict[str, RegistryEntry], remove: Sequence[str]) -> None:
        """Register `entries` and unregister `remove`. Unregistered families are recorded
        as retired until registered again: whatever fields of theirs remain in a slot
        (written by a shard that was down when they were removed) are garbage that each
        shard collects in its own buckets."""

    async def registry(self) -> dict[str, RegistryEntry]: ...

    async def retired(self) -> set[str]:
        """Families unregistered and not registered since."""

    async def heartbeat(self, shard: int, info: dict[str, object]) -> None: ...

    async def forget_shard(self, shard: int) -> None:
        """Remove a shard's heartbeat (it stopped on purpose)."""

    async def shards(self) -> dict[int, dict[str, object]]: ...

    def read_families(self, families: Sequence[str]) -> AsyncIterator[tuple[str, bytes]]:
        """Every stored line of each family, in the order given, slot after slot, as
        `(family, chunk)` pairs; a chunk holds whole lines and is never empty."""
        ...

    async def close(self) -> None: ...


OpKind = Literal["s", "d"]

# KEYS[1] = owners hash of the slot. ARGV = shard index, generation, bucket ids...
# A bucket is claimed when unowned, owned at an older generation, or already ours.
CLAIM_SCRIPT = """
local shard = ARGV[1]
local gen = tonumber(ARGV[2])
local mine = shard .. ':' .. ARGV[2]
local claimed, refused = {}, {}
for i = 3, #ARGV do
  local b = ARGV[i]
  local cur = redis.call('HGET', KEYS[1], b)
  local ok = not cur
  if cur then
    local s, g = string.match(cur, '^(%d+):(%d+)$')
    g = tonumber(g)
    ok = (g == nil) or (g < gen) or (g == gen and s == shard)
  end
  if ok then
    redis.call('HSET', KEYS[1], b, mine)
    claimed[#claimed + 1] = b
  else
    refused[#refused + 1] = b
  end
end
return {claimed, refused}
"""

# KEYS[1] = owners hash of the slot, KEYS[2..] = family hashes of the slot.
# ARGV[1] = owner token, then segments, one per (bucket, family) in the batch:
#   bucket, key index, number of sets n, number of deletes m, n (uid, lines) pairs, m uids.
# Applies the segments of the buckets whose owner is still the token, as one HSET and
# one HDEL per segment (unpack chunked under Lua's C stack limit), and returns the
# refused buckets. Two arguments per written field keep the command small to pack.
WRITE_SCRIPT = """
local owner = ARGV[1]
local verdict, refused = {}, {}
local i, n = 2, #ARGV
while i <= n do
  local bucket = ARGV[i]
  local key = KEYS[tonumber(ARGV[i + 1])]
  local sets = tonumber(ARGV[i + 2])
  local dels = tonumber(ARGV[i + 3])
  i = i + 4
  local ok = verdict[bucket]
  if ok == nil then
    ok = (redis.call('HGET', KEYS[1], bucket) == owner)
    verdict[bucket] = ok
    if not ok then refused[#refused + 1] = bucket end
  end
  if ok then
    local last = i + 2 * sets - 1
    local j = i
    while j <= last do
      local k = math.min(j + 3999, last)
      redis.call('HSET', key, unpack(ARGV, j, k))
      j = k + 1
    end
    last = last + dels
    while j <= last do
      local k = math.min(j + 3999, last)
      redis.call('HDEL', key, unpack(ARGV, j, k))
      j = k + 1
    end
  end
  i = i + 2 * sets + dels
end
return refused
"""


def write_arguments(
    layout: Layout, slot: int, owner: str, batch: Batch
) -> tuple[list[str], list[bytes | str]]:
    """KEYS and ARGV of `WRITE_SCRIPT` for one slot's batch (C-speed list building:
    a large initial sync writes millions of fields)."""
    keys = [layout.owners_key(slot)]
    key_index: dict[str, int] = {}
    args: list[bytes | str] = [owner]
    for (family, bucket), (sets, dels) in batch.segments.items():
        if not sets and not dels:
            continue
        ki = key_index.get(family)
        if ki is None:
            keys.append(layout.family_key(slot, family))
            ki = key_index[family] = len(keys)
        args.extend((str(bucket), str(ki), str(len(sets)), str(len(dels))))
        args.extend(chain.from_iterable(sets.items()))
        args.extend(dels)
    return keys, args
