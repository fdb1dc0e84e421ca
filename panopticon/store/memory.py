"""The in-process store of embedded mode: the Redis layout's semantics in dicts.

Same contract as the Redis store (`panopticon.store.Store`), fencing included, so the
shard and the aggregator run the same code in `panopticon run` as in a sharded
deployment. Everything happens on the event loop's thread; no locks are needed.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Sequence

from panopticon.errors import StoreError
from panopticon.sharding.fencing import ring_fence
from panopticon.store.batch import Batch, Burial, Op
from panopticon.store.contract import ClaimResult, write_each
from panopticon.store.layout import Layout, RegistryEntry, token
from panopticon.store.writemarks import WriteMarks, writer_of


class MemoryStore:
    def __init__(self, layout: Layout | None = None) -> None:
        self.layout = layout or Layout()
        self._layout_seen: Layout | None = None
        self._epoch: str | None = None
        self._owners: dict[int, str] = {}
        self._families: dict[tuple[str, int], dict[str, bytes]] = {}
        self._registry: dict[str, RegistryEntry] = {}
        self._retired: dict[str, int] = {}
        self._shards: dict[int, dict[str, object]] = {}
        self._rings: dict[str, int | str] = {}
        self._valid_configs: dict[str, bytes] = {}
        self._writes: dict[tuple[str, int], int] = {}
        self._run_id = secrets.token_hex(20)
        self._marks = WriteMarks()

    async def ensure_layout(self) -> None:
        if self._layout_seen is None:
            self._layout_seen = self.layout
        elif self._layout_seen != self.layout:
            raise StoreError(f"store layout is {self._layout_seen}, this process uses {self.layout}")

    async def epoch(self) -> tuple[str, bool]:
        if self._epoch is None:
            self._epoch = secrets.token_hex(8)
            return self._epoch, True
        return self._epoch, False

    async def servers(self) -> dict[str, str]:
        return {"": self._run_id}

    async def lost_writes(self) -> set[int]:
        floors = self._marks.floors()
        self._marks.compare(floors, {mark: self._writes.get(mark, 0) for mark in floors})
        return self._marks.take_lost()

    async def claim(self, slot: int, shard: int, generation: int, buckets: Sequence[int]) -> ClaimResult:
        claimed: list[int] = []
        refused: list[int] = []
        for b in buckets:
            cur = self._owners.get(b)
            ok = cur is None
            if cur is not None:
                owner, _, gen = cur.partition(":")
                ok = int(gen) < generation or (int(gen) == generation and owner == str(shard))
            if ok:
                self._owners[b] = token(shard, generation)
                claimed.append(b)
            else:
                refused.append(b)
        return ClaimResult(tuple(claimed), tuple(refused))

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
        return ring_fence(
            self._rings, lineage, generation, floor=floor, renew=renew, expect=expect, held=held
        )

    async def ring_lineage(self) -> str | None:
        current = self._rings.get("current")
        return None if current is None else str(current)

    async def owners(self) -> dict[int, str]:
        return dict(self._owners)

    async def write(self, slot: int, owner: str, ops: Sequence[Op]) -> list[int]:
        return await self.write_batch(slot, owner, Batch.of(ops))

    async def write_batches(
        self, owner: str, batches: Sequence[tuple[int, Batch]]
    ) -> list[list[int] | StoreError]:
        return await write_each(self, owner, batches)

    async def write_batch(self, slot: int, owner: str, batch: Batch) -> list[int]:
        # As the Redis script: a bucket with nothing to write is not checked (not refused).
        refused = sorted(
            {b for b, objects in batch.segments.items() if objects and self._owners.get(b) != owner}
        )
        rejected = set(refused)
        mark = (writer_of(owner), slot)
        written = self._writes[mark] = self._writes.get(mark, 0) + 1
        self._marks.acknowledged(mark[0], slot, written)
        for bucket, objects in batch.segments.items():
            if bucket in rejected:
                continue
            for uid, values in objects.items():
                for family, value in values.items():
                    if value is not None:
                        self._families.setdefault((family, slot), {})[uid] = value
                        continue
                    # As Redis does, a hash goes with its last field: a family renamed
                    # at every config edit would otherwise leave an empty dict per slot.
                    fields = self._families.get((family, slot))
                    if fields is not None:
                        fields.pop(uid, None)
                        if not fields:
                            del self._families[(family, slot)]
        return refused

    async def bury(self, burials: Sequence[Burial]) -> None:
        for burial in burials:
            for family in burial.families:
                fields = self._families.get((family, burial.slot))
                if fields is not None and fields.pop(burial.uid, None) is not None and not fields:
                    del self._families[(family, burial.slot)]

    async def fields(self, slot: int, family: str) -> list[str]:
        return (await self.fields_of(slot, [family]))[0]

    async def fields_of(self, slot: int, families: Sequence[str]) -> list[list[str]]:
        return [list(self._families.get((family, slot), {})) for family in families]

    async def set_registry(self, entries: dict[str, RegistryEntry], remove: Sequence[str]) -> None:
        self._registry.update(entries)
        for family in entries:
            self._retired.pop(family, None)
        now = int(time.time())
        for family in remove:
            self._registry.pop(family, None)
            self._retired[family] = now

    async def registry(self) -> dict[str, RegistryEntry]:
        return dict(self._registry)

    async def retired(self) -> set[str]:
        return set(self._retired)

    async def retired_since(self) -> dict[str, int]:
        return dict(self._retired)

    async def family_stored(self, family: str) -> bool:
        return any((family, slot) in self._families for slot in range(self.layout.slots))

    async def drop_retired(self, family: str, since: int) -> bool:
        if self._retired.get(family) != since:
            return False
        del self._retired[family]
        return True

    async def heartbeat(self, shard: int, info: dict[str, object]) -> None:
        self._shards[shard] = dict(info)

    async def forget_shard(self, shard: int) -> None:
        self._shards.pop(shard, None)

    async def save_valid_config(self, name: str, record: bytes) -> None:
        self._valid_configs[name] = record

    async def valid_config(self, name: str) -> bytes | None:
        return self._valid_configs.get(name)

    async def forget_valid_config(self, name: str) -> None:
        self._valid_configs.pop(name, None)

    async def shards(self) -> dict[int, dict[str, object]]:
        return {k: dict(v) for k, v in self._shards.items()}

    async def read_families(
        self, families: Sequence[str], slots: Sequence[int] | None = None
    ) -> AsyncIterator[tuple[str, bytes]]:
        chosen = range(self.layout.slots) if slots is None else slots
        for family in families:
            for slot in chosen:
                fields = self._families.get((family, slot))
                if fields:
                    yield family, b"".join(fields.values())

    async def close(self) -> None:
        return None

    def flush(self) -> None:
        """Lose everything, as a restarted Redis without persistence would (tests).
        What it acknowledged to its client is the client's memory, and stays."""
        marks = self._marks
        self.__init__(self.layout)  # type: ignore[misc]
        self._marks = marks
