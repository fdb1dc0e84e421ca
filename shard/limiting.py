"""Enforcing configs' series caps in a shard (`spec.limits.series`, `--max-series-per-config`).

The rule is `panopticon.render.limits`: a config keeps the longest prefix of its objects,
in uid-hash order, whose series fit its cap. The order is the bucket order, so a
shard needs, besides its own objects, only how many series each *other* bucket asks
for: every shard publishes its buckets' demand per capped config in its heartbeat
(`KindLimits.snapshot`), and reads the others' every heartbeat interval
(`KindLimits.learn`), taking a bucket's figure from the shard the current ring gives
it to, once that shard has synced (until then the last figure known is kept, so a
bucket that moves keeps its demand while it moves).

A render asks `admit` whether the object's series are written; its own demand is
counted first, so the shard's own objects are decided on current figures. The
figures from other shards are up to a heartbeat old: a decision may be wrong for
that long, and `review` (each heartbeat, and at each sync) corrects it: objects now
past the cutoff have their series deleted at once (`withdraw`), objects now within
it are rendered again by a relist of their kind that re-delivers only them (no
object is kept in memory to render them from), at most every `READMIT_INTERVAL`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from panopticon.render.limits import Cutoff, Demand, LimitCount, admitted, effective_cap, series_in
from panopticon.render.program import Program
from panopticon.sharding.limits import order_key

READMIT_INTERVAL = 10.0
"""Seconds between two relists of a kind for objects that the cap lets in again."""


@dataclass(slots=True)
class Review:
    """What a review found: (uid, families) whose series go, and uids to render again."""

    withdraw: list[tuple[str, frozenset[str]]] = field(default_factory=list)
    readmit: list[str] = field(default_factory=list)


class ConfigLimit:
    """One capped config's objects in this shard's buckets, and the demand of all buckets."""

    def __init__(self, name: str, cap: int, families: frozenset[str], buckets: int) -> None:
        self.name = name
        self.cap = cap
        self.families = families
        self.size = buckets
        self.demand = Demand(buckets)
        """Series asked for per bucket: this shard's buckets (from `local`) and the others'."""
        self.local: dict[int, dict[str, int]] = {}
        """bucket -> uid -> series the object renders under this config (0: not listed)."""
        self.where: dict[str, int] = {}
        """uid -> its bucket (for deletes, which do not render)."""
        self.remote: dict[int, int] = {}
        """bucket -> series, for buckets of other shards (last figure known)."""
        self.dropped: dict[str, int] = {}
        """uid -> series not written because of the cap."""
        self._everything = Cutoff(buckets, 0)
        """The cutoff when everything fits: past the last bucket."""
        self._low = self._high = buckets
        """The range of cutoff buckets since the last review: decisions outside it hold."""
        self.receded = False
        """Demand grew at or before the cutoff since the last review: objects kept
        until now may be past it (the target reviews at once, before a flush)."""

    def _cutoff(self) -> Cutoff:
        cut = self.demand.cutoff(self.cap) or self._everything
        self._low = min(self._low, cut.bucket)
        self._high = max(self._high, cut.bucket)
        return cut

    def _keeps(self, cut: Cutoff, bucket: int) -> set[str] | bool:
        if bucket < cut.bucket:
            return True
        if bucket > cut.bucket:
            return False
        return admitted(self.local.get(bucket, {}), cut.budget, order_key)

    def decide(self, uid: str, bucket: int, series: int) -> bool:
        """Record what the object asks for; whether its series are written."""
        grew = self._record(uid, bucket, series)
        if not series:
            return True
        cut = self._cutoff()
        if grew and bucket <= cut.bucket and cut.bucket < self.size:
            self.receded = True
        keeps = self._keeps(cut, bucket)
        keep = keeps if isinstance(keeps, bool) else uid in keeps
        if keep:
            self.dropped.pop(uid, None)
        else:
            self.dropped[uid] = series
        return keep

    def _record(self, uid: str, bucket: int, series: int) -> bool:
        """Note the object's demand; whether it grew."""
        old_bucket = self.where.get(uid)
        if old_bucket is not None and old_bucket != bucket:
            self.forget(uid)
        entries = self.local.get(bucket)
        old = entries.get(uid, 0) if entries is not None else 0
        if series == old:
            return False
        if series:
            if entries is None:
                entries = self.local[bucket] = {}
            entries[uid] = series
            self.where[uid] = bucket
        elif entries is not None:
            del entries[uid]
            del self.where[uid]
            self.dropped.pop(uid, None)
        self._settle(bucket)
        return series > old

    def _settle(self, bucket: int) -> None:
        """The bucket's demand is its objects' here (a figure learnt for it before,
        when another shard held it, no longer counts)."""
        entries = self.local.get(bucket)
        self.remote.pop(bucket, None)
        if entries is not None and not entries:
            del self.local[bucket]
            entries = None
        self.demand.set(bucket, sum(entries.values()) if entries else 0)

    def forget(self, uid: str) -> None:
        """The object is gone (deleted, or no longer this shard's)."""
        bucket = self.where.pop(uid, None)
        if bucket is None:
            return
        del self.local[bucket][uid]
        self.dropped.pop(uid, None)
        self._settle(bucket)

    def forget_buckets(self, buckets: Iterable[int]) -> None:
        """Buckets another shard took: their objects are forgotten, their demand kept
        as the last figure known, until the new owner's synced heartbeat says more."""
        for bucket in buckets:
            entries = self.local.pop(bucket, None)
            if entries is None:
                continue
            for uid in entries:
                del self.where[uid]
                self.dropped.pop(uid, None)
            self.remote[bucket] = sum(entries.values())

    def learn(self, figures: Mapping[int, int]) -> None:
        """Other shards' buckets: series asked for (buckets this shard holds objects
        of are its own figures, and are left alone)."""
        for bucket, series in figures.items():
            if bucket in self.local or not 0 <= bucket < self.size:
                continue
            self.remote[bucket] = series
            self.demand.set(bucket, series)

    def review(self, out: Review) -> None:
        """Find the objects whose decision no longer holds (the cutoff moved)."""
        cut = self._cutoff()
        low, high = self._low, min(self._high, self.size - 1)
        self._low = self._high = cut.bucket
        self.receded = False
        if high - low > len(self.local):
            buckets = sorted(b for b in self.local if low <= b <= high)
        else:
            buckets = [b for b in range(low, high + 1) if b in self.local]
        for bucket in buckets:
            entries = self.local[bucket]
            keeps = self._keeps(cut, bucket)
            for uid, series in entries.items():
                keep = keeps if isinstance(keeps, bool) else uid in keeps
                was_dropped = uid in self.dropped
                if keep and was_dropped:
                    out.readmit.append(uid)
                elif not keep and not was_dropped:
                    self.dropped[uid] = series
                    out.withdraw.append((uid, self.families))

    def own_figures(self) -> list[list[int]]:
        """[bucket, series] for this shard's buckets that ask for any (heartbeat data)."""
        return [[bucket, sum(entries.values())] for bucket, entries in sorted(self.local.items())]

    def count(self) -> LimitCount:
        dropped = sum(self.dropped.values())
        asked = sum(sum(entries.values()) for entries in self.local.values())
        return LimitCount(self.cap, asked - dropped, dropped)


