"""Which shard owns which bucket: contiguous ranges of the bucket space (`panopticon.sharding.ranges`).

Every shard and aggregator computes the same assignment from the same shard count, so
ownership needs no coordination; fencing in Redis (see `panopticon.store` and
`panopticon.sharding.fencing`) covers the moments when a shard lags behind a ring change.

The assignment used to be a consistent-hash ring (the `hashring` library, 32 names
per shard): max/mean load up to 1.29 and more than a thousand hash ranges per shard,
so a server-side `shardRange` selector could never narrow what a shard receives.
Contiguous ranges balance to a bucket, move exactly the new shard's share on N → N+1,
and give shard k at most k ranges (`benchmarks/ring_balance.py` compares the two).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from panopticon.sharding.buckets import BucketSpace, ShardFilter
from panopticon.sharding.ranges import assign

ASSIGNMENT = "ranges"
"""The name of the assignment, part of every ring lineage (`shard.membership`): shards
of a version that assigned buckets differently are another lineage, fenced below."""


@dataclass(frozen=True, slots=True)
class Ring:
    """The bucket → shard assignment for `shards` shards at ring `generation`.

    `generation` is the fencing epoch of this assignment (the store's fence for the
    ring's lineage and generation, `panopticon.sharding.fencing`): it does not change who owns
    what.
    """

    shards: int
    generation: int
    space: BucketSpace = field(default_factory=BucketSpace)
    _owners: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.shards < 1:
            raise ValueError(f"a ring needs at least one shard, not {self.shards}")
        object.__setattr__(self, "_owners", assign(self.space.count, self.shards))

    def owner(self, bucket: int) -> int:
        return self._owners[bucket]

    def owner_of_uid(self, uid: str) -> int:
        return self._owners[self.space.bucket(uid)]

    def buckets_of(self, shard: int) -> frozenset[int]:
        return frozenset(b for b, owner in enumerate(self._owners) if owner == shard)

    def filter_for(self, shard: int) -> ShardFilter:
        return ShardFilter(self.space, self.buckets_of(shard))

    def loads(self) -> list[int]:
        """Buckets per shard."""
        counts = [0] * self.shards
        for owner in self._owners:
            counts[owner] += 1
        return counts
