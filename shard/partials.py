"""Aggregate families stored per bucket: each object's partial kept here, one partial per bucket written.

An aggregate family's series are the combination of every object's partial
(`panopticon.render.aggregate`). Stored per object, a scrape read one line per object;
stored per bucket, it reads one line per bucket and group. So the shard keeps each
owned object's partial lines of each aggregate family in memory, by bucket, and
writes, under the bucket's field (`panopticon.store.layout.bucket_field`, in the
bucket's slot like the bucket's other writes, through the same fenced script), the
combination of its objects' partials: exact (`Combiner.partial`), so combining
buckets at scrape time gives what combining the objects would.

A bucket's partial is recomputed from its objects' partials whenever one of them
changes (at the next flush), never adjusted: `min` and `max` cannot take a value
back, and recomputing 25 objects (100,000 over 4096 buckets) costs little.

Exactness through disruptions rests on one rule: a bucket's partial is written only
while the bucket is *settled* here, i.e. every object of it was rendered by this shard
since it took the bucket (or since the store lost data). The worker holds back the
buckets it still has to collect (`pending_gc`: gained buckets, a store recovery, a
config change of the aggregate families) and touches them once collected
(`touch`): their partial is then written whole, replacing in one field whatever an
earlier owner (or an earlier incarnation of this shard) left, so nothing is counted
twice and nothing is half-counted. Until then the old partial is served, unchanged,
as any family's old series are during a handover.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping

from panopticon.render.combine import Combiner
from panopticon.store.batch import Op
from panopticon.store.layout import bucket_field


class BucketPartials:
    """Every owned object's partial of every aggregate family, by bucket; the buckets
    whose stored partial is out of date."""

    __slots__ = ("_dirty", "_objects", "functions", "held")

    def __init__(self) -> None:
        self.functions: dict[str, str] = {}
        """Aggregate family -> its function (`count`, `sum`, `min`, `max`)."""
        self._objects: dict[str, dict[int, dict[str, bytes]]] = {}
        """family -> bucket -> uid -> that object's partial lines."""
        self._dirty: dict[int, set[str]] = {}
        """bucket -> families whose stored partial may differ from the objects'."""
        self.held: Callable[[], Collection[int]] = frozenset
        """Buckets whose partials must not be written yet (the worker's `pending_gc`)."""

    def set_functions(self, functions: Mapping[str, str]) -> bool:
        """The aggregate families the configs define now; True if that changed (the
        caller then collects every owned bucket: fields of a family that changed from
        plain to aggregate, or back, are in the other layout). A family that is no
        longer aggregate loses its objects' partials here; its fields go with the
        collection (plain families hold no bucket fields). A function changed keeps
        them: each object's partial lines are rendered for the new function anyway."""
        if functions == self.functions:
            return False
        for family in set(self._objects) - set(functions):
            del self._objects[family]
        for families in self._dirty.values():
            families.intersection_update(functions)
        self.functions = dict(functions)
        return True

    def take(
        self, bucket: int, uid: str, sets: Iterable[tuple[str, bytes]], dels: Iterable[str]
    ) -> tuple[list[tuple[str, bytes]], list[str]]:
        """Keep one object's aggregate families here; return the other families' sets and
        deletes, which are stored per object."""
        functions = self.functions
        plain_sets: list[tuple[str, bytes]] = []
        plain_dels: list[str] = []
        for family, lines in sets:
            if family in functions:
                self._set(family, bucket, uid, lines)
            else:
                plain_sets.append((family, lines))
        for family in dels:
            if family in functions:
                self._set(family, bucket, uid, None)
            else:
                plain_dels.append(family)
        return plain_sets, plain_dels

    def take_ops(self, ops: Iterable[Op]) -> list[Op]:
        """`take` of loose operations; the others returned."""
        functions = self.functions
        out: list[Op] = []
        for op in ops:
            if op.family in functions:
                self._set(op.family, op.bucket, op.uid, op.value)
            else:
                out.append(op)
        return out

    def _set(self, family: str, bucket: int, uid: str, lines: bytes | None) -> None:
        buckets = self._objects.get(family)
        if buckets is None:
            buckets = self._objects[family] = {}
        objects = buckets.get(bucket)
        if lines is None:
            if objects is None or objects.pop(uid, None) is None:
                return
            if not objects:
                del buckets[bucket]
        elif objects is None:
            buckets[bucket] = {uid: lines}
        elif objects.get(uid) == lines:
            return
        else:
            objects[uid] = lines
        self._dirty.setdefault(bucket, set()).add(family)

    def forget(self, buckets: Collection[int]) -> None:
        """Drop what is kept of `buckets` (no longer owned), writing nothing: their
        new owner writes their partials once it has rendered their objects."""
        if not buckets:
            return
        for by_bucket in self._objects.values():
            for bucket in [b for b in by_bucket if b in buckets]:
                del by_bucket[bucket]
        for bucket in [b for b in self._dirty if b in buckets]:
            del self._dirty[bucket]

    def touch(self, buckets: Iterable[int], families: Collection[str] = ()) -> None:
        """Write every aggregate family's partial of `buckets` at the next flush (or
        delete it, when no object of the bucket has lines in the family): they were
        just collected, so what the objects kept here give is the whole of them.
        `families`: those to leave alone (kinds whose discovery failed keep their
        series, partials included)."""
        touched = set(self.functions) - set(families)
        if not touched:
            return
        for bucket in buckets:
            self._dirty.setdefault(bucket, set()).update(touched)

    def due(self) -> bool:
        """Whether some bucket's partial is to be written at the next flush."""
        if not self._dirty:
            return False
        held = self.held()
        return any(bucket not in held for bucket in self._dirty)

    def ops(self) -> list[Op]:
        """The operations that write (or delete) the out-of-date partials of the buckets
        not held back; those are then taken as written (a write refused or failed
        goes back to the write queue with these operations, as any other)."""
        if not self._dirty:
            return []
        held = self.held()
        out: list[Op] = []
        for bucket in [b for b in self._dirty if b not in held]:
            field = bucket_field(bucket)
            out.extend(
                Op(family, bucket, field, self.partial(family, bucket))
                for family in sorted(self._dirty.pop(bucket))
            )
        return out

    def partial(self, family: str, bucket: int) -> bytes | None:
        """The bucket's partial of `family`: its objects' partials combined, exactly;
        None when none of them has lines in the family."""
        objects = self._objects.get(family, {}).get(bucket)
        if not objects:
            return None
        combiner = Combiner(self.functions[family])
        combiner.feed(b"".join(objects.values()))
        return combiner.partial() or None

    def objects(self) -> int:
        """Partials kept (objects times the aggregate families they have lines in)."""
        return sum(len(objects) for by_bucket in self._objects.values() for objects in by_bucket.values())
