"""Cardinality limits: which of a config's series are kept when it would exceed its cap.

The rule, the same offline, in `panopticon run`, in the library and sharded over any
number of shards: a config's objects are ordered by FNV-1a 64 of their uid (ties,
which need a hash collision, by the uid itself: `panopticon.sharding.limits`), and
the longest prefix of that order whose series add up to at most the cap is kept;
every series of every later object is not written. It depends on the set of objects
and what they render only: not on event order, nor on the shard count, nor on which
shard holds what.

The order is the order of buckets (a bucket is the top bits of the same hash), so a
sharded deployment can apply the rule knowing, per bucket, how many series its
objects ask for (`Demand`): the buckets before the *cutoff* bucket are kept whole,
those after it dropped whole, and only the cutoff bucket's owner orders objects
(`admitted`). Whole objects are kept or dropped: an object's series never come out
half-written. The cap is `spec.limits.series`, or the global
`--max-series-per-config`, whichever is lower (`effective_cap`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

OrderKey = Callable[[str], Any]
"""An object's place in the keep order, from its uid: `panopticon.sharding.limits.order_key`
(FNV-1a 64 is the sharding layer's hash; this layer is below it, so it is passed in)."""


def effective_cap(own: int | None, global_cap: int | None) -> int | None:
    """The cap a config is held to: its own, the global one, or the lower of both."""
    if own is None:
        return global_cap
    return own if global_cap is None else min(own, global_cap)


def series_in(families: Iterable[str]) -> int:
    """Series in rendered family texts (one line each, newline-terminated)."""
    return sum(text.count("\n") for text in families)


def admitted(entries: Mapping[str, int], budget: int, order: OrderKey) -> set[str]:
    """The uids of `entries` (uid -> series) kept with `budget` series to give: the
    longest prefix, in keep order, whose series fit."""
    kept: set[str] = set()
    for uid in sorted(entries, key=order):
        n = entries[uid]
        if n > budget:
            break
        budget -= n
        kept.add(uid)
    return kept


def keep_objects(entries: Mapping[str, int], cap: int, order: OrderKey) -> set[str]:
    """Offline: the uids kept of all of a config's objects (uid -> series)."""
    return admitted(entries, cap, order)


@dataclass(frozen=True, slots=True)
class Cutoff:
    """Where a config's cap falls: buckets before `bucket` are kept whole, those after
    are dropped whole, and `budget` series are left for the objects of `bucket`."""

    bucket: int
    budget: int


class Demand:
    """Series asked for per bucket, with the cutoff found in O(log buckets).

    A Fenwick tree over the buckets: a render changes one bucket's demand and then
    asks where the cap falls, for every object of a capped config."""

    __slots__ = ("_size", "_step", "_tree", "sum", "values")

    def __init__(self, buckets: int) -> None:
        self._size = buckets
        self._tree = [0] * (buckets + 1)
        self.values = [0] * buckets
        self.sum = 0
        """Series asked for in all (kept as it changes: when it fits the cap, which is
        the usual case, no search is needed)."""
        step = 1
        while step * 2 <= buckets:
            step *= 2
        self._step = step

    def set(self, bucket: int, value: int) -> None:
        delta = value - self.values[bucket]
        if not delta:
            return
        self.values[bucket] = value
        self.sum += delta
        i = bucket + 1
        tree, size = self._tree, self._size
        while i <= size:
            tree[i] += delta
            i += i & -i

    def add(self, bucket: int, delta: int) -> None:
        self.set(bucket, self.values[bucket] + delta)

    def total(self) -> int:
        return self.before(self._size)

    def before(self, bucket: int) -> int:
        """Series asked for by the buckets before `bucket`."""
        total, i, tree = 0, bucket, self._tree
        while i > 0:
            total += tree[i]
            i -= i & -i
        return total

    def cutoff(self, cap: int) -> Cutoff | None:
        """The first bucket whose demand, added to all before it, exceeds `cap`, and
        what is left for it; None when everything fits."""
        if self.sum <= cap:
            return None
        position, left, step, tree = 0, cap, self._step, self._tree
        while step:
            nxt = position + step
            if nxt <= self._size and tree[nxt] <= left:
                position = nxt
                left -= tree[nxt]
            step //= 2
        if position >= self._size:
            return None
        return Cutoff(position, left)


@dataclass(slots=True)
class LimitCount:
    """One config's series against its cap: kept (written) and dropped (not written)."""

    cap: int
    kept: int = 0
    dropped: int = 0

    def encode(self) -> list[int]:
        return [self.cap, self.kept, self.dropped]

    @staticmethod
    def decode(raw: Any) -> LimitCount | None:
        """From heartbeat data another process wrote (None when malformed)."""
        if not isinstance(raw, list) or len(raw) != 3 or any(type(x) is not int or x < 0 for x in raw):
            return None
        return LimitCount(raw[0], raw[1], raw[2])


def merge_counts(snapshots: Iterable[Any]) -> dict[str, LimitCount]:
    """Sum per config the counts of every shard ({config: [cap, kept, dropped]} each);
    the cap is the lowest reported (shards that have not seen a config edit yet
    report the old one). Anything malformed is ignored."""
    merged: dict[str, LimitCount] = {}
    for snapshot in snapshots:
        if not isinstance(snapshot, Mapping):
            continue
        for config, raw in snapshot.items():
            count = LimitCount.decode(raw)
            if not isinstance(config, str) or count is None:
                continue
            total = merged.get(config)
            if total is None:
                merged[config] = count
            else:
                total.cap = min(total.cap, count.cap)
                total.kept += count.kept
                total.dropped += count.dropped
    return merged


def limited_condition(count: LimitCount) -> dict[str, str]:
    """The `CardinalityLimited` status condition of a capped config."""
    if count.dropped:
        message = (
            f"{count.dropped} of {count.kept + count.dropped} series not written: over the cap of "
            f"{count.cap} (kept: the objects first in uid-hash order, {count.kept} series)"
        )
        return _condition("True", "SeriesCapReached", message)
    return _condition("False", "WithinCap", f"{count.kept} series, within the cap of {count.cap}")


def _condition(status: str, reason: str, message: str) -> dict[str, str]:
    return {"type": "CardinalityLimited", "status": status, "reason": reason, "message": message}
