"""Panopticon inside your operator: the embeddable library.

    from panopticon.embed import Exporter, Sample

    def memcached_metrics(obj):                       # optional, code-defined metrics
        yield Sample("memcached_ready_replicas", {}, obj["status"].get("readyReplicas", 0))

    exporter = Exporter(
        configs=["metrics.yaml"],                      # MetricsConfiguration files or mappings
        generators={("cache.example.com/v1", "Memcached"): memcached_metrics},
        registry=prometheus_client.REGISTRY,           # the operator's own metrics, same /metrics
        namespaces=["default"],                        # default: cluster-wide
    )
    await exporter.start()                             # in the running loop: list/watch, render on change
    app.router.add_get("/metrics", exporter.handler)   # any aiohttp app, or:
    await exporter.serve(port=9090)
    ...
    await exporter.stop()

What it does: for every kind a config or a generator targets, it lists and watches
the objects (the reflector of `panopticon.kube`), renders each object when it
changes (compiled MetricsConfigurations, then the generator) and keeps the lines;
`/metrics` streams the operator's prometheus_client registry followed by those
lines. It runs on the caller's event loop and starts no thread of its own
(kubeconfig loading and credential refreshes use the loop's default executor, as
`asyncio.to_thread` does); rendering and scraping give the loop back every few
milliseconds, so a sync of 100,000 objects does not hold up the operator's
handlers.

This module is the library's public API and follows semantic versioning from
0.1.0 on: `Exporter` (its constructor's arguments, `start`, `stop`, `ready`,
`wait_ready`, `handler`, `serve`, `configs`, `async with`), `Sample`, `Generator`,
`ConfigReport` and `ExporterError`. Everything under `panopticon._embed` may change.
See docs/library.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from aiohttp import web
from prometheus_client.registry import Collector

from panopticon import serving
from panopticon._embed.configs import ConfigReport, ConfigSource, load
from panopticon._embed.generators import Generator, GeneratorFunction, Sample
from panopticon._embed.joined import related_watch
from panopticon._embed.kinds import RESOLVE_RETRY, WatchedKind
from panopticon._embed.lines import FamilyLines
from panopticon._embed.scrape import Scrape
from panopticon._embed.telemetry import EmbedMetrics, RateLimitedLog
from panopticon.errors import PanopticonError
from panopticon.kube.client import KubeClient
from panopticon.kube.credentials import load_credentials
from panopticon.kube.discovery import Discovery
from panopticon.kube.errors import CredentialsError

__all__ = ["ConfigReport", "ConfigSource", "Exporter", "ExporterError", "Generator", "Sample"]

log = logging.getLogger("panopticon.embed")


class ExporterError(PanopticonError):
    """The exporter was misused (`start()` twice, a bad generator key) or cannot
    start (no credentials, a port in use). The message is one line naming the thing."""


class Exporter:
    """Per-object metrics of the kinds an operator manages, on the operator's loop."""

    def __init__(
        self,
        configs: Iterable[ConfigSource] = (),
        *,
        generators: Mapping[tuple[str, str], GeneratorFunction | Generator] | None = None,
        registry: Collector | None = None,
        namespaces: Iterable[str] | str | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        telemetry: bool = True,
        max_series_per_config: int | None = None,
    ) -> None:
        """
        - `configs`: MetricsConfiguration files (YAML or JSON, several documents and
          CRDs allowed) or mappings. An invalid one is logged, reported in `configs`
          and left out; the others are used.
        - `generators`: `(apiVersion, kind) -> function(obj) -> iterable of Sample`
          (or a `Generator`, to give the families' HELP texts).
        - `registry`: a prometheus_client registry (e.g. `prometheus_client.REGISTRY`)
          served first on the same `/metrics`; on a name clash its metric wins.
        - `namespaces`: the namespaces to watch; None or empty: cluster-wide.
        - `kubeconfig`, `context`: credentials; by default `$KUBECONFIG`, else the
          pod's service account, else `~/.kube/config`.
        - `telemetry`: serve the exporter's own `panopticon_embed_*` metrics too.
        - `max_series_per_config`: cap every config's series (a config's own
          `spec.limits.series` applies when lower); past it, the objects last in
          uid-hash order are left out (`panopticon.limits`). None: no global cap.
        """
        if max_series_per_config is not None and (
            type(max_series_per_config) is not int or max_series_per_config < 0
        ):
            raise ExporterError(
                f"Exporter(max_series_per_config={max_series_per_config!r}): must be a non-negative integer"
            )
        self._max_series = max_series_per_config
        loaded = load(configs)
        self.configs: tuple[ConfigReport, ...] = loaded.reports
        """What loading said about each config: valid or not, errors and warnings."""
        for report in self.configs:
            for problem in report.errors:
                log.error("%s", problem)
            for problem in report.warnings:
                log.warning("%s", problem)
        self._resolution = loaded.resolution
        self._programs = loaded.programs_by_target()
        self._generators = _generators(generators or {})
        self._namespaces = _namespaces(namespaces)
        self._kubeconfig = kubeconfig
        self._context = context
        self._lines = FamilyLines()
        self._kinds: list[WatchedKind] = []
        self._task: asyncio.Task[None] | None = None
        self._ready_event: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._lifecycle = asyncio.Lock()
        self._metrics = EmbedMetrics(objects=self._objects, ready=lambda: self.ready, dropped=self._dropped)
        valid = sum(1 for r in self.configs if r.valid and r.name)
        self._metrics.configs.labels("valid").set(valid)
        self._metrics.configs.labels("invalid").set(sum(1 for r in self.configs if not r.valid))
        registries = [r for r in (registry, self._metrics.registry if telemetry else None) if r is not None]
        self._warnings = RateLimitedLog(log)
        self._scrape = Scrape(self._lines, registries, self._metrics, self._warnings)

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start watching and rendering on the running loop; returns at once (see
        `ready`). Raises `ExporterError` when already started or without credentials."""
        async with self._lifecycle:
            if self._task is not None:
                raise ExporterError("Exporter.start(): already started (call stop() first)")
            try:
                credentials = await asyncio.to_thread(load_credentials, self._kubeconfig, self._context)
            except CredentialsError as e:
                raise ExporterError(f"Exporter.start(): {e}") from e
            log.info("watching through the Kubernetes API at %s (%s)", credentials.server, credentials.source)
            client = KubeClient(credentials)
            await client.open()
            for name, family in self._resolution.families.items():
                self._lines.declare(family.header, family.configs[0] if family.configs else name)
            self._kinds = [
                WatchedKind(
                    api_version,
                    kind,
                    programs=self._programs.get((api_version, kind), []),
                    generator=self._generators.get((api_version, kind)),
                    lines=self._lines,
                    metrics=self._metrics,
                    warnings=self._warnings,
                    namespaces=self._namespaces,
                    settled=self._settled,
                    max_series=self._max_series,
                )
                for api_version, kind in sorted({*self._programs, *self._generators})
            ]
            self._ready_event = asyncio.Event()
            self._task = asyncio.create_task(self._run(client), name="panopticon exporter")
            self._settled()

    async def _run(self, client: KubeClient) -> None:
        discovery = Discovery(client, miss_refresh_interval=RESOLVE_RETRY)
        related = related_watch(self._kinds, client, discovery)
        try:
            async with asyncio.TaskGroup() as tasks:
                for kind in self._kinds:
                    tasks.create_task(kind.run(client, discovery), name=f"kind {kind.label}")
                if related.active:
                    tasks.create_task(related.run(), name="related objects")
        except Exception:
            log.exception("the exporter stopped watching")
            raise
        finally:
            related.stop()
            await client.close()

    async def stop(self) -> None:
        """Stop watching and serving, and forget every object. Harmless when not
        started (a cleanup handler may run after a failed start); `start()` may be
        called again afterwards."""
        async with self._lifecycle:
            task, self._task = self._task, None
            runner, self._runner = self._runner, None
            if self._ready_event is not None:
                self._ready_event.set()  # a waiter returns (the exporter is not ready: stopped)
                self._ready_event = None
            if runner is not None:
                await serving.stop_sites([runner])
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            kinds, self._kinds = self._kinds, []
            self._lines.clear()  # a scrape from here on serves none of the objects
            for kind in kinds:
                await kind.forget()  # their memory, a slot at a time (the loop is the operator's)

    async def __aenter__(self) -> Exporter:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def ready(self) -> bool:
        """True once started and every watched kind has synced in every namespace (a
        kind the API server does not serve counts as synced: it has no objects)."""
        return self._task is not None and all(kind.settled for kind in self._kinds)

    async def wait_ready(self) -> None:
        """Return once `ready`, or once stopped (bound it with `asyncio.timeout`).
        Raises `ExporterError` when the exporter is not started."""
        event = self._ready_event
        if event is None or self._task is None:
            raise ExporterError("Exporter.wait_ready(): not started")
        await event.wait()

    def _settled(self) -> None:
        if self._ready_event is not None and self.ready:
            self._ready_event.set()

    # --- HTTP -------------------------------------------------------------------------

    async def handler(self, request: web.Request) -> web.StreamResponse:
        """`/metrics` for any aiohttp app: `app.router.add_get("/metrics", exporter.handler)`."""
        return await self._scrape.handle(request)

    async def serve(self, port: int = 9090, host: str = "0.0.0.0") -> int:
        """Serve `/metrics`, `/healthz` and `/readyz` (200 once `ready`) on `host:port`
        until `stop()`; returns the port (useful with `port=0`)."""
        async with self._lifecycle:
            if self._runner is not None:
                raise ExporterError("Exporter.serve(): already serving (call stop() first)")
            app = web.Application()
            app.router.add_get("/metrics", self.handler)
            app.router.add_get("/healthz", _healthz)
            app.router.add_get("/readyz", self._readyz)
            try:
                runners = await serving.start_sites([(app, host, port)], flags=["port"])
            except PanopticonError as e:
                raise ExporterError(f"Exporter.serve(): {e}") from e
            self._runner = runners[0]
            bound = serving.bound_port(self._runner)
            log.info("serving /metrics on port %d", bound)
            return bound

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.ready:
            return web.Response(text="ok\n")
        return web.Response(status=503, text="not synced yet\n")

    def _objects(self) -> list[tuple[str, int]]:
        return [(kind.label, kind.objects) for kind in self._kinds]

    def _dropped(self) -> list[tuple[str, int]]:
        return [
            (config, count.dropped) for kind in self._kinds for config, count in kind.caps.counts().items()
        ]


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def _generators(given: Mapping[Any, Any]) -> dict[tuple[str, str], Generator]:
    out: dict[tuple[str, str], Generator] = {}
    for key, value in given.items():
        if not (
            isinstance(key, tuple) and len(key) == 2 and all(isinstance(part, str) and part for part in key)
        ):
            raise ExporterError(f"generators: key {key!r} is not an (apiVersion, kind) pair")
        if isinstance(value, Generator):
            out[key] = value
        elif callable(value):
            out[key] = Generator(value)
        else:
            raise ExporterError(f"generators[{key!r}]: {value!r} is not a function or a Generator")
    return out


def _namespaces(given: Iterable[str] | str | None) -> tuple[str, ...]:
    if given is None:
        return ()
    names = (given,) if isinstance(given, str) else tuple(given)
    for name in names:
        if not isinstance(name, str):
            raise ExporterError(f"namespaces: {name!r} is not a namespace name")
    return tuple(dict.fromkeys(n for n in names if n))
