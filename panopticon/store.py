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
                               left in the slots are garbage, collected by each shard;
                               dropped once no slot holds any and a grace period passed)
    {p}:shards                 hash shard index -> JSON heartbeat
    {p}:rings                  hash: the ring lineages seen and their bases, the current one, the
                               highest fence handed out (`panopticon.fencing`)
    {p}:{s<slot>}:owners       hash bucket -> "<shard index>:<ring fence>" (fencing)
    {p}:{s<slot>}:writes       hash shard index -> writes of that shard's to the slot (a
                               store that forgot acknowledged writes answers less:
                               `panopticon.writemarks`)
    {p}:{s<slot>}:f:<family>   hash object uid -> that object's lines of that family

Objects fall into `buckets` buckets (ownership, see `panopticon.buckets`); buckets
group into `slots` storage slots (the top bits again, so a slot is a contiguous hash
range). A slot's keys share the hash tag `{s<slot>}`, so one Lua script can check
ownership and write a batch atomically, on a single Redis or on Redis Cluster.

Fencing: a shard first claims its buckets (`CLAIM_SCRIPT`: allowed when the bucket is
unowned or owned at an older ring fence, a number the store keeps growing across
StatefulSets recreated: `panopticon.fencing`), then writes only through
`WRITE_SCRIPT` (`panopticon.writescript`), which applies a batch's operations for the
buckets whose owner token is still the writer's and reports the others. A shard that lost a bucket (or lags
behind a ring change) can therefore never overwrite the current owner.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
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

    @property
    def rings_key(self) -> str:
        return f"{self.prefix}:rings"

    @property
    def valid_configs_key(self) -> str:
        return f"{self.prefix}:valid-configs"

    def owners_key(self, slot: int) -> str:
        return f"{self.prefix}:{{s{slot}}}:owners"

    def writes_key(self, slot: int) -> str:
        return f"{self.prefix}:{{s{slot}}}:writes"

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

    `segments` maps a bucket to {uid: {family: lines to set, or None to delete}}; a
    later operation on a field replaces an earlier one, so bursts of updates coalesce.
    Grouping by bucket then object keeps per-field work off the hot path: the script
    receives each uid once per object rather than once per family (a quarter fewer
    arguments to pack and send), and a relist's flush touches each bucket with about
    one object."""

    __slots__ = ("segments",)

    def __init__(self) -> None:
        self.segments: dict[int, dict[str, dict[str, bytes | None]]] = {}

    @classmethod
    def of(cls, ops: Iterable[Op]) -> Batch:
        batch = cls()
        for op in ops:
            batch.put(op.family, op.bucket, op.uid, op.value)
        return batch

    def put(self, family: str, bucket: int, uid: str, value: bytes | None) -> None:
        segment = self.segments.get(bucket)
        if segment is None:
            segment = self.segments[bucket] = {}
        fields = segment.get(uid)
        if fields is None:
            segment[uid] = {family: value}
        else:
            fields[family] = value

    def put_object(
        self, bucket: int, uid: str, sets: Iterable[tuple[str, bytes]], dels: Iterable[str]
    ) -> None:
        """One object's families to set and to delete (the render path)."""
        segment = self.segments.get(bucket)
        if segment is None:
            segment = self.segments[bucket] = {}
        fields: dict[str, bytes | None] | None = segment.get(uid)
        if fields is None:
            fields = segment[uid] = dict(sets)
        else:
            fields.update(sets)
        for family in dels:
            fields[family] = None

    def merge(self, later: Batch) -> None:
        """Apply `later`'s operations on top of this batch's."""
        for bucket, objects in later.segments.items():
            segment = self.segments.get(bucket)
            if segment is None:
                self.segments[bucket] = {uid: dict(fields) for uid, fields in objects.items()}
                continue
            for uid, fields in objects.items():
                mine = segment.get(uid)
                if mine is None:
                    segment[uid] = dict(fields)
                else:
                    mine.update(fields)

    def buckets(self) -> set[int]:
        return set(self.segments)

    def select(self, buckets: Iterable[int]) -> Batch:
        """A batch of this one's operations in `buckets`."""
        wanted = set(buckets)
        out = Batch()
        out.segments = {bucket: objects for bucket, objects in self.segments.items() if bucket in wanted}
        return out

    def drop(self, buckets: Iterable[int]) -> None:
        for bucket in set(buckets):
            self.segments.pop(bucket, None)

    def ops(self) -> list[Op]:
        return [
            Op(family, bucket, uid, value)
            for bucket, objects in self.segments.items()
            for uid, fields in objects.items()
            for family, value in fields.items()
        ]

    def __len__(self) -> int:
        """Distinct fields with an operation."""
        return sum(bucket_fields(objects) for objects in self.segments.values())


def bucket_fields(objects: dict[str, dict[str, bytes | None]]) -> int:
    """Field operations of one bucket's objects."""
    return sum(map(len, objects.values()))


