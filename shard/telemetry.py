"""The shard's own metrics (its own registry) and its probes.

`/readyz` turns ready only after the first full sync: every watched kind listed,
rendered, written and garbage-collected (invariant 7). `/healthz` fails when the main
loop stops ticking.
"""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ShardMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry(auto_describe=True)
        self.events = Counter(
            "panopticon_shard_events",
            "Watch events received for owned objects.",
            ["target", "type"],
            registry=r,
        )
        self.renders = Counter("panopticon_shard_renders", "Objects rendered.", ["target"], registry=r)
        self.render_errors = Counter(
            "panopticon_shard_render_errors",
            "Series that failed to render.",
            ["config", "family"],
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
        self.owned_buckets = Gauge("panopticon_shard_owned_buckets", "Buckets this shard owns.", registry=r)
        self.owned_objects = Gauge(
            "panopticon_shard_owned_objects", "Objects this shard renders.", ["target"], registry=r
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
        self.epoch_changes = Counter(
            "panopticon_shard_store_epoch_changes",
            "Times the store was found emptied and republished.",
            registry=r,
        )
        self.relists = Counter(
            "panopticon_shard_relists", "Full lists of a target kind.", ["target"], registry=r
        )


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
