"""Buckets: the fixed partition of objects that shards own, move and fence as units.

An object's bucket is the top `bits` bits of FNV-1a 64 of its `metadata.uid` — the
hash kube-state-metrics shards with and the one Kubernetes 1.36's server-side sharding
(`shardSelector=shardRange(object.metadata.uid, start, end)`) filters on. Taking the
top bits makes every bucket one contiguous range of the hash space, so a set of
buckets is also a set of `shardRange`s: a shard can ask the API server for exactly the
objects it owns, and filter client-side with the same function when the server
ignores the selector.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from panopticon.sharding.ranges import cover

MAX_SELECTOR_RANGES = 32
"""Most `shardRange` terms sent to the API server (a URL must stay short: aiohttp's
request line limit is 8 KiB). Ownership (`panopticon.sharding.ranges`) gives shard k at most k
ranges, so up to 32 shards the selector is exact; above, the smallest gaps between a
shard's ranges are bridged (`panopticon.sharding.ranges.cover`): the server sends a few objects
more, which the shard's own filter drops."""

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK64 = (1 << 64) - 1
HASH_SPACE = 1 << 64


def fnv1a64(text: str) -> int:
    """FNV-1a 64 of the UTF-8 bytes of `text` (apimachinery's `sharding` hash).

    Four bytes per step, reduced mod 2^64 once per step: an XOR with a byte only
    touches the low 8 bits, which the reduction leaves as they are, so the result is
    the byte-at-a-time one at 60% of the cost (every object's bucket is hashed)."""
    data = text.encode("utf-8", "surrogatepass")
    cut = len(data) & ~3
    quads = iter(data[:cut])
    h, p = FNV_OFFSET, FNV_PRIME
    for a, b, c, d in zip(quads, quads, quads, quads, strict=True):  # len(data[:cut]) % 4 == 0
        h = (((((h ^ a) * p ^ b) * p ^ c) * p ^ d) * p) & MASK64
    for byte in data[cut:]:
        h = ((h ^ byte) * p) & MASK64
    return h


RECENT_UIDS = 256
"""uids whose hash `BucketSpace.bucket` remembers, most recent first. A sharded shard
hashes each received object's uid twice in a row: the reflector's ownership check,
then the table's bucket (with a server-side selector every object takes both; a lone
shard, which owns everything, only the second). Remembering the last few makes the
second a lookup instead of a pure-Python FNV over 36 bytes (6.3 µs, timeit best of 5
on this loaded machine: about 4% of an object's CPU in `benchmarks/scale_bench.py`),
a cost N shards paid and one did not. Small on purpose (tens of KB): a uid is needed
for one event only, and a memo of every uid cost ~7.5 MB per kind for nothing
(`Reflector.set_filter`)."""

_recent_hash = lru_cache(maxsize=RECENT_UIDS)(fnv1a64)


@dataclass(frozen=True, slots=True)
class BucketSpace:
    """`count` buckets (a power of two) over the 64-bit hash space."""

    count: int = 4096

    def __post_init__(self) -> None:
        if self.count < 1 or self.count & (self.count - 1) or self.count > 1 << 16:
            raise ValueError(f"bucket count must be a power of two between 1 and 65536, not {self.count}")

    @property
    def shift(self) -> int:
        return 64 - (self.count.bit_length() - 1)

    def bucket_of_hash(self, h: int) -> int:
        return h >> self.shift if self.count > 1 else 0

    def bucket(self, uid: str) -> int:
        return self.bucket_of_hash(_recent_hash(uid))

    def hash_range(self, bucket: int) -> tuple[int, int]:
        """The `[start, end)` hash range of one bucket."""
        width = HASH_SPACE // self.count
        return bucket * width, (bucket + 1) * width

    def ranges(self, buckets: Iterable[int]) -> list[tuple[int, int]]:
        """Merged `[start, end)` hash ranges covering `buckets`."""
        out: list[tuple[int, int]] = []
        for b in sorted(set(buckets)):
            start, end = self.hash_range(b)
            if out and out[-1][1] == start:
                out[-1] = (out[-1][0], end)
            else:
                out.append((start, end))
        return out


@dataclass(frozen=True, slots=True)
class ShardFilter:
    """The buckets one shard owns: a uid test and the equivalent server-side selector."""

    space: BucketSpace
    buckets: frozenset[int]
    _ranges: tuple[tuple[int, int], ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ranges", tuple(self.space.ranges(self.buckets)))

    @property
    def everything(self) -> bool:
        return len(self.buckets) == self.space.count

    def contains(self, uid: str) -> bool:
        return self.space.bucket(uid) in self.buckets

    def contains_hash(self, h: int) -> bool:
        return self.space.bucket_of_hash(h) in self.buckets

    @property
    def ranges(self) -> tuple[tuple[int, int], ...]:
        return self._ranges

    def selector(self) -> str:
        """The `shardSelector` query value (Kubernetes 1.36 `ShardedListAndWatch`).

        Empty ownership gives an empty range, which matches nothing; ownership needing
        more than `MAX_SELECTOR_RANGES` ranges is covered by that many, bridging the
        smallest gaps (a superset: `contains` drops what the server sends beyond it)."""
        if not self._ranges:
            return "shardRange(object.metadata.uid, '0x0000000000000000', '0x0000000000000000')"
        return " || ".join(
            f"shardRange(object.metadata.uid, '{_hex(start)}', '{_hex(end)}')"
            for start, end in cover(list(self._ranges), MAX_SELECTOR_RANGES)
        )


def _hex(value: int) -> str:
    # The end of the last range is 2^64, written as 0x10000000000000000 by the API.
    return f"0x{value:016x}"
