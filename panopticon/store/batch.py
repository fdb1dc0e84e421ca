"""Write batches: the field operations a shard sends for one storage slot.

Split out of the store's contract (`panopticon.store.contract`): a batch groups operations by
bucket, so the write script can apply each bucket's part only while the writer still owns it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

OpKind = Literal["s", "d"]


@dataclass(frozen=True, slots=True)
class Op:
    """One field operation in a write batch: set `uid`'s lines of `family`, or delete them."""

    family: str
    bucket: int
    uid: str
    value: bytes | None  # None deletes


@dataclass(frozen=True, slots=True)
class Burial:
    """The fields of a dead object in one slot, to delete unfenced (`Store.bury`): an
    object deleted, whose name a new object holds now (`shard.successors`)."""

    slot: int
    uid: str
    families: tuple[str, ...]


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
