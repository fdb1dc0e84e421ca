"""Series caps across shards: this shard's figures out in its heartbeat, the others' in.

Each heartbeat carries, per capped config, this shard's counts (cap, series kept,
series not written) and how many series each of its buckets asks for
(`shard.limiting`). After its own heartbeat a shard reads every shard's: the other
shards' figures move its cutoffs, and its targets then review what they write. The
status loop sums the counts for the `CardinalityLimited` condition, as it sums
render errors.
"""

from __future__ import annotations

import time
from typing import Any

from panopticon.errors import StoreError
from panopticon.render.limits import LimitCount, merge_counts
from shard.state import WorkerState


class LimitExchange(WorkerState):
    """Publish and read the figures capped configs need; review the targets."""

    def _limit_snapshot(self) -> tuple[dict[str, list[int]], dict[str, list[list[int]]]]:
        counts: dict[str, list[int]] = {}
        figures: dict[str, list[list[int]]] = {}
        for target in self.targets.values():
            if target.limits:
                more_counts, more_figures = target.limits.snapshot()
                counts.update(more_counts)
                figures.update(more_figures)
        return counts, figures

    async def _exchange_limits(self) -> None:
        """Learn the other shards' figures and review every capped target (a store
        error leaves the figures as they were: the next heartbeat tries again)."""
        capped = [t for t in self.targets.values() if t.limits]
        ring = self.ownership.ring
        if not capped or ring is None:
            if self._limit_gauges:
                self._limit_metrics()  # the last capped config went: its gauges go too
            return
        try:
            shards = await self.store.shards()
        except StoreError:
            self.metrics.store_errors.inc()
            return
        current = [ring.shards, ring.generation]
        owners = {
            index: ring.buckets_of(index)
            for index, info in shards.items()
            if 0 <= index < ring.shards and isinstance(info, dict) and info.get("ring") == current
        }
        now = time.monotonic()
        for target in capped:
            target.limits.learn(shards, owners, self.settings.index)
            target.review_limits(now)
        self._limit_metrics()

    def _limit_metrics(self) -> None:
        seen: set[str] = set()
        for target in self.targets.values():
            for name, limit in target.limits.configs.items():
                seen.add(name)
                count = limit.count()
                self.metrics.series_dropped.labels(name).set(count.dropped)
                self.metrics.series_kept.labels(name).set(count.kept)
        for name in self._limit_gauges - seen:
            self.metrics.series_dropped.remove(name)
            self.metrics.series_kept.remove(name)
        self._limit_gauges = seen

    def _limit_counts(self, shards: dict[int, dict[str, Any]]) -> dict[str, LimitCount]:
        """Every shard's counts by config (this shard's own, current, in place of its
        heartbeat's)."""
        own = dict(shards)
        own[self.settings.index] = {"series_limits": self._limit_snapshot()[0]}
        return merge_counts(info.get("series_limits") for info in own.values())
