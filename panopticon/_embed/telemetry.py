"""The library's self-metrics (`panopticon_embed_*`) and its rate-limited warnings.

They live in a registry of the exporter's own, never in the operator's (whose
default registry would refuse a second exporter's, or a restarted one's, metrics),
and are served with the rest of `/metrics` unless the exporter is built with
`telemetry=False`. Every series is bounded by what the operator configured: kinds,
configs, generators and family names, never object names.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

WARNING_INTERVAL = 60.0
"""Seconds during which one kind of warning (a generator and a reason, a clashing
family) is logged once; the next line says how many were left out meanwhile."""


class RateLimitedLog:
    """Log each key at most once per `interval` seconds, counting what is left out."""

    def __init__(self, log: logging.Logger, interval: float = WARNING_INTERVAL) -> None:
        self.log = log
        self.interval = interval
        self._last: dict[Any, tuple[float, int]] = {}

    def warning(self, key: Any, message: str, *args: object) -> bool:
        """Log `message % args` unless `key` was logged less than `interval` ago;
        return whether it was logged."""
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.interval:
            self._last[key] = (last[0], last[1] + 1)
            return False
        skipped = last[1] if last is not None else 0
        if skipped:
            message += " (and %d more like it in the last %.0f s)"
            args = (*args, skipped, now - last[0]) if last is not None else args
        self.log.warning(message, *args)
        self._last[key] = (now, 0)
        return True


class _Live(Collector):
    """Gauges read when collected: objects held per kind, readiness."""

    def __init__(
        self,
        objects: Callable[[], Iterable[tuple[str, int]]],
        ready: Callable[[], bool],
        dropped: Callable[[], Iterable[tuple[str, int]]] = tuple,
    ) -> None:
        self._objects = objects
        self._ready = ready
        self._dropped = dropped

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return self.collect()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        objects = GaugeMetricFamily(
            "panopticon_embed_objects", "Objects of each watched kind held by the exporter.", labels=["kind"]
        )
        for kind, count in self._objects():
            objects.add_metric([kind], count)
        yield objects
        dropped = GaugeMetricFamily(
            "panopticon_embed_series_dropped",
            "Series of a capped config (spec.limits.series, max_series_per_config) left out of "
            "/metrics because the config is over its cap.",
            labels=["config"],
        )
        for config, count in self._dropped():
            dropped.add_metric([config], count)
        yield dropped
        yield GaugeMetricFamily(
            "panopticon_embed_ready",
            "1 once every watched kind has synced (or is known not to be served).",
            value=1 if self._ready() else 0,
        )


class EmbedMetrics:
    """The exporter's counters and gauges, in their own registry."""

    def __init__(
        self,
        *,
        objects: Callable[[], Iterable[tuple[str, int]]],
        ready: Callable[[], bool],
        dropped: Callable[[], Iterable[tuple[str, int]]] = tuple,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events = Counter(
            "panopticon_embed_events", "Watch events handled, by kind and type.", ["kind", "type"], registry=r
        )
        self.render_errors = Counter(
            "panopticon_embed_render_errors",
            "Series of MetricsConfigurations that could not be rendered, by config and family.",
            ["config", "family"],
            registry=r,
        )
        self.generator_errors = Counter(
            "panopticon_embed_generator_errors",
            "Generator calls that raised and samples skipped, by generator and reason.",
            ["generator", "reason"],
            registry=r,
        )
        self.family_clashes = Counter(
            "panopticon_embed_family_clashes",
            "Scrapes that left a family out because the operator's registry exposes the same name.",
            ["family"],
            registry=r,
        )
        self.configs = Gauge(
            "panopticon_embed_configs", "MetricsConfigurations given, by state.", ["state"], registry=r
        )
        self.kind_served = Gauge(
            "panopticon_embed_kind_served",
            "1 when the API server serves the watched kind, 0 while it does not (yet).",
            ["kind"],
            registry=r,
        )
        self.live = _Live(objects, ready, dropped)
        r.register(self.live)