class KindLimits:
    """The capped configs of one target kind (empty when none is capped)."""

    def __init__(
        self,
        programs: Iterable[Program],
        global_cap: int | None,
        buckets: int,
        before: KindLimits | None = None,
    ) -> None:
        self.configs: dict[str, ConfigLimit] = {}
        for program in programs:
            cap = effective_cap(program.series_limit, global_cap)
            if cap is None:
                continue
            families = frozenset(header.name for header in program.families)
            name = program.config_name
            limit = self.configs[name] = ConfigLimit(name, cap, families, buckets)
            old = before.configs.get(program.config_name) if before is not None else None
            if old is not None:  # what other shards asked for still stands
                limit.learn(old.remote)

    def __bool__(self) -> bool:
        return bool(self.configs)

    @property
    def receded(self) -> bool:
        """Whether some config's objects kept until now may be past its cutoff."""
        return any(limit.receded for limit in self.configs.values())

    def admit(self, config: str, uid: str, bucket: int, families: Mapping[str, str]) -> bool:
        limit = self.configs.get(config)
        return True if limit is None else limit.decide(uid, bucket, series_in(families.values()))

    def forget(self, uid: str) -> None:
        for limit in self.configs.values():
            limit.forget(uid)

    def forget_buckets(self, buckets: Iterable[int]) -> None:
        held = list(buckets)
        for limit in self.configs.values():
            limit.forget_buckets(held)

    def review(self) -> Review:
        out = Review()
        for limit in self.configs.values():
            limit.review(out)
        return out

    def learn(self, heartbeats: Mapping[int, Any], owners: Mapping[int, frozenset[int]], me: int) -> None:
        """Take other shards' figures from their heartbeats (`owners`: shard -> the
        buckets the current ring gives it; a shard on another ring is not read). A
        shard that has not synced yet gives figures only for buckets not known yet."""
        for config, limit in self.configs.items():
            for index, info in heartbeats.items():
                buckets = owners.get(index)
                if index == me or buckets is None or not isinstance(info, Mapping):
                    continue
                figures = _figures(info.get("series_demand"), config, buckets)
                if figures is None:
                    continue
                if info.get("synced") is not True:
                    figures = {b: n for b, n in figures.items() if b not in limit.remote}
                limit.learn(figures)

    def snapshot(self) -> tuple[dict[str, list[int]], dict[str, list[list[int]]]]:
        """Heartbeat data: counts per config, and own figures per config."""
        return (
            {name: limit.count().encode() for name, limit in self.configs.items()},
            {name: limit.own_figures() for name, limit in self.configs.items()},
        )


def _figures(raw: Any, config: str, buckets: frozenset[int]) -> dict[int, int] | None:
    """A shard's figures for `config` over `buckets` (absent buckets ask for none);
    None when it published none for the config or they are malformed (data another
    process wrote)."""
    if not isinstance(raw, Mapping):
        return None
    pairs = raw.get(config)
    if not isinstance(pairs, list):
        return None
    figures = dict.fromkeys(buckets, 0)
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2 and all(type(x) is int and x >= 0 for x in pair)):
            return None
        if pair[0] in figures:
            figures[pair[0]] = pair[1]
    return figures
