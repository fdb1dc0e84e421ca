"""Partitioned scrapes: `/metrics?partition=i&of=k` serves a disjoint part of the exposition.

Why: with one scrape target per aggregator replica, Prometheus stores every series once
per replica, and one scrape is one serial stream through one process. Scraping k
partitions through the aggregator Service gives one target per partition whatever the
replica count (no duplicate series), and spreads a large scrape over the replicas.

A partition is a set of storage slots (slot mod k == i), so it reads exactly the keys
a full scrape reads for those slots: no extra cost per series, and the union over i is
exactly the full scrape. Each part is valid exposition on its own: a family's header
appears once, and only in the parts that hold some of its lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class PartitionError(ValueError):
    """A `partition`/`of` query that cannot be served (400, one line)."""


@dataclass(frozen=True, slots=True)
class Partition:
    index: int
    count: int

    def slots(self, total: int) -> range:
        """The storage slots of this part, ascending."""
        return range(self.index, total, self.count)

    @property
    def label(self) -> str:
        return str(self.index)


def _integer(name: str, raw: str) -> int:
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        raise PartitionError(f"{name}={raw[:32]!r}: not a non-negative integer")
    return int(text)


def parse_partition(query: Mapping[str, str], slots: int) -> Partition | None:
    """The partition a request asks for, None for the whole exposition.

    `of` must be 1..slots (more parts than slots would leave parts empty for ever,
    which a scrape config should not be able to ask for silently); `partition` 0..of-1.
    """
    has_part, has_of = "partition" in query, "of" in query
    if not has_part and not has_of:
        return None
    if has_part != has_of:
        raise PartitionError("partition and of go together: /metrics?partition=i&of=k")
    count = _integer("of", query["of"])
    index = _integer("partition", query["partition"])
    if not 1 <= count <= slots:
        raise PartitionError(f"of={count}: must be between 1 and the store's {slots} slots")
    if index >= count:
        raise PartitionError(f"partition={index}: must be below of={count}")
    return Partition(index, count)
