"""`/metrics` of the library: the operator's prometheus_client metrics, then Panopticon's.

One exposition, in the text format 0.0.4 or, when the scraper asks for it,
OpenMetrics 1.0: first what the prometheus_client registries give (the
operator's own, and the exporter's self-metrics), rendered by prometheus_client
itself, then every family of rendered lines, header once, streamed in chunks.

**Name clashes.** A family name may appear once in an exposition. When a name the
registries expose (a family, or any of its sample names such as `x_total` or
`x_created`) is also a family of Panopticon's, the operator's metric wins: the
Panopticon family is left out of that scrape, counted
(`panopticon_embed_family_clashes_total{family}`) and logged, rate-limited. The
registries are code the operator controls; configs and generators are data.

`?name[]=F` (repeatable) restricts the answer to those families, as
prometheus_client's own handler does. Compression is gzip, done on the loop a
chunk at a time (the library starts no thread), and between chunks the loop is
given back after `YIELD_AFTER` seconds of work.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from aiohttp import web
from prometheus_client import exposition as text_exposition
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as om_exposition
from prometheus_client.registry import Collector

from panopticon._embed.lines import FamilyLines
from panopticon._embed.telemetry import EmbedMetrics, RateLimitedLog
from panopticon.render.combine import Combiner
from panopticon.render.exposition import OPENMETRICS_CONTENT_TYPE, OPENMETRICS_EOF, TEXT_CONTENT_TYPE

log = logging.getLogger("panopticon.embed")

YIELD_AFTER = 0.0005
"""Seconds of streaming (joining, compressing, writing) before the scrape lets other
tasks run. A task waiting on a timer can wait two turns (see `_embed.kinds`), each
this plus one chunk (`_embed.lines.CHUNK_BYTES`, 0.3-0.7 ms on a loaded machine)."""
GZIP_LEVEL = 1
"""zlib level: 1 costs several times less CPU than 6 for about 10% more bytes."""

_SUFFIXED_FAMILY = {"counter": "_total", "info": "_info"}
"""The text format names these families with a suffix (prometheus_client's own munging)."""


class _Collected(Collector):
    """Metrics already collected, as the collector prometheus_client's writers take."""

    def __init__(self, metrics: Sequence[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self.metrics


def wants_openmetrics(accept: str | None) -> bool:
    """Whether the Accept header lists OpenMetrics (Prometheus asks for it first)."""
    media = (part.split(";")[0].strip() for part in (accept or "").split(","))
    return "application/openmetrics-text" in media


def collect(registries: Iterable[Collector], names: Sequence[str]) -> list[Metric]:
    """Every metric of the registries (only those with a sample in `names`, when given)."""
    out: list[Metric] = []
    for registry in registries:
        source: Any = registry
        if names and hasattr(registry, "restricted_registry"):
            source = source.restricted_registry(names)
        out.extend(source.collect())
    return out


def names_used(metrics: Iterable[Metric]) -> set[str]:
    """Every family and sample name the metrics take up in either format."""
    used: set[str] = set()
    for metric in metrics:
        used.add(metric.name)
        suffix = _SUFFIXED_FAMILY.get(metric.type)
        if suffix:
            used.add(metric.name + suffix)
        used.update(sample.name for sample in metric.samples)
    return used


class Scrape:
    """The `/metrics` handler over one exporter's lines and registries."""

    def __init__(
        self,
        lines: FamilyLines,
        registries: Sequence[Collector],
        metrics: EmbedMetrics,
        warnings: RateLimitedLog,
    ) -> None:
        self.lines = lines
        self.registries = registries
        self.metrics = metrics
        self.warnings = warnings

    async def handle(self, request: web.Request) -> web.StreamResponse:
        om = wants_openmetrics(request.headers.get("Accept"))
        gzip = text_exposition.gzip_accepted(request.headers.get("Accept-Encoding", ""))
        headers = {
            "Content-Type": OPENMETRICS_CONTENT_TYPE if om else TEXT_CONTENT_TYPE,
            "Cache-Control": "no-store",
        }
        if gzip:
            headers["Content-Encoding"] = "gzip"
        if request.method == "HEAD":
            return web.Response(headers=headers)
        names = request.query.getall("name[]", [])
        try:
            collected = collect(self.registries, names)
            head = self._registry_text(collected, om)
        except Exception as e:  # the operator's collectors: fail the scrape as prometheus_client would
            log.exception("collecting the prometheus_client registries failed")
            return web.Response(status=500, text=f"collecting metrics failed: {type(e).__name__}: {e}\n")
        families = self._families(names, names_used(collected))
        response = web.StreamResponse(headers=headers)
        body = self._body(head, families, om)
        try:
            await response.prepare(request)
            async for chunk in _gzip(body) if gzip else body:
                await response.write(chunk)
            await response.write_eof()
        except ConnectionError as e:
            log.debug("scrape from %s ended by the client: %s", request.remote, e)
        return response

    def _registry_text(self, collected: Sequence[Metric], om: bool) -> bytes:
        if not om:
            return text_exposition.generate_latest(_Collected(collected))
        write: Any = om_exposition.generate_latest  # untyped in prometheus_client
        text: bytes = write(_Collected(collected))
        return text.removesuffix(OPENMETRICS_EOF)

    def _families(self, names: Sequence[str], taken: set[str]) -> list[str]:
        families = self.lines.names()
        if names:
            wanted = set(names)
            families = [f for f in families if f in wanted]
        clashing = [f for f in families if f in taken]
        for family in clashing:
            self.metrics.family_clashes.labels(family).inc()
            self.warnings.warning(
                ("clash", family),
                "family %s is left out of /metrics: the operator's prometheus_client registry "
                "exposes the same name",
                family,
            )
        return [f for f in families if f not in taken] if clashing else families

    async def _body(self, head: bytes, families: list[str], om: bool) -> AsyncIterator[bytes]:
        yield head
        turn = time.monotonic()
        for family in families:
            header = self.lines.header(family)
            if header.aggregate is not None:
                # Partials, combined before the first line can go out (panopticon.render.combine).
                combiner = Combiner(header.aggregate.function)
                for chunk in self.lines.chunks(family):
                    combiner.feed(chunk)
                    if time.monotonic() - turn > YIELD_AFTER:
                        await asyncio.sleep(0)
                        turn = time.monotonic()
                lines = combiner.result()
                if lines:
                    yield (header.openmetrics() if om else header.text()) + lines
                continue
            started = False  # a family without any line is left out, header included
            for chunk in self.lines.chunks(family):
                if chunk:
                    if not started:
                        started = True
                        yield header.openmetrics() if om else header.text()
                    yield chunk
                if time.monotonic() - turn > YIELD_AFTER:
                    await asyncio.sleep(0)
                    turn = time.monotonic()
        if om:
            yield OPENMETRICS_EOF


async def _gzip(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """One gzip member, compressed chunk by chunk on the loop (chunks are small)."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    async for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()
