"""The aggregator over real HTTP: formats, gzip, promtool, failures, limits, telemetry."""

from __future__ import annotations

import asyncio
import gzip
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from aggregator.app import ScrapeSettings, build_apps
from panopticon import serving
from panopticon.errors import StoreError
from panopticon.render.exposition import FamilyHeader
from panopticon.store.batch import Op
from panopticon.store.contract import Store
from panopticon.store.layout import Layout, RegistryEntry, token
from panopticon.store.memory import MemoryStore
from panopticon.store.redisstore import RedisOptions, RedisStore
from tests.aggregator.conftest import LAYOUT
from tests.support import aio
from tests.support.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

OM_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"


async def fill(store: Store, *, families: int = 3, objects: int = 40) -> None:
    """Registry plus `objects` objects' lines per family, spread over every slot."""
    await store.ensure_layout()
    for slot in range(store.layout.slots):
        await store.claim(slot, 0, 1, list(store.layout.buckets_of_slot(slot)))
    entries = {}
    for f in range(families):
        name = f"fam_{f}"
        entries[name] = RegistryEntry.of(FamilyHeader(name, f'help "{f}"\nline'), ["cfg"])
    entries["empty_family"] = RegistryEntry.of(FamilyHeader("empty_family", "never written"), ["cfg"])
    await store.set_registry(entries, [])
    for i in range(objects):
        uid = f"uid-{i}"
        bucket = store.layout.space.bucket(uid)
        ops = [
            Op(f"fam_{f}", bucket, uid, f'fam_{f}{{obj="o{i}",v="a\\"b"}} {i}\n'.encode())
            for f in range(families)
        ]
        await store.write(store.layout.slot_of(bucket), token(0, 1), ops)


async def serve(store: Store, settings: ScrapeSettings | None = None) -> tuple[list[web.AppRunner], str, str]:
    metrics_app, telemetry_app = build_apps(store, settings)
    runners = await serving.start_sites([(metrics_app, "127.0.0.1", 0), (telemetry_app, "127.0.0.1", 0)])
    url, telemetry = (f"http://127.0.0.1:{serving.bound_port(r)}" for r in runners)
    return runners, url, telemetry


def with_aggregator(
    store_factory: Callable[[], Store],
    test: Callable[[aiohttp.ClientSession, str, str, Store], Awaitable[None]],
    settings: ScrapeSettings | None = None,
) -> None:
    async def main() -> None:
        store = store_factory()
        runners, url, telemetry = await serve(store, settings)
        try:
            async with aiohttp.ClientSession(auto_decompress=False) as session:
                await test(session, url, telemetry, store)
        finally:
            await serving.stop_sites(runners)
            await store.close()

    aio.run(main())


def series(text: str, parser: Any = parse_text) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    return {(s.name, tuple(sorted(s.labels.items())), s.value) for f in parser(text) for s in f.samples}


def test_text_openmetrics_and_gzip_carry_the_same_series_and_each_family_once(make_store) -> None:  # type: ignore[no-untyped-def]
    async def test(session: aiohttp.ClientSession, url: str, telemetry: str, store: Store) -> None:
        await fill(store)
        plain = {"Accept-Encoding": "identity"}
        async with session.get(f"{url}/metrics", headers=plain) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert "Content-Encoding" not in r.headers
            text = (await r.read()).decode()
        async with session.get(f"{url}/metrics", headers={"Accept": OM_ACCEPT, **plain}) as r:
            assert r.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
            om = (await r.read()).decode()
        async with session.get(f"{url}/metrics", headers={"Accept-Encoding": "gzip"}) as r:
            assert r.headers["Content-Encoding"] == "gzip"
            zipped = gzip.decompress(await r.read()).decode()
        async with session.get(
            f"{url}/metrics", headers={"Accept": OM_ACCEPT, "Accept-Encoding": "gzip"}
        ) as r:
            om_zipped = gzip.decompress(await r.read()).decode()
        assert zipped == text and om_zipped == om
        assert om.endswith("# EOF\n")
        expected = {
            (f"fam_{f}", (("obj", f"o{i}"), ("v", 'a"b')), float(i)) for f in range(3) for i in range(40)
        }
        assert series(text) == expected
        assert series(om, parse_openmetrics) == expected
        headers = [line for line in text.splitlines() if line.startswith("# TYPE")]
        assert headers == ["# TYPE fam_0 gauge", "# TYPE fam_1 gauge", "# TYPE fam_2 gauge"]
        assert "empty_family" not in text
        assert '# HELP fam_1 help "1"\\nline' in text and '# HELP fam_1 help \\"1\\"\\nline' in om
        if shutil.which("promtool"):
            # promtool parses the text format only, where `\"` is no HELP escape: the
            # OpenMetrics body is checked with its (deliberately quoted) HELP unescaped.
            om_for_promtool = om.replace('\\"', "'")
            for body in (text, om_for_promtool):
                proc = await asyncio.to_thread(
                    subprocess.run, ["promtool", "check", "metrics"], input=body.encode(), capture_output=True
                )
                assert proc.returncode == 0, proc.stdout + proc.stderr

    with_aggregator(make_store, test)


