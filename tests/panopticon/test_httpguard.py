"""Every port Panopticon serves, against clients that misbehave, over raw sockets.

The shard's port (its real app) stands for them all: they are started by
`serving.start_sites`, which puts `panopticon.httpguard` in front of each. HEAD is
checked on every endpoint of the three apps."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from prometheus_client import generate_latest

from aggregator.app import build_apps
from panopticon import serving
from panopticon.httpguard import GuardSettings
from panopticon.store.layout import Layout
from panopticon.store.memory import MemoryStore
from shard.telemetry import Health, ShardMetrics, build_app
from tests.support import aio

FAST = GuardSettings(max_connections=3, request_timeout=0.4, idle_timeout=2.0)


def rejected(metrics: ShardMetrics) -> dict[str, float]:
    text = generate_latest(metrics.registry).decode()
    prefix = 'panopticon_shard_http_rejected_total{reason="'
    return {
        line[len(prefix) : line.index('"', len(prefix))]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix)
    }


def with_shard_port(test: Callable[[int, ShardMetrics], Awaitable[None]]) -> None:
    async def main() -> None:
        metrics = ShardMetrics()
        health = Health()
        health.ready = True
        runners = await serving.start_sites(
            [(build_app(metrics, health), "127.0.0.1", 0)], on_reject=metrics.reject, guard=FAST
        )
        try:
            await test(serving.bound_port(runners[0]), metrics)
        finally:
            await serving.stop_sites(runners)

    aio.run(main())


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether the server closes the connection within `seconds` (EOF, or a reset)."""
    try:
        return await asyncio.wait_for(reader.read(1 << 16), seconds) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_client_that_trickles_its_request_head_is_disconnected_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def test(port: int, metrics: ShardMetrics) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        for _ in range(3):  # a header every 0.15 s, never the blank line
            await asyncio.sleep(0.15)
            writer.write(b"X-Slow: 1\r\n")
        assert await closed_within(reader, 2.0)
        writer.close()
        assert rejected(metrics) == {"request_timeout": 1}

    caplog.set_level(logging.DEBUG)
    with_shard_port(test)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("no complete request" in r.getMessage() for r in caplog.records)


def test_an_idle_connection_is_closed_without_counting_and_a_busy_one_is_kept() -> None:
    async def test(port: int, metrics: ShardMetrics) -> None:
        idle_reader, idle = await asyncio.open_connection("127.0.0.1", port)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(8):  # requests every 0.3 s keep this one open past the idle timeout
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await asyncio.wait_for(reader.readuntil(b"ok\n"), 2)).startswith(b"HTTP/1.1 200")
            await asyncio.sleep(0.3)
        assert await closed_within(idle_reader, 3.0)
        idle.close()
        writer.close()
        assert rejected(metrics) == {}

    with_shard_port(test)


def test_connections_past_the_limit_are_closed_at_once_and_counted() -> None:
    async def test(port: int, metrics: ShardMetrics) -> None:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(FAST.max_connections)]
        await asyncio.sleep(0.05)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await closed_within(reader, 0.3)
        writer.close()
        assert rejected(metrics) == {"too_many_connections": 1}
        for _, w in held:  # room again: the same request is served
            w.close()
        await asyncio.sleep(0.05)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await asyncio.wait_for(reader.read(), 2)).startswith(b"HTTP/1.1 200")
        writer.close()

    with_shard_port(test)


def test_an_oversized_header_on_the_shard_port_gets_400_and_is_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def test(port: int, metrics: ShardMetrics) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nCookie: " + b"c" * 9000 + b"\r\n\r\n")
        assert b" 400 " in (await asyncio.wait_for(reader.readline(), 2))
        writer.close()
        assert rejected(metrics) == {"bad_request": 1}

    with_shard_port(test)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_head_leaves_every_endpoint_of_every_port_usable_for_the_next_request() -> None:
    async def main() -> None:
        health = Health()
        health.ready = True
        metrics_app, telemetry_app = build_apps(MemoryStore(Layout(prefix="h", buckets=64, slots=8)))
        apps: list[web.Application] = [build_app(ShardMetrics(), health), metrics_app, telemetry_app]
        runners = await serving.start_sites([(app, "127.0.0.1", 0) for app in apps])
        try:
            for runner in runners:
                reader, writer = await asyncio.open_connection("127.0.0.1", serving.bound_port(runner))
                for path in ("/metrics", "/healthz", "/readyz"):
                    writer.write(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
                    assert head.startswith(b"HTTP/1.1 200"), (path, head)
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                rest = await asyncio.wait_for(reader.read(), 2)
                assert rest.startswith(b"HTTP/1.1 200") and rest.endswith(b"\r\n\r\nok\n"), rest[:300]
                writer.close()
        finally:
            await serving.stop_sites(runners)

    aio.run(main())
