"""Aggregate families at scrape time: every slot's partials, combined into the groups.

An aggregate family's stored lines are partial aggregates, one set per object
(`panopticon.render.aggregate`); its served series are their combination
(`panopticon.render.combine`), so all of them must be read before the first line of the
family can go out. Memory is one read batch plus one entry per group, not per object.

Partitioned scrapes (`?partition=i&of=k`) split the slots, which would split a
family's partials and serve k partial figures of each group, each one wrong. So an
aggregate family is served whole by exactly one part: the part whose slots include the
family's *home slot* (CRC-32 of its name modulo the slot count), which reads the
family's partials from every slot. The parts stay disjoint and their union is the full
scrape; a part costs its share of plain families plus the aggregate families homed in
it, which spreads them over the parts by name.
"""

from __future__ import annotations

import zlib
from collections.abc import Container

from panopticon.render.combine import Combiner
from panopticon.store.contract import Store


def home_slot(family: str, slots: int) -> int:
    """The slot whose part serves aggregate family `family` in a partitioned scrape."""
    return zlib.crc32(family.encode()) % slots


def serves(family: str, slots: Container[int] | None, total: int) -> bool:
    """Whether a scrape of `slots` (None: all of them) serves aggregate family `family`."""
    return slots is None or home_slot(family, total) in slots


async def combined(store: Store, family: str, function: str) -> tuple[bytes, int]:
    """The family's served lines (its groups), and how many partial lines were malformed."""
    combiner = Combiner(function)
    async for _, chunk in store.read_families([family]):
        combiner.feed(chunk)
    return combiner.result(), combiner.malformed
