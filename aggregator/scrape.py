"""The scrape: every family once, header first, then its lines from every slot.

A scrape only reads and concatenates what shards rendered (invariant 5): it walks
the family registry in name order and streams each family's stored chunks as they
arrive, so memory stays bounded by one read batch whatever the series count. A
family without any stored line is left out (its header would only be noise).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from panopticon.render.exposition import OPENMETRICS_EOF, Format
from panopticon.store.contract import Store


@dataclass(slots=True)
class ScrapeStats:
    families: int = 0
    bytes: int = 0
    series: int = 0


async def exposition(
    store: Store, fmt: Format, stats: ScrapeStats | None = None, slots: Sequence[int] | None = None
) -> AsyncGenerator[bytes, None]:
    """Yield the whole exposition (only `slots`' lines when given) in chunks of complete lines."""
    stats = stats if stats is not None else ScrapeStats()
    registry = await store.registry()
    om = fmt is Format.OPENMETRICS
    current = None
    async for family, chunk in store.read_families(sorted(registry), slots):
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
