"""The scrape: every family once, header first, then its lines from every slot.

A scrape only reads and concatenates what shards rendered (invariant 5): it walks
the family registry in name order and streams each family's stored chunks as they
arrive, so memory stays bounded by one read batch whatever the series count. A
family without any stored line is left out (its header would only be noise).

Aggregate families are the exception that still renders nothing: their stored
partials are combined into the groups' series (`aggregator.aggregates`), in the same
name order, by one part only of a partitioned scrape.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass

from aggregator.aggregates import combined, serves
from panopticon.render.exposition import OPENMETRICS_EOF, Format
from panopticon.store.contract import Store
from panopticon.store.layout import RegistryEntry


@dataclass(slots=True)
class ScrapeStats:
    families: int = 0
    bytes: int = 0
    series: int = 0
    malformed: int = 0
    """Partial lines of aggregate families that did not parse (none a shard writes)."""


async def exposition(
    store: Store, fmt: Format, stats: ScrapeStats | None = None, slots: Sequence[int] | None = None
) -> AsyncGenerator[bytes, None]:
    """Yield the whole exposition (only `slots`' lines when given) in chunks of complete lines."""
    stats = stats if stats is not None else ScrapeStats()
    registry = await store.registry()
    om = fmt is Format.OPENMETRICS
    current = None
    async for family, chunk in _chunks(store, registry, stats, slots):
        if family != current:
            current = family
            entry = registry[family]
            header = entry.om_header if om else entry.text_header
            stats.families += 1
            stats.bytes += len(header)
            yield header
        stats.bytes += len(chunk)
        stats.series += chunk.count(b"\n")
        yield chunk
    if om:
        stats.bytes += len(OPENMETRICS_EOF)
        yield OPENMETRICS_EOF


async def _chunks(
    store: Store, registry: dict[str, RegistryEntry], stats: ScrapeStats, slots: Sequence[int] | None
) -> AsyncIterator[tuple[str, bytes]]:
    """`(family, chunk)` in name order: plain families read in runs (one bulk read per
    run, as before aggregates existed), each aggregate family combined on its own."""
    wanted = None if slots is None else frozenset(slots)
    run: list[str] = []
    for family in sorted(registry):
        function = registry[family].aggregate
        if function is None:
            run.append(family)
            continue
        if run:
            async for item in store.read_families(run, slots):
                yield item
            run = []
        if serves(family, wanted, store.layout.slots):
            lines, malformed = await combined(store, family, function)
            stats.malformed += malformed
            if lines:
                yield family, lines
    if run:
        async for item in store.read_families(run, slots):
            yield item
