"""Ownership as a few contiguous ranges of buckets: balanced to a bucket, minimal movement.

Why not a consistent-hash ring: with 32 points per shard a ring scatters each shard's
buckets over the hash space in hundreds of arcs (so a `shardRange` selector of a few
ranges cannot describe them, and every shard receives every object), while fewer
points give a max/mean load near 1.3. Here ownership is built up one shard at a time:

- 1 shard owns `[0, B)`.
- Going from N to N+1 shards, the new shard takes floor(B / (N+1)) buckets, one at a
  time from whichever existing shard then holds the most (ties: the lower index), and
  each existing shard gives its share from the end of its largest range (ties: the
  one that starts first).

So the assignment for N shards depends on N (and B) only; loads differ by at most one
bucket (max/mean ≤ 1 + N/B); N → N+1 moves exactly the new shard's share,
floor(B/(N+1)) buckets, and N+1 → N moves them back; and shard k takes at most one
piece from each of the k shards before it and afterwards only loses buckets from the
ends of its ranges, so it holds at most k ranges (≤ 31 for N ≤ 32; see
`cover` for the selector above that). `benchmarks/ring_balance.py` measures all three.
"""

from __future__ import annotations

import heapq
from functools import lru_cache

MAX_SHARDS = 4096
"""More shards than this is a configuration error long before it is a design limit."""


@lru_cache(maxsize=256)
def assign(buckets: int, shards: int) -> tuple[int, ...]:
    """The owner of every bucket for `shards` shards over `buckets` buckets."""
    if buckets < 1:
        raise ValueError(f"need at least one bucket, not {buckets}")
    if not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"shard count must be between 1 and {MAX_SHARDS}, not {shards}")
    owners = [0] * buckets
    for start, end, owner in intervals(buckets, shards):
        owners[start:end] = [owner] * (end - start)
    return tuple(owners)


@lru_cache(maxsize=256)
def intervals(buckets: int, shards: int) -> tuple[tuple[int, int, int], ...]:
    """`(start, end, owner)` bucket intervals covering `[0, buckets)`, in order."""
    if shards == 1:
        return ((0, buckets, 0),)
    previous = intervals(buckets, shards - 1)
    return _add_shard(previous, buckets, shards - 1)


def _add_shard(
    current: tuple[tuple[int, int, int], ...], buckets: int, new: int
) -> tuple[tuple[int, int, int], ...]:
    loads = [0] * new
    for start, end, owner in current:
        loads[owner] += end - start
    want = buckets // (new + 1)
    takes = [0] * new
    heap = [(-load, owner) for owner, load in enumerate(loads)]
    heapq.heapify(heap)
    for _ in range(want):
        load, owner = heapq.heappop(heap)
        if load == 0:
            break  # more shards than buckets: the new shard owns what there is
        takes[owner] += 1
        heapq.heappush(heap, (load + 1, owner))
    pieces = [list(i) for i in current]
    for owner in range(new):
        need = takes[owner]
        while need:
            # The owner's largest remaining range (ties: the first); cut from its end.
            index = max(
                (k for k, p in enumerate(pieces) if p[2] == owner and p[1] > p[0]),
                key=lambda k: (pieces[k][1] - pieces[k][0], -pieces[k][0]),
            )
            start, end, _ = pieces[index]
            cut = min(need, end - start)
            pieces[index][1] = end - cut
            pieces.insert(index + 1, [end - cut, end, new])
            need -= cut
    merged: list[tuple[int, int, int]] = []
    for start, end, owner in pieces:
        if end == start:
            continue
        if merged and merged[-1][2] == owner and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end, owner)
        else:
            merged.append((start, end, owner))
    return tuple(merged)


def ranges_of(buckets: int, shards: int, shard: int) -> list[tuple[int, int]]:
    """The `[start, end)` bucket ranges `shard` owns, in order."""
    return [(start, end) for start, end, owner in intervals(buckets, shards) if owner == shard]


def cover(ranges: list[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    """At most `limit` ranges covering `ranges`: the smallest gaps are bridged first.

    The result is a superset (a selector the API server can take; the shard filters the
    extra objects out itself), as small as `limit` allows."""
    if len(ranges) <= limit:
        return list(ranges)
    gaps = sorted(range(len(ranges) - 1), key=lambda i: (ranges[i + 1][0] - ranges[i][1], i))
    bridged = set(gaps[: len(ranges) - limit])
    out: list[tuple[int, int]] = []
    for i, (start, end) in enumerate(ranges):
        if out and (i - 1) in bridged:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out