@dataclass(frozen=True, slots=True)
class Burial:
    """The fields of a dead object in one slot, to delete unfenced (`Store.bury`): an
    object deleted, whose name a new object holds now (`shard.successors`)."""

    slot: int
    uid: str
    families: tuple[str, ...]


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

    async def servers(self) -> dict[str, str]:
        """Each server's run id, by address: a new run id is a restart or a failover
        (which may have lost acknowledged writes, see `lost_writes`)."""

    async def lost_writes(self) -> set[int]:
        """Slots found to hold fewer of this process's writes than they acknowledged
        (`panopticon.writemarks`): by the answers of writes since the last call, and by
        reading the write counters of every slot this process wrote. Each loss is
        reported once."""

    async def claim(self, slot: int, shard: int, generation: int, buckets: Sequence[int]) -> ClaimResult: ...

    async def ring_fence(self, lineage: str, generation: int, *, floor: int, renew: bool) -> int:
        """The fence of ring `generation` of `lineage` (`panopticon.fencing`): what its
        shards claim and write with; `fencing.SUPERSEDED` (0) for a replaced lineage."""

    async def owners(self) -> dict[int, str]:
        """Every owned bucket's owner token (4096 short fields: a few ms on Redis)."""

    async def write_batch(self, slot: int, owner: str, batch: Batch) -> list[int]:
        """Apply `batch` for the buckets `owner` still owns; return the refused buckets."""

    async def write_batches(
        self, owner: str, batches: Sequence[tuple[int, Batch]]
    ) -> list[list[int] | StoreError]:
        """`write_batch` of several slots at once (one round trip where the store can):
        per batch, the refused buckets or the error that left it unapplied."""

    async def write(self, slot: int, owner: str, ops: Sequence[Op]) -> list[int]:
        """`write_batch` of loose operations."""

    async def bury(self, burials: Sequence[Burial]) -> None:
        """Delete the fields of dead objects, whoever owns their buckets: unfenced, which
        is safe because the uid is dead for good (deleting its fields is what its owner
        does anyway, and doing it twice is harmless)."""

    async def fields(self, slot: int, family: str) -> list[str]:
        """The uids present in one family hash (for garbage collection)."""

    async def fields_of(self, slot: int, families: Sequence[str]) -> list[list[str]]:
        """`fields` of several families of one slot, in their order (one round trip)."""

    async def set_registry(self, entries: dict[str, RegistryEntry], remove: Sequence[str]) -> None:
        """Register `entries` and unregister `remove`. Unregistered families are recorded
        as retired until registered again: whatever fields of theirs remain in a slot
        (written by a shard that was down when they were removed) are garbage that each
        shard collects in its own buckets."""

    async def registry(self) -> dict[str, RegistryEntry]: ...

    async def retired(self) -> set[str]:
        """Families unregistered and not registered since."""

    async def retired_since(self) -> dict[str, int]:
        """`retired`, each with the unix time (seconds) it was retired."""

    async def family_stored(self, family: str) -> bool:
        """Whether any slot holds a field of `family`."""

    async def drop_retired(self, family: str, since: int) -> bool:
        """Take `family` out of the retired set if it is still there since `since` (not
        registered, nor retired again, meanwhile); True if it was taken out."""

    async def heartbeat(self, shard: int, info: dict[str, object]) -> None: ...

    async def forget_shard(self, shard: int) -> None:
        """Remove a shard's heartbeat (it stopped on purpose)."""

    async def shards(self) -> dict[int, dict[str, object]]: ...

    async def save_valid_config(self, name: str, record: bytes) -> None:
        """Keep the last valid version of config `name` (see `shard.configs`): a shard
        that starts after a bad edit serves it, as the shards that saw it do."""

    async def valid_config(self, name: str) -> bytes | None:
        """The record `save_valid_config` kept for `name`, if any."""

    async def forget_valid_config(self, name: str) -> None:
        """The config was deleted: its last valid version goes with it."""

    def read_families(
        self, families: Sequence[str], slots: Sequence[int] | None = None
    ) -> AsyncIterator[tuple[str, bytes]]:
        """Every stored line of each family, in the order given, slot after slot (only
        `slots`, ascending, when given: a partitioned scrape), as `(family, chunk)`
        pairs; a chunk holds whole lines and is never empty."""
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

# KEYS[1] = the retired hash. ARGV = family, the time it was retired as read.
# Removes the family only if it is still retired since that time: registered again
# meanwhile (gone from the hash) or retired again (a newer time), it stays as it is.
DROP_RETIRED_SCRIPT = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""


async def write_each(
    store: Store, owner: str, batches: Sequence[tuple[int, Batch]]
) -> list[list[int] | StoreError]:
    """`Store.write_batches` as one `write_batch` per slot, each with its own outcome
    (for stores that cannot send several slots in one exchange)."""
    out: list[list[int] | StoreError] = []
    for slot, batch in batches:
        try:
            out.append(await store.write_batch(slot, owner, batch))
        except StoreError as e:
            out.append(e)
    return out
