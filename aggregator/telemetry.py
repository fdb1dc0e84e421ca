"""The aggregator's own metrics (its own registry, never the default one)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from aggregator.partition import Partition
from aggregator.scrape import ScrapeStats

_DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class AggregatorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.scrape_duration = Histogram(
            "panopticon_aggregator_scrape_duration_seconds",
            "Time to stream one /metrics response.",
            ["format", "encoding"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.scrape_bytes = Counter(
            "panopticon_aggregator_scrape_bytes", "Uncompressed bytes served on /metrics.", registry=registry
        )
        self.last_series = Gauge(
            "panopticon_aggregator_last_scrape_series",
            "Series in the last complete scrape.",
            registry=registry,
        )
        self.last_families = Gauge(
            "panopticon_aggregator_last_scrape_families",
            "Families in the last complete scrape.",
            registry=registry,
        )
        self.partition_series = Gauge(
            "panopticon_aggregator_last_partition_series",
            "Series in this aggregator's last completed scrape of each partition (/metrics?partition=&of=).",
            ["partition", "of"],
            registry=registry,
        )
        self.rejected = Counter(
            "panopticon_aggregator_scrapes_rejected", "Scrapes refused (503) over the concurrency limit.",
            registry=registry,
        )  # fmt: skip
        self.aborted = Counter(
            "panopticon_aggregator_scrapes_aborted",
            "Scrapes aborted mid-stream by a store error.",
            registry=registry,
        )
        self.disconnected = Counter(
            "panopticon_aggregator_scrapes_disconnected",
            "Scrapes ended by the client: it closed the connection, or read nothing for the stall timeout.",
            registry=registry,
        )
        self.http_rejected = Counter(
            "panopticon_aggregator_http_rejected",
            "HTTP clients refused or disconnected, on either port, by reason.",
            ["reason"],
            registry=registry,
        )
        self.store_errors = Counter(
            "panopticon_aggregator_store_errors", "Store (Redis) errors seen.", registry=registry
        )
        self.shard_up = Gauge(
            "panopticon_aggregator_shard_up",
            "1 if the shard's heartbeat is fresh.",
            ["shard"],
            registry=registry,
        )
        self.shard_synced = Gauge(
            "panopticon_aggregator_shard_synced",
            "1 if the shard finished its first full sync.",
            ["shard"],
            registry=registry,
        )
        self.shard_heartbeat_age = Gauge(
            "panopticon_aggregator_shard_heartbeat_age_seconds",
            "Seconds since the shard's last heartbeat.",
            ["shard"],
            registry=registry,
        )

    def reject(self, reason: str) -> None:
        """`panopticon.httpguard`'s report of a client it refused."""
        self.http_rejected.labels(reason).inc()

    def observe(
        self, fmt: str, encoding: str, seconds: float, stats: ScrapeStats, partition: Partition | None = None
    ) -> None:
        self.scrape_duration.labels(fmt, encoding).observe(seconds)
        self.scrape_bytes.inc(stats.bytes)
        if partition is None:
            self.last_series.set(stats.series)
            self.last_families.set(stats.families)
        else:
            self.partition_series.labels(partition.label, str(partition.count)).set(stats.series)

    def update_shards(
        self, shards: Mapping[int, Mapping[str, object]], *, now: float, stale_after: float
    ) -> None:
        """Shards as their heartbeats tell. Heartbeats of indexes beyond the newest ring
        (left by shards removed in a scale-down) are ignored, not reported down."""
        self.shard_up.clear()
        self.shard_synced.clear()
        self.shard_heartbeat_age.clear()
        rings = [info.get("ring") for info in shards.values()]
        sizes = [
            r for r in rings if isinstance(r, list) and len(r) == 2 and all(isinstance(x, int) for x in r)
        ]
        count = max(sizes, key=lambda r: r[1])[0] if sizes else None
        for index, info in shards.items():
            if count is not None and index >= count:
                continue
            seen = info.get("time")
            age = now - float(seen) if isinstance(seen, (int, float)) else float("inf")
            label = str(index)
            self.shard_up.labels(label).set(1 if age <= stale_after else 0)
            self.shard_synced.labels(label).set(1 if info.get("synced") is True and age <= stale_after else 0)
            self.shard_heartbeat_age.labels(label).set(age)
