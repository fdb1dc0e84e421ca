"""/metrics of the library: the operator's registry and Panopticon's families in one exposition."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from panopticon._embed.lines import CHUNK_OBJECTS, FamilyLines
from panopticon._embed.scrape import Scrape
from panopticon._embed.telemetry import EmbedMetrics, RateLimitedLog
from panopticon.render.exposition import FamilyHeader
from tests.panopticon.embed.support import OM_ACCEPT, promtool_accepts, samples
from tests.support import aio

log = logging.getLogger("panopticon.embed")


def lines_of(*families: str, objects: int = 3) -> FamilyLines:
    """Two kinds: every object has a line in each family but the last, which only the
    second kind's objects have (and a family declared but empty is left out)."""
    lines = FamilyLines()
    first, second = lines.kind(), lines.kind()
    for family in (*families, "memcached_empty"):
        lines.declare(FamilyHeader(family, f'Help of "{family}".'), "some-config")
        first.index(family)
        second.index(family)
    for i in range(objects):
        text = [f'{f}{{memcached="m{i}",namespace="default"}} {i}\n'.encode() for f in families]
        kind, lines_of_object = (first, (*text[:-1], None)) if i % 2 else (second, (*text,))
        kind.put(f"uid-{i}", lines_of_object)
    return lines


def with_scrape(
    lines: FamilyLines, registry: CollectorRegistry, test: Callable[[str, EmbedMetrics], Awaitable[None]]
) -> None:
    async def main() -> None:
        metrics = EmbedMetrics(objects=list, ready=lambda: True)
        scrape = Scrape(lines, [registry, metrics.registry], metrics, RateLimitedLog(log))
        app = web.Application()
        app.router.add_get("/metrics", scrape.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            await test(f"http://127.0.0.1:{runner.addresses[0][1]}/metrics", metrics)
        finally:
            await runner.cleanup()

    aio.run(main())


async def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """GET, without compression unless asked for."""
    headers = {"Accept-Encoding": "identity", **headers}
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(url, headers=headers) as r,
    ):
        return r.status, dict(r.headers), await r.read()


def test_both_formats_gzip_and_name_filters_serve_one_valid_exposition() -> None:
    registry = CollectorRegistry()
    Counter("operator_reconciles", "Reconciles.", ["outcome"], registry=registry).labels("ok").inc(2)
    lines = lines_of("memcached_alpha", "memcached_beta", objects=CHUNK_OBJECTS + 5)

    async def test(url: str, metrics: EmbedMetrics) -> None:
        status, headers, body = await get(url)
        text = body.decode()
        assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
        got = samples(text)
        assert got[("operator_reconciles_total", (("outcome", "ok"),))] == 2
        assert got[("memcached_beta", (("memcached", "m516"), ("namespace", "default")))] == 516
        assert got[("memcached_alpha", (("memcached", "m515"), ("namespace", "default")))] == 515
        assert sum(1 for name, _ in got if name == "memcached_beta") == (CHUNK_OBJECTS + 6) // 2
        assert "memcached_empty" not in text
        assert text.count("# TYPE memcached_alpha gauge") == 1
        promtool_accepts(text)

        status, headers, body = await get(url, Accept=OM_ACCEPT, **{"Accept-Encoding": "gzip"})
        assert headers["Content-Encoding"] == "gzip"
        assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
        om = gzip.decompress(body).decode()
        assert om.endswith("# EOF\n") and om.count("# EOF") == 1
        names = [f.name for f in parse_openmetrics(om)]
        assert names.count("memcached_alpha") == 1 and "operator_reconciles" in names

        _, _, body = await get(url + "?name[]=memcached_beta&name[]=operator_reconciles_total")
        assert {name for name, _ in samples(body.decode())} == {"memcached_beta", "operator_reconciles_total"}

        async with aiohttp.ClientSession() as session, session.head(url) as r:
            assert r.status == 200 and await r.read() == b""

    with_scrape(lines, registry, test)


def test_a_family_clashing_with_the_operators_metrics_is_left_out_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    Counter("memcached_restarts", "Restarts.", registry=registry).inc()  # exposes memcached_restarts_total
    Gauge("memcached_spec_size", "The operator's own gauge.", registry=registry).set(7)
    lines = lines_of("memcached_restarts_total", "memcached_spec_size", "memcached_ok")

    async def test(url: str, metrics: EmbedMetrics) -> None:
        with caplog.at_level(logging.WARNING, logger="panopticon.embed"):
            texts = [(await get(url))[2].decode() for _ in range(2)]
            om = (await get(url, Accept=OM_ACCEPT))[2].decode()
        text = texts[0]
        got = samples(text)
        assert got[("memcached_spec_size", ())] == 7  # the operator's metric wins
        assert got[("memcached_restarts_total", ())] == 1
        assert ("memcached_ok", (("memcached", "m0"), ("namespace", "default"))) in got
        assert (
            "memcached_spec_size{memcached" not in text and "memcached_restarts_total{memcached" not in text
        )
        assert len([f.name for f in parse_openmetrics(om)]) == len({f.name for f in parse_openmetrics(om)})
        promtool_accepts(text)
        # Counted once per scrape that left it out (three so far; a scrape's own
        # self-metrics are collected before it counts).
        clashes = samples((await get(url))[2].decode())
        assert clashes[("panopticon_embed_family_clashes_total", (("family", "memcached_spec_size"),))] == 3
        logged = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
        assert len(logged) == 2, logged  # once per family, not once per scrape

    with_scrape(lines, registry, test)


def test_a_failing_collector_of_the_operator_fails_the_scrape_cleanly() -> None:
    class Broken:
        def collect(self) -> list[object]:
            raise RuntimeError("database down")

    registry = CollectorRegistry()
    registry.register(Broken())  # type: ignore[arg-type]

    async def test(url: str, metrics: EmbedMetrics) -> None:
        status, _, body = await get(url)
        assert status == 500 and body == b"collecting metrics failed: RuntimeError: database down\n"

    with_scrape(lines_of("memcached_ok"), registry, test)


def test_a_kind_is_read_in_pieces_of_few_objects_one_slot_at_a_time() -> None:
    """What keeps a scrape of 100,000 objects from holding the operator's loop: no
    piece lists or joins more than about a thousand objects (the scrape may yield
    between any two), and a kind's objects are listed one slot dict at a time."""
    lines = lines_of("memcached_alpha", "memcached_beta", objects=20_000)
    pieces = list(lines.chunks("memcached_alpha"))
    assert sum(piece.count(b"\n") for piece in pieces) == 20_000
    assert max(piece.count(b"\n") for piece in pieces) <= 1_000
    assert len(pieces) >= 64  # two kinds, each listed slot by slot
