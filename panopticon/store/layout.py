"""The store: where shards put rendered lines and the aggregator reads them.

Invariant: **render on change, concatenate on scrape.** Shards render an object's
series when the object or a config changes and store the bytes; a scrape only reads
and concatenates them, family by family, never rendering anything.

Layout (Redis; the in-process store of embedded mode keeps the same shape):

    {p}:layout                 JSON {"version", "buckets", "slots"}: set once, checked by all
    {p}:epoch                  random token; a new token means the store lost its data
    {p}:registry               hash family -> JSON {"t": text header, "o": OpenMetrics header,
                                                    "c": [configs], "a": aggregate function
                                                    (aggregate families only)}
    {p}:retired                hash family -> unix time it was unregistered (its fields
                               left in the slots are garbage, collected by each shard;
                               dropped once no slot holds any and a grace period passed)
    {p}:shards                 hash shard index -> JSON heartbeat
    {p}:rings                  hash: the ring lineages seen and their bases, the current one, the
                               highest fence handed out (`panopticon.sharding.fencing`)
    {p}:{s<slot>}:owners       hash bucket -> "<shard index>:<ring fence>" (fencing)
    {p}:{s<slot>}:writes       hash shard index -> writes of that shard's to the slot (a
                               store that forgot acknowledged writes answers less:
                               `panopticon.store.writemarks`)
    {p}:{s<slot>}:f:<family>   hash object uid -> that object's lines of that family; for an
                               aggregate family, `#<bucket>` -> the bucket's partial
                               aggregate instead (one line per group: `bucket_field`)

Objects fall into `buckets` buckets (ownership, see `panopticon.sharding.buckets`); buckets
group into `slots` storage slots (the top bits again, so a slot is a contiguous hash
range). A slot's keys share the hash tag `{s<slot>}`, so one Lua script can check
ownership and write a batch atomically, on a single Redis or on Redis Cluster.

Fencing: a shard first claims its buckets (`CLAIM_SCRIPT`: allowed when the bucket is
unowned or owned at an older ring fence, a number the store keeps growing across
StatefulSets recreated: `panopticon.sharding.fencing`), then writes only through
`WRITE_SCRIPT` (`panopticon.store.writescript`), which applies a batch's operations for the
buckets whose owner token is still the writer's and reports the others. A shard that lost a bucket (or lags
behind a ring change) can therefore never overwrite the current owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from panopticon.render.exposition import FamilyHeader
from panopticon.sharding.buckets import BucketSpace

LAYOUT_VERSION = 1
"""Unchanged by per-bucket aggregate partials (`bucket_field`): releases before them
stored no aggregate family, and the one that stored per-object partials is rolled
over in place (docs/operations.md, Upgrades); the layout record only refuses mixes
of --buckets/--slots, or a future version."""
BUCKET_FIELD = "#"
"""What starts the field of a bucket's partial aggregate: no Kubernetes uid does (they
are UUIDs), and a family holds either uids (plain) or buckets (aggregate), never both."""
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


def layout_advice(recorded: bytes, mine: bytes) -> str:
    """What to do about a store whose recorded layout (`Layout.describe`) differs."""
    try:
        version = orjson.loads(recorded).get("version")
    except (orjson.JSONDecodeError, AttributeError):
        version = None
    if version != LAYOUT_VERSION:
        return (
            "the store was written by another release (layout version); start this one under a "
            "new --prefix, or empty the store (docs/operations.md, Upgrades)"
        )
    return "use the same --buckets/--slots everywhere"


def bucket_field(bucket: int) -> str:
    """The field of an aggregate family's hash holding `bucket`'s partial aggregate."""
    return f"{BUCKET_FIELD}{bucket}"


def field_bucket(field: str) -> int | None:
    """The bucket of a `bucket_field`, None for any other field (an object uid)."""
    if field[:1] != BUCKET_FIELD or not field[1:].isdigit() or not field[1:].isascii():
        return None
    return int(field[1:])


def token(shard: int, generation: int) -> str:
    """The owner token a shard writes with."""
    return f"{shard}:{generation}"


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """A family as the aggregator serves it."""

    text_header: bytes
    om_header: bytes
    configs: tuple[str, ...]
    aggregate: str | None = None
    """An aggregate family's function (`panopticon.render.aggregate`): its stored lines are
    partials the scrape combines. Stored as `"a"`, only when set, so the entries of
    other families read and write as before."""

    @classmethod
    def of(cls, header: FamilyHeader, configs: Sequence[str]) -> RegistryEntry:
        function = header.aggregate.function if header.aggregate is not None else None
        return cls(header.text(), header.openmetrics(), tuple(configs), function)

    def encode(self) -> bytes:
        data: dict[str, object] = {
            "t": self.text_header.decode(),
            "o": self.om_header.decode(),
            "c": list(self.configs),
        }
        if self.aggregate is not None:
            data["a"] = self.aggregate
        return orjson.dumps(data)

    @classmethod
    def decode(cls, raw: bytes) -> RegistryEntry:
        data = orjson.loads(raw)
        function = data.get("a")
        aggregate = function if isinstance(function, str) else None
        return cls(data["t"].encode(), data["o"].encode(), tuple(data["c"]), aggregate)
