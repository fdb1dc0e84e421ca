"""The aggregator's HTTP endpoints: thin handlers over `scrape.exposition`.

- metrics port: `/metrics` (the users' metrics; text or OpenMetrics, gzip when asked),
  `/healthz`, `/readyz`;
- telemetry port: `/metrics` (the aggregator's own metrics and the shards it sees),
  `/healthz`, `/readyz`.

A store failure in the middle of a response aborts the connection, so Prometheus
records a failed scrape instead of a truncated one; a scrape beyond the concurrency
limit gets 503 at once. `HEAD /metrics` answers the headers a scrape would get and
reads nothing from the store. A client that goes away mid-scrape, or stops reading
for `stall_timeout` seconds, ends the scrape: counted, logged at DEBUG, and its
slot, its Redis connection and its gzip thread are free again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from aggregator.compress import gzip_stream
from aggregator.negotiation import choose_format, wants_gzip
from aggregator.partition import Partition, PartitionError, parse_partition
from aggregator.scrape import ScrapeStats, exposition
from aggregator.telemetry import AggregatorMetrics
from panopticon.errors import StoreError
from panopticon.httpguard import StallWatch
from panopticon.store.contract import Store

log = logging.getLogger("panopticon.aggregator")


@dataclass(frozen=True, slots=True)
class ScrapeSettings:
    max_concurrent: int = 4
    """Scrapes served at once; more get 503 (each can stream hundreds of MB)."""
    gzip_level: int = 1
    """zlib level: 1 is several times cheaper than the default 6 for ~10% more bytes."""
    gzip_engine: str = "auto"
    """`auto` (ISA-L when its wheel imports, else zlib), `isal` or `zlib`."""
    heartbeat_stale_after: float = 15.0
    """Seconds without a heartbeat after which a shard counts as down."""
    ready_timeout: float = 2.0
    """Seconds /readyz waits for the store."""
    stall_timeout: float = 30.0
    """Seconds a scrape may go without progress while its client reads nothing; then
    the connection is closed (otherwise a client that stopped reading would hold a
    scrape slot forever: 4 such clients and Prometheus gets 503s)."""


STORE = web.AppKey("store", Store)
SETTINGS = web.AppKey("settings", ScrapeSettings)
METRICS = web.AppKey("metrics", AggregatorMetrics)
SLOTS = web.AppKey("slots", asyncio.Semaphore)
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)


def _store(request: web.Request) -> Store:
    return request.app[STORE]


async def metrics(request: web.Request) -> web.StreamResponse:
    app = request.app
    telemetry = app[METRICS]
    try:
        partition = parse_partition(request.query, _store(request).layout.slots)
    except PartitionError as e:
        telemetry.reject("bad_partition")
        return web.Response(status=400, text=f"{e}\n")
    if request.method == "HEAD":
        # The headers only: no store read, no scrape slot, not counted as a scrape.
        return web.Response(headers=_headers(request))
    slots = app[SLOTS]
    if slots.locked():
        telemetry.rejected.inc()
        return web.Response(status=503, text="too many concurrent scrapes\n", headers={"Retry-After": "1"})
    async with slots:
        return await _serve(request, _store(request), app[SETTINGS], telemetry, partition)


def _headers(request: web.Request) -> dict[str, str]:
    headers = {"Content-Type": choose_format(request.headers.get("Accept")).content_type}
    headers["Cache-Control"] = "no-store"
    if wants_gzip(request.headers.get("Accept-Encoding")):
        headers["Content-Encoding"] = "gzip"
    return headers


async def _serve(
    request: web.Request,
    store: Store,
    settings: ScrapeSettings,
    telemetry: AggregatorMetrics,
    partition: Partition | None,
) -> web.StreamResponse:
    fmt = choose_format(request.headers.get("Accept"))
    gzip = wants_gzip(request.headers.get("Accept-Encoding"))
    started = time.perf_counter()
    stats = ScrapeStats()
    slots = partition.slots(store.layout.slots) if partition is not None else None
    stream = exposition(store, fmt, stats, slots)
    try:
        first = await anext(stream, None)  # a store failure here still gets a clean 503
    except StoreError as e:
        telemetry.store_errors.inc()
        log.warning("scrape failed before the first byte: %s", e)
        return web.Response(status=503, text=f"store unavailable: {e}\n")
    response = web.StreamResponse(headers=_headers(request))
    if partition is not None:
        # One connection per partitioned scrape: Prometheus would otherwise reuse one
        # keep-alive connection for every partition, and a Service balances connections,
        # so all the parts would land on one replica. A handshake per scrape is nothing
        # beside the scrape.
        response.force_close()

    async def body() -> AsyncIterator[bytes]:
        if first is not None:
            yield first
        async for chunk in stream:
            yield chunk

    chunks = (
        body()
        if not gzip
        else gzip_stream(
            body(), level=settings.gzip_level, executor=request.app[EXECUTOR], engine=settings.gzip_engine
        )
    )
    transport = request.transport
    watch = StallWatch(transport, lambda: stats.bytes, settings.stall_timeout) if transport else None
    try:
        await response.prepare(request)
        async for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
    except ConnectionError as e:
        telemetry.disconnected.inc()
        why = f"stopped reading for {settings.stall_timeout:g} s" if watch and watch.stalled else str(e)
        log.debug("scrape from %s ended by the client after %d bytes: %s", request.remote, stats.bytes, why)
        return response
    except StoreError as e:
        # Abort: no chunked terminator, so the client sees a broken response, never a
        # short one that parses.
        telemetry.store_errors.inc()
        telemetry.aborted.inc()
        log.warning("scrape aborted after %d bytes: %s", stats.bytes, e)
        if request.transport is not None:
            request.transport.abort()
        return response
    finally:
        if watch is not None:
            watch.cancel()
        await stream.aclose()  # its Redis connection now, not when the generator is collected
    elapsed = time.perf_counter() - started
    telemetry.observe(fmt.value, "gzip" if gzip else "identity", elapsed, stats, partition)
    return response


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(request.app[SETTINGS].ready_timeout):
            await _store(request).registry()
    except (StoreError, TimeoutError) as e:
        return web.Response(status=503, text=f"store not reachable: {e}\n")
    return web.Response(text="ok\n")


async def telemetry_metrics(request: web.Request) -> web.Response:
    app = request.app
    telemetry = app[METRICS]
    try:
        shards = await _store(request).shards()
    except StoreError:
        telemetry.store_errors.inc()
        shards = {}
    telemetry.update_shards(shards, now=time.time(), stale_after=app[SETTINGS].heartbeat_stale_after)
    return web.Response(body=generate_latest(telemetry.registry), content_type="text/plain", charset="utf-8")


def build_apps(
    store: Store, settings: ScrapeSettings | None = None
) -> tuple[web.Application, web.Application]:
    """The metrics app and the telemetry app, sharing one store and one set of metrics."""
    settings = settings or ScrapeSettings()
    telemetry = AggregatorMetrics(CollectorRegistry(auto_describe=True))
    executor = ThreadPoolExecutor(max_workers=settings.max_concurrent, thread_name_prefix="gzip")
    apps = []
    for routes in (
        [web.get("/metrics", metrics), web.get("/healthz", healthz), web.get("/readyz", readyz)],
        [web.get("/metrics", telemetry_metrics), web.get("/healthz", healthz), web.get("/readyz", readyz)],
    ):
        app = web.Application()
        app[STORE] = store
        app[SETTINGS] = settings
        app[METRICS] = telemetry
        app[SLOTS] = asyncio.Semaphore(settings.max_concurrent)
        app[EXECUTOR] = executor
        app.add_routes(routes)
        apps.append(app)

    async def shutdown(app: web.Application) -> None:
        executor.shutdown(wait=False, cancel_futures=True)

    apps[0].on_cleanup.append(shutdown)
    return apps[0], apps[1]