def test_two_aggregators_on_one_redis_serve_identical_series(redis_server: RedisServer) -> None:  # noqa: F811
    async def main() -> None:
        layout = Layout(prefix=f"a{uuid.uuid4().hex[:8]}", buckets=64, slots=8)
        stores = [RedisStore.connect(RedisOptions(url=redis_server.url), layout) for _ in range(2)]
        await fill(stores[0], families=5, objects=200)
        served = []
        for store in stores:
            runners, url, _ = await serve(store)
            try:
                async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as r:
                    served.append(series(await r.text()))
            finally:
                await serving.stop_sites(runners)
                await store.close()
        assert served[0] == served[1] and len(served[0]) == 1000

    aio.run(main())


class FailingStore(MemoryStore):
    """Fails reading after `good` chunks (a Redis that dies mid-scrape)."""

    def __init__(self, layout: Layout, good: int) -> None:
        super().__init__(layout)
        self.good = good
        self.armed = False

    async def read_families(
        self, families: Sequence[str], slots: Sequence[int] | None = None
    ) -> AsyncIterator[tuple[str, bytes]]:
        async for family, chunk in super().read_families(families, slots):
            if self.armed:
                if self.good <= 0:
                    raise StoreError("redis read: Connection reset by peer")
                self.good -= 1
            yield family, chunk


def test_a_store_failure_mid_stream_aborts_the_response_instead_of_truncating_it() -> None:
    async def test(session: aiohttp.ClientSession, url: str, telemetry: str, store: Store) -> None:
        assert isinstance(store, FailingStore)
        await fill(store, families=4, objects=200)
        store.armed = True
        for headers in ({}, {"Accept-Encoding": "gzip"}):
            store.good = 3
            with pytest.raises(aiohttp.ClientPayloadError):
                async with session.get(f"{url}/metrics", headers=headers) as r:
                    assert r.status == 200
                    await r.read()
        async with session.get(f"{telemetry}/metrics") as r:
            assert "panopticon_aggregator_scrapes_aborted_total 2.0" in await r.text()

    with_aggregator(lambda: FailingStore(LAYOUT, good=3), test)


def test_a_store_down_before_the_first_byte_gives_503() -> None:
    async def test(session: aiohttp.ClientSession, url: str, telemetry: str, store: Store) -> None:
        async with session.get(f"{url}/metrics") as r:
            assert r.status == 503
        async with session.get(f"{url}/readyz") as r:
            assert r.status == 503
        async with session.get(f"{url}/healthz") as r:
            assert r.status == 200

    with_aggregator(
        lambda: RedisStore.connect(RedisOptions(url="redis://127.0.0.1:1/0", timeout=0.3), LAYOUT), test
    )


class SlowStore(MemoryStore):
    async def read_families(
        self, families: Sequence[str], slots: Sequence[int] | None = None
    ) -> AsyncIterator[tuple[str, bytes]]:
        async for family, chunk in super().read_families(families, slots):
            await asyncio.sleep(0.2)
            yield family, chunk


def test_scrapes_beyond_the_concurrency_limit_get_503() -> None:
    async def test(session: aiohttp.ClientSession, url: str, telemetry: str, store: Store) -> None:
        await fill(store, families=1, objects=5)

        async def scrape() -> int:
            async with session.get(f"{url}/metrics") as r:
                await r.read()
                return r.status

        statuses = await asyncio.gather(*(scrape() for _ in range(4)))
        assert sorted(statuses) == [200, 503, 503, 503]

    with_aggregator(lambda: SlowStore(LAYOUT), test, ScrapeSettings(max_concurrent=1))


def test_telemetry_reports_shards_up_and_synced_from_heartbeats() -> None:
    async def test(session: aiohttp.ClientSession, url: str, telemetry: str, store: Store) -> None:
        now = time.time()
        await store.heartbeat(0, {"time": now, "synced": True})
        await store.heartbeat(1, {"time": now, "synced": False})
        await store.heartbeat(2, {"time": now - 3600, "synced": True})
        # Shard 3 was removed by a scale-down to 3 shards: its old heartbeat is ignored.
        await store.heartbeat(3, {"time": now - 3600, "synced": True, "ring": [4, 1]})
        await store.heartbeat(0, {"time": now, "synced": True, "ring": [3, 2]})
        async with session.get(f"{telemetry}/metrics") as r:
            text = await r.text()
        got = {(s.name, s.labels.get("shard")): s.value for f in parse_text(text) for s in f.samples}
        assert (
            got[("panopticon_aggregator_shard_up", "0")] == 1
            and got[("panopticon_aggregator_shard_synced", "0")] == 1
        )
        assert (
            got[("panopticon_aggregator_shard_up", "1")] == 1
            and got[("panopticon_aggregator_shard_synced", "1")] == 0
        )
        assert (
            got[("panopticon_aggregator_shard_up", "2")] == 0
            and got[("panopticon_aggregator_shard_synced", "2")] == 0
        )
        assert ("panopticon_aggregator_shard_up", "3") not in got

    with_aggregator(lambda: MemoryStore(LAYOUT), test)
