"""The shard's own metrics (its own registry) and its probes.

`/readyz` turns ready only after the first full sync: every watched kind listed,
rendered, written and garbage-collected (invariant 7). `/healthz` fails when the main
loop stops ticking.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Iterator, Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from panopticon.kube.client import ClientStats
from panopticon.kube.stats import ReflectorStats

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ShardMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry(auto_describe=True)
        self.events = Tallies(
            "panopticon_shard_events", "Watch events received for owned objects.", ("target", "type"), r
        )
        self.renders = Tallies("panopticon_shard_renders", "Objects rendered.", ("target",), r)
        self.render_errors = Counter(
            "panopticon_shard_render_errors",
            "Series that failed to render.",
            ["config", "family"],
            registry=r,
        )
        self.series_dropped = Gauge(
            "panopticon_shard_series_dropped",
            "Series of a capped config (spec.limits.series, --max-series-per-config) this shard "
            "does not write because the config is over its cap.",
            ["config"],
            registry=r,
        )
        self.series_kept = Gauge(
            "panopticon_shard_series_kept",
            "Series of a capped config this shard writes (within the cap).",
            ["config"],
            registry=r,
        )
        self.config_faults = Counter(
            "panopticon_shard_config_faults",
            "Unexpected errors caught by the isolation boundary, by config and stage (compile, render).",
            ["config", "stage"],
            registry=r,
        )
        self.write_seconds = Histogram(
            "panopticon_shard_redis_write_seconds",
            "Duration of one flush to the store.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.event_to_store = Histogram(
            "panopticon_shard_event_to_store_seconds",
            "From receiving an event to the store acknowledging its series.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter("panopticon_shard_redis_errors", "Store (Redis) errors.", registry=r)
        self.fields_written = Counter(
            "panopticon_shard_fields_written", "Store fields set or deleted.", registry=r
        )
        self.refused = Counter(
            "panopticon_shard_writes_refused",
            "Writes refused by the fence (bucket owned elsewhere).",
            registry=r,
        )
        self.collected = Counter(
            "panopticon_shard_garbage_collected", "Stale series of deleted objects removed.", registry=r
        )
        self.retired_families = Gauge(
            "panopticon_shard_retired_families",
            "Families in the store's retired set at this shard's last sweep (removed from the configs, "
            "possibly with fields left in some slot).",
            registry=r,
        )
        self.owned_buckets = Gauge("panopticon_shard_owned_buckets", "Buckets this shard owns.", registry=r)
        self.owned_objects = Gauge(
            "panopticon_shard_owned_objects", "Objects this shard renders.", ["target"], registry=r
        )
        self.ring_buckets = Gauge(
            "panopticon_shard_ring_buckets",
            "Buckets the current ring gives this shard (owned_buckets below it: claims refused).",
            registry=r,
        )
        self.ring_fence = Gauge(
            "panopticon_shard_ring_fence",
            "Fencing number of the current ring, from the store's ring lineages (grows with every "
            "ring, also across a StatefulSet deleted and recreated).",
            registry=r,
        )
        self.unresolved_kinds = Gauge(
            "panopticon_shard_unresolved_kinds",
            "Configured target kinds without a running target: not_served (the API server does not "
            "serve them), discovery_failed (their discovery failed; series kept, retried).",
            ["reason"],
            registry=r,
        )
        self.ring_changes = Counter("panopticon_shard_ring_changes", "Ring changes adopted.", registry=r)
        self.ring_shards = Gauge("panopticon_shard_ring_shards", "Shards in the current ring.", registry=r)
        self.ring_generation = Gauge(
            "panopticon_shard_ring_generation", "Generation of the ring.", registry=r
        )
        self.configs = Gauge(
            "panopticon_shard_configs", "MetricsConfigurations known.", ["state"], registry=r
        )
        self.synced = Gauge("panopticon_shard_synced", "1 once the first full sync is done.", registry=r)
        self.ready = Gauge(
            "panopticon_shard_ready",
            "1 while /readyz answers 200: first sync done, every kind resolved, and owning the ring's "
            "buckets.",
            registry=r,
        )
        self.epoch_changes = Counter(
            "panopticon_shard_store_epoch_changes",
            "Times the store was found emptied and republished.",
            registry=r,
        )
        self.store_restarts = Counter(
            "panopticon_shard_store_restarts",
            "Redis servers found with a new run id (a restart or a failover): everything this "
            "shard owns is rewritten.",
            registry=r,
        )
        self.store_lost_writes = Counter(
            "panopticon_shard_store_lost_write_slots",
            "Storage slots found holding fewer of this shard's writes than Redis acknowledged "
            "(a crash, a lagging replica, an older snapshot): everything this shard owns is rewritten.",
            registry=r,
        )
        self.store_rewrites = Counter(
            "panopticon_shard_store_rewrites",
            "Times this shard relisted and rewrote everything it owns because the store lost "
            "or may have lost acknowledged data (epoch change, restart, lost writes, dropped backlog).",
            registry=r,
        )
        self.backlog_drops = Counter(
            "panopticon_shard_backlog_drops",
            "Times the writes held while Redis was unreachable outgrew --max-backlog and were "
            "dropped (everything is rewritten once Redis answers).",
            registry=r,
        )
        self.relists = Counter(
            "panopticon_shard_relists", "Full lists of a target kind.", ["target"], registry=r
        )
        self.http_rejected = Counter(
            "panopticon_shard_http_rejected",
            "HTTP clients refused or disconnected, by reason.",
            ["reason"],
            registry=r,
        )
        self.kube = KubeCollector()
        r.register(self.kube)

    def reject(self, reason: str) -> None:
        """`panopticon.httpguard`'s report of a client it refused."""
        self.http_rejected.labels(reason).inc()


