"""The in-flight checks of a rolling upgrade: the chaos suite's, plus missing series.

`RollChecker` is the chaos suite's `InFlightChecker` (valid exposition, no duplicate
series or family, no deleted object's series stored past `STALE_BOUND`, no covered 200
lacking a family) that also keeps, for every truth poll, the set of series (name and
labels) the offline render has, and for every 200 the set it served. A series is
*missing* from a scrape when the truth polls on both sides of it had it and the scrape
did not. Why a separate count: during a handover a bucket may have no running owner
(the old one stopped, the new one not yet synced), so a series created or relabelled
meanwhile is missing until the new owner's first sync; that is allowed, but a series
that existed before the roll started must never go missing (its field stays in Redis
and is served), and once the roll has finished (`SETTLE_BOUND` after the last new
process was ready) nothing may be missing at all. Those two are violations.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from tests.chaos.inflight import InFlightChecker
from tests.support.cluster import Truth, render_truth

SETTLE_BOUND = 5.0
"""Seconds after the roll's end by which every series must be served: a flush (20 ms)
plus the truth and scrape polls' spacing, as the chaos suite's `FAMILY_BOUND`."""


def series_keys(lines: Iterable[str]) -> set[str]:
    """Name and labels of every sample line (values, comments and blank lines dropped)."""
    return {line.rsplit(" ", 1)[0] for line in lines if line and not line.startswith("#")}


@dataclass
class Missing:
    """Series of live objects missing from scrapes (see the module docstring)."""

    scrapes_judged: int = 0
    total: int = 0
    max_per_scrape: int = 0
    scrapes_with_missing: int = 0
    lost: int = 0
    """Missing series that existed before the roll started: a violation."""
    after_settle: int = 0
    """Missing series in scrapes taken `SETTLE_BOUND` after the roll ended: a violation."""
    oldest_missing: float = 0.0
    """Seconds: the longest a missing series had been in the truth when a scrape lacked it."""
    examples: list[str] = field(default_factory=list)

    @property
    def violations(self) -> int:
        return self.lost + self.after_settle


@dataclass
class ServedScrape:
    started: float
    ended: float
    keys: set[str]


class RollChecker(InFlightChecker):
    """`InFlightChecker`, recording series sets to count the missing ones afterwards."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.first_seen: dict[str, float] = {}
        """Series -> the first truth poll that had it."""
        self.truths: list[tuple[float, set[str]]] = []
        self.served: list[ServedScrape] = []
        self.roll_started = float("inf")
        self.roll_ended = float("inf")
        self._stale.extra_bound = self.roll_bound

    def roll_bound(self) -> float:
        """The stale bound's extension: how long the roll has lasted (so far, or in all
        once it ended). A bucket whose old owner was replaced and whose new owner has
        not started yet is not updated (docs/operations.md, Upgrades): under range
        ownership that can be the case from the first shard's stop to the last one's
        first sync, and an object deleted meanwhile stays stored until then."""
        end = min(time.time(), self.roll_ended)
        return max(0.0, end - self.roll_started) if end > self.roll_started else 0.0

    async def _poll_truth(self) -> None:
        try:
            truth: Truth = await asyncio.to_thread(render_truth, self.sim)
        except OSError:
            return
        now = time.time()
        self._polls.append((now, truth.families))
        self._stale.polled(truth.uids, now)
        keys = series_keys(truth.lines)
        for key in keys:
            self.first_seen.setdefault(key, now)
        self.truths.append((now, keys))

    def _scrape(self) -> tuple[int, str]:
        started = time.time()
        status, body = super()._scrape()
        if status == 200:
            self.served.append(ServedScrape(started, time.time(), series_keys(body.split("\n"))))
        return status, body

    def judge_missing(self) -> Missing:
        """Count, for every 200, the series both neighbouring truth polls had and it lacked."""
        out = Missing()
        for scrape in self.served:
            before = [keys for t, keys in self.truths if t <= scrape.started]
            after = [keys for t, keys in self.truths if t >= scrape.ended]
            if not before or not after:
                continue
            out.scrapes_judged += 1
            missing = (before[-1] & after[0]) - scrape.keys
            if not missing:
                continue
            out.scrapes_with_missing += 1
            out.total += len(missing)
            out.max_per_scrape = max(out.max_per_scrape, len(missing))
            for key in missing:
                seen = self.first_seen[key]
                out.oldest_missing = max(out.oldest_missing, scrape.started - seen)
                if seen < self.roll_started:
                    out.lost += 1
                    self._example(out, f"lost (in truth since before the roll): {key[:120]}")
                elif scrape.started > self.roll_ended + SETTLE_BOUND:
                    out.after_settle += 1
                    self._example(out, f"missing after the roll: {key[:120]}")
        return out

    @staticmethod
    def _example(out: Missing, text: str) -> None:
        if len(out.examples) < 10:
            out.examples.append(text)
