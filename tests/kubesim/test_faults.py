"""Fault knobs (kubesim/README.md, "Faults"), driven through the Python API of an
in-process simulator and read with aiohttp, the client the reflector will use."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest

from kubesim import SimConfig, SimServer
from tests.support import aio

NS = "default"
CMS = f"/api/v1/namespaces/{NS}/configmaps"


def run(test: Callable[[SimServer, aiohttp.ClientSession], Awaitable[None]], **config: Any) -> None:
    async def main() -> None:
        async with SimServer(SimConfig(seed=3, compaction_window=None, **config)) as server:
            headers = {"Authorization": f"Bearer {server.token}"}
            async with aiohttp.ClientSession(server.url, headers=headers) as session:
                await test(server, session)

    aio.run(main())


def cm(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS},
        "data": data,
    }


@asynccontextmanager
async def watch(session: aiohttp.ClientSession, **params: str) -> AsyncIterator[aiohttp.ClientResponse]:
    async with session.get(CMS, params={"watch": "1", **params}) as resp:
        assert resp.status == 200
        yield resp


async def lines(resp: aiohttp.ClientResponse, *, within: float = 5.0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(within):
        async for line in resp.content:
            out.append(orjson.loads(line))
    return out


async def next_event(resp: aiohttp.ClientResponse, *, within: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(within):
        line = await resp.content.readline()
    assert line, "stream ended"
    return orjson.loads(line)  # type: ignore[no-any-return]


async def drain(resp: aiohttp.ClientResponse) -> None:
    while True:
        try:
            async with asyncio.timeout(0.15):
                line = await resp.content.readline()
        except TimeoutError:
            return
        assert orjson.loads(line)["type"] == "BOOKMARK"


def test_split_chunks_cut_watch_bytes_inside_utf8_sequences() -> None:
    async def check(server: SimServer, session: aiohttp.ClientSession) -> None:
        server.sim.split_chunks(max_piece=16, utf8=True)
        rv = server.sim.revision
        async with watch(session, resourceVersion=str(rv), timeoutSeconds="2") as resp:
            server.sim.create(cm("unicode", text="héllo wörld — 日本語 😀" * 4))
            chunks = [data async for data, _ in resp.content.iter_chunks()]
        assert len(chunks) > 5
        undecodable = 0
        for c in chunks:
            try:
                c.decode()
            except UnicodeDecodeError:
                undecodable += 1
        assert undecodable > 0, "some HTTP chunk ends inside a UTF-8 sequence"
        event = orjson.loads(b"".join(chunks).splitlines()[0])
        assert event["object"]["data"]["text"].startswith("héllo wörld — 日本語 😀")

    run(check)


@pytest.mark.parametrize("code", [410, 500, 504])
def test_an_injected_error_is_an_in_band_event_then_the_end(code: int) -> None:
    async def check(server: SimServer, session: aiohttp.ClientSession) -> None:
        async with watch(session, resourceVersion=str(server.sim.revision)) as resp:
            await asyncio.sleep(0.05)
            assert server.sim.inject_watch_error(code, resource="configmaps") == 1
            events = await lines(resp)
        assert [e["type"] for e in events] == ["ERROR"]
        status = events[0]["object"]
        assert status["kind"] == "Status" and status["code"] == code
        assert status["reason"] == {410: "Expired", 500: "InternalError", 504: "Timeout"}[code]

    run(check)


def test_the_expired_reason_can_be_the_old_gone() -> None:
    async def check(server: SimServer, session: aiohttp.ClientSession) -> None:
        async with watch(session, resourceVersion=str(server.sim.revision)) as resp:
            await asyncio.sleep(0.05)
            server.sim.inject_watch_error(410)
            (event,) = await lines(resp)
        assert event["object"]["reason"] == "Gone"

    run(check, expired_reason="Gone")


def test_closing_watches_ends_them_cleanly_or_resets_them() -> None:
    async def check(server: SimServer, session: aiohttp.ClientSession) -> None:
        async with watch(session, resourceVersion=str(server.sim.revision)) as resp:
            await asyncio.sleep(0.05)
            assert server.sim.close_watches("eof") == 1
            assert await lines(resp) == []
        async with watch(session, resourceVersion=str(server.sim.revision)) as resp:
            await asyncio.sleep(0.05)
            server.sim.close_watches("abort")
            with pytest.raises(aiohttp.ClientError):
                await lines(resp)

    run(check)


def test_a_stalled_watch_sends_nothing_until_unstalled() -> None:
    async def check(server: SimServer, session: aiohttp.ClientSession) -> None:
        async with watch(
            session, resourceVersion=str(server.sim.revision), allowWatchBookmarks="true"
        ) as resp:
            await asyncio.sleep(0.05)
            assert server.sim.stall_watches(None) == 1
            await drain(resp)  # bookmarks sent before the stall
            server.sim.create(cm("during-stall"))
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.4):
                    await resp.content.readline()
            server.sim.unstall_watches()
            assert (await next_event(resp))["object"]["metadata"]["name"] == "during-stall"

    run(check, bookmark_interval=0.05)


def test_a_stalled_watch_still_ends_at_its_timeout() -> None:
    async def check(server: SimServer, session: aiohttp.ClientSession) -> None:
        started = time.monotonic()
        async with watch(session, resourceVersion=str(server.sim.revision), timeoutSeconds="1") as resp:
            await asyncio.sleep(0.05)
            server.sim.stall_watches(30)
            server.sim.create(cm("unseen"))
            assert await lines(resp) == []
        assert time.monotonic() - started < 3

    run(check)


def test_a_watcher_that_falls_out_of_the_event_ring_is_dropped() -> None:
    async def check(server: SimServer, session: aiohttp.ClientSession) -> None:
        async with watch(session, resourceVersion=str(server.sim.revision)) as resp:
            await asyncio.sleep(0.05)
            server.sim.stall_watches(None)
            for i in range(20):
                server.sim.create(cm(f"flood-{i}"))
            server.sim.unstall_watches()
            assert await lines(resp) == [], "dropped like a slow consumer: EOF, then re-watch"
        assert server.sim.open_watches() == []

    run(check, watch_cache_capacity=4)


def test_compacting_to_a_revision_expires_watches_below_it_only() -> None:
    async def check(server: SimServer, session: aiohttp.ClientSession) -> None:
        sim = server.sim
        first = int(sim.create(cm("one"))["metadata"]["resourceVersion"])
        second = int(sim.create(cm("two"))["metadata"]["resourceVersion"])
        sim.create(cm("three"))
        assert sim.compact(second) == second
        async with watch(session, resourceVersion=str(first)) as resp:
            assert (await next_event(resp))["object"]["code"] == 410
        async with watch(session, resourceVersion=str(second), timeoutSeconds="1") as resp:
            assert [e["object"]["metadata"]["name"] for e in await lines(resp)] == ["three"]

    run(check)


def test_bookmarks_can_be_turned_off_and_on_for_open_watches() -> None:
    async def check(server: SimServer, session: aiohttp.ClientSession) -> None:
        async with watch(
            session, resourceVersion=str(server.sim.revision), allowWatchBookmarks="true"
        ) as resp:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await resp.content.readline()
            server.sim.reconfigure(bookmark_interval=0.05)
            assert (await next_event(resp))["type"] == "BOOKMARK"

    run(check, bookmark_interval=None)


def test_the_request_log_records_path_query_headers_and_status() -> None:
    async def check(server: SimServer, session: aiohttp.ClientSession) -> None:
        mark = server.sim.requests.last_seq
        async with session.get(CMS, params={"limit": "7"}, headers={"X-Probe": "yes"}) as resp:
            assert resp.status == 200
        (rec,) = server.sim.requests.since(mark)
        assert (rec.method, rec.path, rec.query, rec.status, rec.verb) == (
            "GET",
            CMS,
            {"limit": "7"},
            200,
            "list",
        )
        assert rec.headers["X-Probe"] == "yes" and rec.user == "system:admin"
        async with session.get(
            server.sim.config.admin_prefix + "/requests", params={"since": str(mark)}
        ) as resp:
            body = await resp.json()
        assert [r["path"] for r in body["items"]] == [CMS]

    run(check)


def test_the_startup_delay_answers_503_then_serves() -> None:
    async def check(server: SimServer, session: aiohttp.ClientSession) -> None:
        async with session.get(CMS) as resp:
            assert resp.status == 503
        async with session.get("/readyz") as resp:
            assert resp.status == 500
        await asyncio.sleep(0.35)
        async with session.get(CMS) as resp:
            assert resp.status == 200

    run(check, startup_unavailable_seconds=0.3)


def test_the_admin_api_needs_the_admin_token() -> None:
    async def check(server: SimServer, session: aiohttp.ClientSession) -> None:
        async with session.get("/_sim/state", headers={"Authorization": "Bearer wrong"}) as resp:
            assert resp.status == 401
        async with session.get("/_sim/state") as resp:
            assert (await resp.json())["revision"] == server.sim.revision

    run(check)


def test_the_admin_api_can_be_renamed_or_disabled() -> None:
    async def renamed(server: SimServer, session: aiohttp.ClientSession) -> None:
        async with session.get("/_control/state") as resp:
            assert resp.status == 200
        async with session.get("/_sim/state") as resp:
            assert resp.status == 404

    async def disabled(server: SimServer, session: aiohttp.ClientSession) -> None:
        async with session.get("/_sim/state") as resp:
            assert resp.status == 404

    run(renamed, admin_prefix="/_control")
    run(disabled, admin_enabled=False)


def test_a_watcher_lagging_beyond_the_limit_is_dropped_like_a_slow_consumer() -> None:
    async def check(server: SimServer, session: aiohttp.ClientSession) -> None:
        async with watch(session, resourceVersion=str(server.sim.revision)) as resp:
            await asyncio.sleep(0.05)
            server.sim.stall_watches(None)
            for i in range(600):
                server.sim.create(cm(f"burst-{i}"))
            server.sim.unstall_watches()
            events = await lines(resp)
        assert 0 < len(events) < 600, "the stream ended early, cleanly"

    run(check, slow_watcher_max_lag=50)


def test_time_scale_shortens_watch_deadlines_and_bookmark_intervals() -> None:
    async def check(server: SimServer, session: aiohttp.ClientSession) -> None:
        started = time.monotonic()
        params = {
            "resourceVersion": str(server.sim.revision),
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "60",
        }
        async with watch(session, **params) as resp:
            events = await lines(resp)
        elapsed = time.monotonic() - started
        assert 0.5 < elapsed < 2.5, "60 simulated seconds at 60x"
        assert len([e for e in events if e["type"] == "BOOKMARK"]) >= 3, "10 s bookmarks every 1/6 s"

    run(check, time_scale=60.0, bookmark_interval=10.0)


def test_the_clock_offset_moves_written_timestamps() -> None:
    async def check(server: SimServer, session: aiohttp.ClientSession) -> None:
        created = server.sim.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "later"}})
        year = int(created["metadata"]["creationTimestamp"][:4])
        assert year >= time.gmtime().tm_year + 9

    run(check, clock_offset=10 * 366 * 86400.0)
