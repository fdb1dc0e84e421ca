"""The Store protocol: what shards and aggregators need from a store (Redis, or in-process).

Both stores (`panopticon.store.redisstore`, `panopticon.store.memory`) implement it with the
layout of `panopticon.store.layout`, fencing included, so the shard and the aggregator run the
same code in `panopticon run` and in the sharded deployment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from panopticon.errors import StoreError
from panopticon.store.batch import Batch, Burial, Op
from panopticon.store.layout import Layout, RegistryEntry


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
        (`panopticon.store.writemarks`): by the answers of writes since the last call, and by
        reading the write counters of every slot this process wrote. Each loss is
        reported once."""

    async def claim(self, slot: int, shard: int, generation: int, buckets: Sequence[int]) -> ClaimResult: ...

    async def ring_fence(
        self,
        lineage: str,
        generation: int,
        *,
        floor: int,
        renew: bool,
        expect: str | None = None,
        held: int = 0,
    ) -> int:
        """The fence of ring `generation` of `lineage` (`panopticon.sharding.fencing`): what its
        shards claim and write with; `fencing.SUPERSEDED` (0) for a lineage not to adopt.
        `expect`: the current lineage (`ring_lineage`, "" for none) read before the API
        server confirmed `lineage` live; None when unconfirmed. `held`: the fence the
        caller holds for this lineage and generation (0: none)."""

    async def ring_lineage(self) -> str | None:
        """The current ring lineage (`panopticon.sharding.fencing`), None before the first."""

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
