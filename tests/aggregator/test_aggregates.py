"""Aggregate families served by the aggregator: partials combined, each in one part only."""

from __future__ import annotations

from collections import Counter

import aiohttp

from aggregator.aggregates import home_slot
from panopticon.config.aggregatespec import Aggregation
from panopticon.render.combine import combine
from panopticon.render.exposition import FamilyHeader
from panopticon.store.batch import Op
from panopticon.store.contract import Store
from panopticon.store.layout import RegistryEntry, token
from tests.aggregator.test_app import fill, with_aggregator
from tests.aggregator.test_partition import check_exposition, headers_of, sample_lines

PLAIN = {"Accept-Encoding": "identity"}
OBJECTS = 300


async def fill_aggregates(store: Store) -> bytes:
    """Plain families plus two aggregate ones, partials spread over every slot; returns
    what the aggregate families should serve (combined here, from all partials at once)."""
    await fill(store, families=3, objects=60)
    entries = await store.registry()
    for name, function in (("agg_count", "count"), ("agg_max", "max")):
        header = FamilyHeader(name, f"{function} by phase", aggregate=Aggregation(function, ("phase",)))
        entries[name] = RegistryEntry.of(header, ["cfg"])
    await store.set_registry(entries, [])
    partials: dict[str, list[bytes]] = {"agg_count": [], "agg_max": []}
    for i in range(OBJECTS):
        uid = f"agg-{i}"
        bucket = store.layout.space.bucket(uid)
        ops = []
        for name, value in (("agg_count", 1), ("agg_max", i * 0.5)):
            line = f'{name}{{phase="p{i % 4}"}} {value}\n'.encode()
            partials[name].append(line)
            ops.append(Op(name, bucket, uid, line))
        await store.write(store.layout.slot_of(bucket), token(0, 1), ops)
    return b"".join(combine(f, partials[name]) for name, f in (("agg_count", "count"), ("agg_max", "max")))


def test_aggregate_families_are_combined_and_each_is_served_whole_by_one_part(make_store) -> None:  # type: ignore[no-untyped-def]
    async def test(session: aiohttp.ClientSession, url: str, _: str, store: Store) -> None:
        expected = await fill_aggregates(store)
        async with session.get(f"{url}/metrics", headers=PLAIN) as r:
            full = (await r.read()).decode()
        check_exposition(full)
        assert 'agg_count{phase="p0"} 75\n' in full and 'agg_max{phase="p3"} 149.5\n' in full
        served = [line for line in full.splitlines() if line.startswith("agg_")]
        assert served == expected.decode().splitlines()
        for count in (2, 3, 8):
            seen: Counter[str] = Counter()
            for i in range(count):
                async with session.get(f"{url}/metrics?partition={i}&of={count}", headers=PLAIN) as r:
                    part = (await r.read()).decode()
                check_exposition(part)
                for name in ("agg_count", "agg_max"):
                    homed = home_slot(name, store.layout.slots) % count == i
                    assert (f"# TYPE {name} gauge" in part) == homed, (name, i, count)
                assert max(headers_of(part).values(), default=1) == 1
                seen.update(sample_lines(part))
            assert seen == Counter(sample_lines(full)), count  # disjoint, union = the full scrape

    with_aggregator(make_store, test)


def test_the_registry_entry_keeps_plain_families_as_they_were_encoded() -> None:
    plain = RegistryEntry.of(FamilyHeader("f", "h"), ["c"])
    assert (
        plain.encode()
        == b'{"t":"# HELP f h\\n# TYPE f gauge\\n","o":"# HELP f h\\n# TYPE f gauge\\n","c":["c"]}'
    )
    aggregated = RegistryEntry.of(FamilyHeader("f", "h", aggregate=Aggregation("sum", ())), ["c"])
    assert RegistryEntry.decode(aggregated.encode()) == aggregated and aggregated.aggregate == "sum"
    assert RegistryEntry.decode(plain.encode()).aggregate is None
