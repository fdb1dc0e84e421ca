"""Series caps in the library (`spec.limits.series`, `Exporter(max_series_per_config=...)`).

The rule is the one every mode follows (`panopticon.render.limits`): a capped config keeps
the longest prefix of its objects, in uid-hash order, whose series fit its cap. The
library keeps every object's lines anyway (`_embed/lines.py`), so it applies the rule
where it costs least to get right: each render notes how many series the object has
under each capped config, and a scrape leaves out the lines of the objects past the
cap. The set left out is worked out again only after a change, at the next scrape:
one sort of the config's objects by their (cached) hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from panopticon.render.limits import LimitCount, effective_cap, series_in
from panopticon.render.program import Program
from panopticon.sharding.limits import order_key


class _Capped:
    __slots__ = ("cap", "keys", "series", "skip")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.series: dict[str, int] = {}
        self.keys: dict[str, tuple[int, str]] = {}
        self.skip: frozenset[str] | None = frozenset()
        """uids whose lines a scrape leaves out; None: to work out again."""

    def left_out(self) -> frozenset[str]:
        if self.skip is None:
            budget, out = self.cap, []
            ordered = sorted(self.series, key=self.keys.__getitem__)
            for position, uid in enumerate(ordered):
                n = self.series[uid]
                if n > budget:
                    out = ordered[position:]
                    break
                budget -= n
            self.skip = frozenset(out)
        return self.skip

    def count(self) -> LimitCount:
        skipped = self.left_out()
        dropped = sum(self.series[uid] for uid in skipped)
        return LimitCount(self.cap, sum(self.series.values()) - dropped, dropped)


class KindCaps:
    """The capped configs of one watched kind (empty when none is capped)."""

    def __init__(self, programs: Iterable[Program], global_cap: int | None) -> None:
        self.configs: dict[str, _Capped] = {}
        self.family_config: dict[str, str] = {}
        for program in programs:
            cap = effective_cap(program.series_limit, global_cap)
            if cap is None:
                continue
            self.configs[program.config_name] = _Capped(cap)
            for header in program.families:
                self.family_config[header.name] = program.config_name

    def __bool__(self) -> bool:
        return bool(self.configs)

    def note(self, config: str, uid: str, families: Mapping[str, str]) -> None:
        """The object's series under `config` (rendered just now)."""
        capped = self.configs.get(config)
        if capped is None:
            return
        n = series_in(families.values())
        if capped.series.get(uid, 0) == n:
            return
        if n:
            capped.series[uid] = n
            if uid not in capped.keys:
                capped.keys[uid] = order_key(uid)
        else:
            capped.series.pop(uid, None)
            capped.keys.pop(uid, None)
        capped.skip = None

    def forget(self, uid: str) -> None:
        for capped in self.configs.values():
            if capped.series.pop(uid, None) is not None:
                capped.keys.pop(uid, None)
                capped.skip = None

    def left_out(self, family: str) -> frozenset[str]:
        """The uids whose lines of `family` a scrape leaves out."""
        config = self.family_config.get(family)
        return frozenset() if config is None else self.configs[config].left_out()

    def counts(self) -> dict[str, LimitCount]:
        return {name: capped.count() for name, capped in self.configs.items()}
