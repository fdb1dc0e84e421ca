"""The aggregator's /metrics at the edges of HTTP, over raw sockets (a client library
would hide what goes over the wire): HEAD, a client that hangs up mid-scrape or stops
reading, and a request line over the limit. Each is counted in the telemetry and
logged as one DEBUG line; none is an ERROR."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Awaitable, Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families as parse_text

from aggregator.app import METRICS, ScrapeSettings, build_apps
from panopticon import serving
from panopticon.render.exposition import FamilyHeader
from panopticon.store.batch import Op
from panopticon.store.layout import Layout, RegistryEntry, token
from panopticon.store.memory import MemoryStore
from tests.support import aio

LAYOUT = Layout(prefix="e", buckets=64, slots=8)


async def fill_large(store: MemoryStore, megabytes: int) -> None:
    """About `megabytes` MB of exposition: more than any socket buffer holds."""
    await store.ensure_layout()
    for slot in range(LAYOUT.slots):
        await store.claim(slot, 0, 1, list(LAYOUT.buckets_of_slot(slot)))
    await store.set_registry({"big": RegistryEntry.of(FamilyHeader("big", "big"), ["cfg"])}, [])
    pad = "x" * 1000
    for i in range(megabytes * 1000):
        uid = f"uid-{i}"
        bucket = LAYOUT.space.bucket(uid)
        line = f'big{{obj="{i}",pad="{pad}"}} 1\n'.encode()
        await store.write(LAYOUT.slot_of(bucket), token(0, 1), [Op("big", bucket, uid, line)])


Test = Callable[[int, Callable[[], Awaitable[dict[str, float]]]], Awaitable[None]]


def with_aggregator(store: MemoryStore, test: Test, settings: ScrapeSettings | None = None) -> None:
    """Serve `store`; `test(port, telemetry)` gets the metrics port and a reader of the
    telemetry counters."""

    async def main() -> None:
        metrics_app, telemetry_app = build_apps(store, settings)
        runners = await serving.start_sites(
            [(metrics_app, "127.0.0.1", 0), (telemetry_app, "127.0.0.1", 0)],
            on_reject=metrics_app[METRICS].reject,
        )

        async def telemetry() -> dict[str, float]:
            _, body = await request(
                serving.bound_port(runners[1]), b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            return {
                s.name + "".join(f"{{{k}={v}}}" for k, v in s.labels.items()): s.value
                for f in parse_text(body.decode())
                for s in f.samples
            }

        try:
            await test(serving.bound_port(runners[0]), telemetry)
        finally:
            await serving.stop_sites(runners)

    aio.run(main())


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)


async def request(port: int, raw: bytes) -> tuple[bytes, bytes]:
    """One request on a fresh connection; the response's head and body (read to EOF)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\nConnection: close\r\n", 1))
    head = await read_head(reader)
    body = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return head, body


async def scrape_slowly(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A scrape from a client with a 4 KB receive window, which reads only when told."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\n\r\n")
    return reader, writer


def serve_large(
    caplog: pytest.LogCaptureFixture, test: Test, *, megabytes: int, settings: ScrapeSettings | None = None
) -> None:
    """`test` against an aggregator over `megabytes` MB of series; nothing may be logged
    above DEBUG."""
    caplog.set_level(logging.DEBUG)
    store = MemoryStore(LAYOUT)
    aio.run(fill_large(store, megabytes))
    with_aggregator(store, test, settings)
    no_errors_logged(caplog)


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not loud, [r.getMessage() for r in loud]


def test_head_answers_the_headers_only_and_the_connection_stays_usable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def test(port: int, telemetry: Callable[[], Awaitable[dict[str, float]]]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
        head = await read_head(reader)
        assert head.startswith(b"HTTP/1.1 200") and b"Content-Encoding: gzip" in head
        assert b"Content-Type: text/plain; version=0.0.4" in head
        # Nothing follows the headers: the next response on this connection is the next request's.
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        second = await read_head(reader)
        assert second.startswith(b"HTTP/1.1 200"), second[:200]
        assert await asyncio.wait_for(reader.readexactly(3), 5) == b"ok\n"
        writer.close()
        counters = await telemetry()
        assert "panopticon_aggregator_scrape_bytes_total" not in counters or (
            counters["panopticon_aggregator_scrape_bytes_total"] == 0
        )
        assert counters["panopticon_aggregator_last_scrape_series"] == 0

    serve_large(caplog, test, megabytes=1)


def test_a_client_that_hangs_up_mid_scrape_is_counted_and_logged_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def test(port: int, telemetry: Callable[[], Awaitable[dict[str, float]]]) -> None:
        reader, writer = await scrape_slowly(port)
        await read_head(reader)
        await reader.readexactly(1000)
        # A reset, as a client killed mid-scrape leaves it.
        writer.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        writer.transport.abort()
        for _ in range(50):
            counters = await telemetry()
            if counters.get("panopticon_aggregator_scrapes_disconnected_total"):
                break
            await asyncio.sleep(0.1)
        assert counters["panopticon_aggregator_scrapes_disconnected_total"] == 1
        assert counters["panopticon_aggregator_scrapes_aborted_total"] == 0

    serve_large(caplog, test, megabytes=16)
    assert any("ended by the client" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)


def test_a_client_that_stops_reading_loses_its_scrape_and_frees_the_slot(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def test(port: int, telemetry: Callable[[], Awaitable[dict[str, float]]]) -> None:
        _, stalled = await scrape_slowly(port)
        await asyncio.sleep(0.2)  # the scrape holds the only slot and reads no more
        # Within a few stall timeouts the slot is free again: a scrape gets a 200, not a 503.
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            head, _ = await request(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            if head.startswith(b"HTTP/1.1 200"):
                break
            assert head.startswith(b"HTTP/1.1 503")
            assert asyncio.get_running_loop().time() < deadline, "the stalled client kept its slot"
            await asyncio.sleep(0.2)
        stalled.close()
        assert (await telemetry())["panopticon_aggregator_scrapes_disconnected_total"] == 1

    serve_large(caplog, test, megabytes=16, settings=ScrapeSettings(max_concurrent=1, stall_timeout=0.5))
    assert any("stopped reading" in r.getMessage() for r in caplog.records)


def test_a_request_line_over_the_limit_gets_400_and_is_counted_not_logged_as_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def test(port: int, telemetry: Callable[[], Awaitable[dict[str, float]]]) -> None:
        head, _ = await request(port, b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 400") or head.startswith(b"HTTP/1.1 400"), head
        head, _ = await request(port, b"GET /metrics HTTP/1.1\r\nX-Big: " + b"b" * 10_000 + b"\r\n\r\n")
        assert b" 400 " in head.split(b"\r\n")[0]
        counters = await telemetry()
        assert counters["panopticon_aggregator_http_rejected_total{reason=bad_request}"] == 2

    caplog.set_level(logging.DEBUG)
    with_aggregator(MemoryStore(LAYOUT), test)
    no_errors_logged(caplog)
    debug = [r.getMessage() for r in caplog.records if r.name == "panopticon.http"]
    assert len(debug) == 2 and all("\n" not in m and "bad_request" in m for m in debug), debug
