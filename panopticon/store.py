"""The store: where shards put rendered lines and the aggregator reads them.

Invariant: **render on change, concatenate on scrape.** Shards render an object's
series when the object or a config changes and store the bytes; a scrape only reads
and concatenates them, family by family, never rendering anything.

Layout (Redis; the in-process store of embedded mode keeps the same shape):

    {p}:layout                 JSON {"version", "buckets", "slots"}: set once, checked by all
    {p}:epoch                  random token; a new token means the store lost its data
    {p}:registry               hash family -> JSON {"t": text header, "o": OpenMetrics header,
                                                    "c": [configs]}
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

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import orjson

from panopticon.buckets import BucketSpace
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


@dataclass(frozen=True, slots=True)
class ClaimResult:
    claimed: tuple[int, ...]
    refused: tuple[int, ...]
    """Buckets owned at a newer generation (or by another shard at the same one)."""


class Store(Protocol):
    """What shards and aggregators need from a store (Redis, or in-process)."""

    layout: Layout

    async def ensure_layout(self) -> None:
        """Record the layout, or check it matches the recorded one (StoreError if not)."""

    async def epoch(self) -> str:
        """The store's epoch token, created when absent (a changed token: data was lost)."""

    async def claim(self, slot: int, shard: int, generation: int, buckets: Sequence[int]) -> ClaimResult: ...

    async def write(self, slot: int, owner: str, ops: Sequence[Op]) -> list[int]:
        """Apply `ops` for the buckets `owner` still owns; return the refused buckets."""

    async def fields(self, slot: int, family: str) -> list[str]:
        """The uids present in one family hash (for garbage collection)."""

    async def set_registry(self, entries: dict[str, RegistryEntry], remove: Sequence[str]) -> None: ...

    async def registry(self) -> dict[str, RegistryEntry]: ...

    async def heartbeat(self, shard: int, info: dict[str, object]) -> None: ...

    async def forget_shard(self, shard: int) -> None:
        """Remove a shard's heartbeat (it stopped on purpose)."""

    async def shards(self) -> dict[int, dict[str, object]]: ...

    def read_family(self, family: str) -> AsyncIterator[bytes]:
        """Every stored line of `family`, slot after slot, as chunks of whole lines."""
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
# ARGV[1] = owner token, ARGV[2] = k, ARGV[3..2+k] = buckets in the batch, then groups
# of five: key index, bucket position (1..k), 's' or 'd', uid, value.
# Applies the operations of the buckets whose owner is still the token; returns the
# refused buckets. Commands are batched per key; unpack is chunked under Lua's limit.
WRITE_SCRIPT = """
local owner = ARGV[1]
local k = tonumber(ARGV[2])
local ok, refused = {}, {}
for i = 1, k do
  local b = ARGV[2 + i]
  ok[i] = (redis.call('HGET', KEYS[1], b) == owner)
  if not ok[i] then refused[#refused + 1] = b end
end
local sets, dels = {}, {}
local i = 3 + k
while i <= #ARGV do
  if ok[tonumber(ARGV[i + 1])] then
    local key = tonumber(ARGV[i])
    if ARGV[i + 2] == 's' then
      local t = sets[key]
      if not t then t = {}; sets[key] = t end
      t[#t + 1] = ARGV[i + 3]; t[#t + 1] = ARGV[i + 4]
    else
      local t = dels[key]
      if not t then t = {}; dels[key] = t end
      t[#t + 1] = ARGV[i + 3]
    end
  end
  i = i + 5
end
for key, t in pairs(sets) do
  for j = 1, #t, 4000 do
    redis.call('HSET', KEYS[key], unpack(t, j, math.min(j + 3999, #t)))
  end
end
for key, t in pairs(dels) do
  for j = 1, #t, 4000 do
    redis.call('HDEL', KEYS[key], unpack(t, j, math.min(j + 3999, #t)))
  end
end
return refused
"""


def write_arguments(
    layout: Layout, slot: int, owner: str, ops: Sequence[Op]
) -> tuple[list[str], list[bytes | str]]:
    """KEYS and ARGV of `WRITE_SCRIPT` for one slot's batch."""
    keys = [layout.owners_key(slot)]
    key_index: dict[str, int] = {}
    bucket_pos: dict[int, int] = {}
    body: list[bytes | str] = []
    for op in ops:
        ki = key_index.get(op.family)
        if ki is None:
            keys.append(layout.family_key(slot, op.family))
            ki = key_index[op.family] = len(keys)
        bp = bucket_pos.get(op.bucket)
        if bp is None:
            bp = bucket_pos[op.bucket] = len(bucket_pos) + 1
        body.extend((str(ki), str(bp), "s" if op.value is not None else "d", op.uid, op.value or b""))
    args: list[bytes | str] = [owner, str(len(bucket_pos)), *(str(b) for b in bucket_pos)]
    args.extend(body)
    return keys, args