class Tallies(Collector):
    """A labelled counter kept as plain ints and read at scrape time, for what is
    counted on every event: a prometheus_client child takes a lock per increment.

    The owner resolves a label set once with `key` (the series shows 0 from then on)
    and counts with `counts[key] += 1`. Only the event loop's thread touches it."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.counts: dict[tuple[str, ...], int] = {}
        registry.register(self)

    def key(self, *labels: str) -> tuple[str, ...]:
        if len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {labels}")
        self.counts.setdefault(labels, 0)
        return labels

    def value(self, *labels: str) -> int:
        return self.counts.get(labels, 0)

    def describe(self) -> list[CounterMetricFamily]:
        return [CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, count in sorted(self.counts.items()):
            family.add_metric(labels, count)
        yield family


class KubeCollector(Collector):
    """The Kubernetes client's and the reflectors' counters, read at scrape time (no
    cost per event). A reflector replaced by a new one (its kind's configs changed)
    hands its counts to the kind's running total, so the counters never go back."""

    def __init__(self) -> None:
        self.client: ClientStats | None = None
        self._live: dict[str, ReflectorStats] = {}
        self._retired: dict[str, Tally[str]] = {}

    def track(self, watched: str, stats: ReflectorStats) -> None:
        old = self._live.get(watched)
        if old is not None and old is not stats:
            self._retired.setdefault(watched, Tally()).update(_counts(old))
        self._live[watched] = stats

    def _totals(self) -> dict[str, Tally[str]]:
        out = {w: Tally(t) for w, t in self._retired.items()}
        for watched, stats in self._live.items():
            out.setdefault(watched, Tally()).update(_counts(stats))
        return out

    def describe(self) -> list[CounterMetricFamily]:
        return list(self.collect())

    def collect(self) -> Iterator[CounterMetricFamily]:
        client = self.client if self.client is not None else ClientStats()
        yield CounterMetricFamily(
            "panopticon_shard_kube_requests",
            "Requests sent to the Kubernetes API.",
            value=client.requests,
        )
        yield CounterMetricFamily(
            "panopticon_shard_kube_retries", "Kubernetes API requests retried.", value=client.retries
        )
        errors = CounterMetricFamily(
            "panopticon_shard_kube_errors",
            "Kubernetes API requests that failed, by HTTP status (0: no answer).",
            labels=["code"],
        )
        for code, count in sorted(client.errors.items()):
            errors.add_metric([str(code)], count)
        yield errors
        totals = self._totals()
        families = {
            "lines": CounterMetricFamily(
                "panopticon_shard_watch_lines", "Watch events received, owned or not.", labels=["watched"]
            ),
            "skipped": CounterMetricFamily(
                "panopticon_shard_watch_lines_skipped",
                "Watch events of other shards' objects, skipped without decoding.",
                labels=["watched"],
            ),
            "watches": CounterMetricFamily(
                "panopticon_shard_watches", "Watch requests sent.", labels=["watched"]
            ),
            "watch_restarts": CounterMetricFamily(
                "panopticon_shard_watch_restarts",
                "Watches resumed from the last resourceVersion (no relist needed).",
                labels=["watched"],
            ),
            "syncs": CounterMetricFamily(
                "panopticon_shard_syncs",
                "Complete syncs (a LIST or a watch-list's initial events); all but the first are relists.",
                labels=["watched"],
            ),
        }
        errors_by_kind = CounterMetricFamily(
            "panopticon_shard_watch_errors",
            "List and watch errors, by kind (expired, connection, http_403, ...).",
            labels=["watched", "kind"],
        )
        for watched, counts in sorted(totals.items()):
            for key, family in families.items():
                family.add_metric([watched], counts[key])
            for key, count in sorted(counts.items()):
                if key.startswith("error:"):
                    errors_by_kind.add_metric([watched, key[6:]], count)
        yield from families.values()
        yield errors_by_kind


def _counts(stats: ReflectorStats) -> Tally[str]:
    out: Tally[str] = Tally(
        lines=stats.lines,
        skipped=stats.skipped,
        watches=stats.watches,
        watch_restarts=stats.watch_restarts,
        syncs=stats.syncs,
    )
    for kind, count in stats.errors.items():
        out[f"error:{kind}"] = count
    return out


class Health:
    """Liveness and readiness as the worker reports them."""

    def __init__(self, *, stall_after: float = 60.0) -> None:
        self.ready = False
        self.reason = "starting"
        self.stall_after = stall_after
        self._tick = time.monotonic()

    def tick(self) -> None:
        self._tick = time.monotonic()

    @property
    def alive(self) -> bool:
        return time.monotonic() - self._tick < self.stall_after


HEALTH = web.AppKey("health", Health)
METRICS = web.AppKey("metrics", ShardMetrics)


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


async def _healthz(request: web.Request) -> web.Response:
    health = request.app[HEALTH]
    if not health.alive:
        return web.Response(status=503, text="main loop stalled\n")
    return web.Response(text="ok\n")


async def _readyz(request: web.Request) -> web.Response:
    health = request.app[HEALTH]
    if not health.ready:
        return web.Response(status=503, text=f"not ready: {health.reason}\n")
    return web.Response(text="ok\n")


def build_app(metrics: ShardMetrics, health: Health) -> web.Application:
    app = web.Application()
    app[METRICS] = metrics
    app[HEALTH] = health
    app.add_routes(
        [web.get("/metrics", _metrics), web.get("/healthz", _healthz), web.get("/readyz", _readyz)]
    )
    return app
