"""Aggregate families stored per bucket: each object's partial kept here, one partial per bucket written.

An aggregate family's series are the combination of every object's partial
(`panopticon.render.aggregate`). Stored per object, a scrape read one line per object;
stored per bucket, it reads one line per bucket and group. So the shard keeps each
owned object's partial lines of each aggregate family in memory, by bucket, and
writes, under the bucket's field (`panopticon.store.layout.bucket_field`, in the
bucket's slot like the bucket's other writes, through the same fenced script), the
combination of its objects' partials: exact (`Combiner.partial`), so combining
buckets at scrape time gives what combining the objects would.

A `count` or `sum` bucket keeps a running exact total per group (`Totals`): an
object's change takes its old partial out and puts its new one in, and the flush
formats the groups that changed and joins the bucket's lines. `min` and `max`
cannot take a value back: their bucket is recomputed from its objects' partials at
the flush (about 25 objects per bucket at 100,000 objects).

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

import math
from collections.abc import Callable, Collection, Iterable, Mapping

from panopticon.render.combine import SCALE_BITS, Combiner, scaled_text, scaled_value
from panopticon.store.batch import Op
from panopticon.store.layout import bucket_field
from panopticon.text import format_number

ADDITIVE = frozenset({"count", "sum"})
"""Functions whose bucket totals are adjusted in place (exact integers can be taken back)."""
_NAN, _INF, _NEG_INF = format_number(math.nan), format_number(math.inf), format_number(-math.inf)


class Totals:
    """One bucket's exact running sums of an additive family, by group key.

    Each group holds [sum of its integer values, sum in units of 2**-1074 of its other
    finite values, lines added, NaNs, +Infs, -Infs]: integers (counts, restarts,
    replicas: the usual values) stay small Python ints, and counting the non-finite
    values (rather than summing them as `ExactSum` does) makes every addition
    reversible, with the same figure.
    Each group's line is formatted once per change of it: a change of one object
    formats its own groups again, not the bucket's."""

    __slots__ = ("_lines", "_order", "_stale", "groups")

    def __init__(self) -> None:
        self.groups: dict[bytes, list[int]] = {}
        self._lines: dict[bytes, bytes] = {}
        """Group key -> its partial line as last formatted."""
        self._stale: set[bytes] = set()
        """Groups changed since their line was formatted."""
        self._order: list[bytes] | None = None
        """The group keys in order, None after a group came or went."""

    def adjust(self, lines: bytes, sign: int) -> None:
        """Add (`sign` 1) or take back (-1) one object's partial lines."""
        groups = self.groups
        for line in lines.split(b"\n"):
            key, _, text = line.rpartition(b" ")
            if not key:
                continue
            integer = text.isdigit() or (text[:1] == b"-" and text[1:].isdigit())
            value = None if integer else scaled_value(text)
            if not integer and value is None:
                continue  # not a partial line (none is rendered): left out, as a scrape does
            total = groups.get(key)
            if total is None:
                total = groups[key] = [0, 0, 0, 0, 0, 0]
                self._order = None
            self._stale.add(key)
            total[2] += sign
            if integer:
                total[0] += sign * int(text)
            elif isinstance(value, int):
                total[1] += sign * value
            elif value is not None and math.isnan(value):
                total[3] += sign
            else:
                total[4 if value is not None and value > 0 else 5] += sign
            if not total[2]:
                del groups[key]
                self._lines.pop(key, None)
                self._order = None

    def partial(self) -> bytes:
        lines, groups = self._lines, self.groups
        for key in self._stale:
            total = groups.get(key)
            if total is not None:
                lines[key] = key + b" " + _text(total).encode() + b"\n"
        self._stale.clear()
        if self._order is None:
            self._order = sorted(groups)
        return b"".join(map(lines.__getitem__, self._order))


def _text(total: list[int]) -> str:
    integers, scaled, _, nans, infs, negative_infs = total
    if nans or (infs and negative_infs):
        return _NAN
    if infs or negative_infs:
        return _INF if infs else _NEG_INF
    if not scaled:
        return str(integers)
    return scaled_text((integers << SCALE_BITS) + scaled)


class BucketPartials:
    """Every owned object's partial of every aggregate family, by bucket; the buckets
    whose stored partial is out of date."""

    __slots__ = ("_dirty", "_objects", "_totals", "functions", "held")

    def __init__(self) -> None:
        self.functions: dict[str, str] = {}
        """Aggregate family -> its function (`count`, `sum`, `min`, `max`)."""
        self._objects: dict[str, dict[int, dict[str, bytes]]] = {}
        """family -> bucket -> uid -> that object's partial lines."""
        self._totals: dict[str, dict[int, Totals]] = {}
        """family -> bucket -> its running totals (additive families only)."""
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
        self._totals = {}
        for family, by_bucket in self._objects.items():
            if functions[family] in ADDITIVE:
                for bucket, objects in by_bucket.items():
                    totals = self._totals.setdefault(family, {})[bucket] = Totals()
                    for lines in objects.values():
                        totals.adjust(lines, 1)
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
            old = None if objects is None else objects.pop(uid, None)
            if old is None:
                return
            if not objects:
                del buckets[bucket]
        else:
            if objects is None:
                objects = buckets[bucket] = {}
            old = objects.get(uid)
            if old == lines:
                return
            objects[uid] = lines
        if self.functions[family] in ADDITIVE:
            by_bucket = self._totals.setdefault(family, {})
            totals = by_bucket.get(bucket)
            if totals is None:
                totals = by_bucket[bucket] = Totals()
            if old is not None:
                totals.adjust(old, -1)
            if lines is not None:
                totals.adjust(lines, 1)
            if not totals.groups:
                del by_bucket[bucket]
        self._dirty.setdefault(bucket, set()).add(family)

    def forget(self, buckets: Collection[int]) -> None:
        """Drop what is kept of `buckets` (no longer owned), writing nothing: their
        new owner writes their partials once it has rendered their objects."""
        if not buckets:
            return
        for by_bucket in self._objects.values():
            for bucket in [b for b in by_bucket if b in buckets]:
                del by_bucket[bucket]
        for totals in self._totals.values():
            for bucket in [b for b in totals if b in buckets]:
                del totals[bucket]
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
        function = self.functions[family]
        if function in ADDITIVE:
            totals = self._totals.get(family, {}).get(bucket)
            return (totals.partial() or None) if totals is not None else None
        return self.recomputed(family, bucket)

    def recomputed(self, family: str, bucket: int) -> bytes | None:
        """`partial` recomputed from the bucket's objects (what the totals must give)."""
        objects = self._objects.get(family, {}).get(bucket)
        if not objects:
            return None
        combiner = Combiner(self.functions[family])
        combiner.feed(b"".join(objects.values()))
        return combiner.partial() or None

    def objects(self) -> int:
        """Partials kept (objects times the aggregate families they have lines in)."""
        return sum(len(objects) for by_bucket in self._objects.values() for objects in by_bucket.values())
