"""Partitioned scrapes over real HTTP: disjoint parts whose union is the full scrape."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from collections import Counter

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families as parse_text

from aggregator.partition import PartitionError, parse_partition
from panopticon.store.contract import Store
from tests.aggregator.test_app import fill, with_aggregator

PLAIN = {"Accept-Encoding": "identity"}


def sample_lines(body: str) -> list[str]:
    return [line for line in body.splitlines() if line and not line.startswith("#")]


def headers_of(body: str) -> Counter[str]:
    return Counter(line for line in body.splitlines() if line.startswith("# "))


def check_exposition(body: str) -> None:
    families = list(parse_text(body))  # raises on invalid text
    names = [f.name for f in families]
    assert len(names) == len(set(names)), "a family split in two within one part"
    if shutil.which("promtool"):
        got = subprocess.run(
            ["promtool", "check", "metrics"], input=body.encode(), capture_output=True, check=False
        )
        assert b"error" not in got.stderr.lower() and b"error" not in got.stdout.lower(), got


@pytest.mark.parametrize("count", [1, 3, 8])
def test_the_parts_are_disjoint_and_their_union_is_the_full_scrape(make_store, count: int) -> None:  # type: ignore[no-untyped-def]
    async def test(session: aiohttp.ClientSession, url: str, _: str, store: Store) -> None:
        await fill(store, families=4, objects=120)
        async with session.get(f"{url}/metrics", headers=PLAIN) as r:
            full = (await r.read()).decode()
        seen: Counter[str] = Counter()
        for i in range(count):
            async with session.get(
                f"{url}/metrics?partition={i}&of={count}", headers={"Accept-Encoding": "gzip"}
            ) as r:
                assert r.status == 200 and r.headers["Content-Encoding"] == "gzip"
                part = gzip.decompress(await r.read()).decode()
            check_exposition(part)
            assert set(headers_of(part)) <= set(headers_of(full))
            assert max(headers_of(part).values(), default=1) == 1
            seen.update(sample_lines(part))
        assert seen == Counter(sample_lines(full))  # each line in exactly one part
        assert max(seen.values()) == 1 and len(seen) == 4 * 120

    with_aggregator(make_store, test)


def test_the_telemetry_keeps_full_scrapes_and_parts_apart(make_store) -> None:  # type: ignore[no-untyped-def]
    async def test(session: aiohttp.ClientSession, url: str, telemetry: str, store: Store) -> None:
        await fill(store, families=2, objects=50)
        async with session.get(f"{url}/metrics", headers=PLAIN) as r:
            assert r.status == 200
            await r.read()  # a scrape is counted once served whole (a client leaving early is not)
        parts = []
        for i in range(2):
            async with session.get(f"{url}/metrics?partition={i}&of=2", headers=PLAIN) as r:
                parts.append(len(sample_lines((await r.read()).decode())))
        async with session.get(f"{telemetry}/metrics", headers=PLAIN) as r:
            text = (await r.read()).decode()
        values = {
            s.name + str(sorted(s.labels.items())): s.value for f in parse_text(text) for s in f.samples
        }
        assert values["panopticon_aggregator_last_scrape_series[]"] == 100
        for i, n in enumerate(parts):
            key = f"panopticon_aggregator_last_partition_series[('of', '2'), ('partition', '{i}')]"
            assert values[key] == n
        assert sum(parts) == 100

    with_aggregator(make_store, test)


BAD = [
    ("partition=0", "partition and of go together"),
    ("of=2", "partition and of go together"),
    ("partition=2&of=2", "partition=2: must be below of=2"),
    ("partition=0&of=0", "of=0: must be between 1 and the store's 8 slots"),
    ("partition=0&of=9", "of=9: must be between 1 and the store's 8 slots"),
    ("partition=-1&of=2", "partition='-1': not a non-negative integer"),
    ("partition=a&of=2", "partition='a': not a non-negative integer"),
    ("partition=0&of=1e3", "of='1e3': not a non-negative integer"),
    (
        "partition=%D9%A1&of=2",
        "not a non-negative integer",
    ),  # Arabic-Indic digit one: isdigit() but not ASCII
    ("partition=0&of=99999999999999999999", "not a non-negative integer"),
]


def test_bad_partition_queries_get_a_400_with_one_line_and_are_counted() -> None:
    from panopticon.store.memory import MemoryStore
    from tests.aggregator.conftest import LAYOUT

    async def test(session: aiohttp.ClientSession, url: str, telemetry: str, store: Store) -> None:
        await fill(store)
        for query, reason in BAD:
            for method in ("GET", "HEAD"):
                async with session.request(method, f"{url}/metrics?{query}") as r:
                    body = (await r.read()).decode()
                    assert r.status == 400, (query, method)
                    if method == "GET":
                        assert reason in body and body.count("\n") == 1, (query, body)
        async with session.get(f"{telemetry}/metrics", headers=PLAIN) as r:
            text = (await r.read()).decode()
        assert f'panopticon_aggregator_http_rejected_total{{reason="bad_partition"}} {2 * len(BAD)}.0' in text

    with_aggregator(lambda: MemoryStore(LAYOUT), test)


def test_parse_partition_accepts_what_a_scrape_config_sends() -> None:
    assert parse_partition({}, 64) is None
    part = parse_partition({"partition": "3", "of": "4"}, 64)
    assert part is not None and list(part.slots(16)) == [3, 7, 11, 15]
    assert parse_partition({"partition": " 0", "of": "64 "}, 64) is not None
    with pytest.raises(PartitionError):
        parse_partition({"partition": "0", "of": "65"}, 64)
