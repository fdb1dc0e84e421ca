"""Range ownership (panopticon.sharding.ranges): the numbers issue 16 asks of it, for 1..64 shards."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from panopticon.sharding.ranges import assign, cover, intervals, ranges_of

B = 4096


def loads(buckets: int, shards: int) -> list[int]:
    owners = assign(buckets, shards)
    return [owners.count(s) for s in range(shards)]


@pytest.mark.parametrize("buckets", [4096, 65536, 256])
def test_balance_movement_and_ranges_for_1_to_64_shards(buckets: int) -> None:
    previous = None
    for n in range(1, 65):
        owners = assign(buckets, n)
        counts = loads(buckets, n)
        if buckets >= n:
            assert max(counts) - min(counts) <= 1, (n, counts)  # balanced to a bucket
            if buckets >= 4096:  # with fewer, one bucket is more than 10% of a share
                assert max(counts) / (buckets / n) <= 1.10
        if previous is not None:
            moved = [b for b in range(buckets) if previous[b] != owners[b]]
            # Exactly the new shard's share moves, all of it to the new shard ...
            assert {owners[b] for b in moved} <= {n - 1}
            assert len(moved) == counts[n - 1] <= buckets // n
            assert len(moved) / buckets <= 1.1 / n
        previous = owners
        worst = max(len(ranges_of(buckets, n, s)) for s in range(n))
        assert worst <= max(n - 1, 1)
        if n <= 32:
            assert worst <= 32


def test_scaling_down_moves_the_same_buckets_back() -> None:
    for n in range(2, 65):
        up, down = assign(B, n), assign(B, n - 1)
        moved = {b for b in range(B) if up[b] != down[b]}
        assert moved == {b for b in range(B) if up[b] == n - 1}


def test_the_intervals_cover_every_bucket_once_in_order() -> None:
    for n in (1, 2, 7, 33, 64):
        spans = intervals(B, n)
        assert spans[0][0] == 0 and spans[-1][1] == B
        assert all(a[1] == b[0] and a[2] != b[2] for a, b in itertools.pairwise(spans))


def test_more_shards_than_buckets_leaves_the_extra_shards_empty() -> None:
    counts = loads(4, 6)
    assert sorted(counts) == [0, 0, 1, 1, 1, 1]


def test_the_assignment_depends_on_the_shard_count_only() -> None:
    assign.cache_clear()
    intervals.cache_clear()
    first = assign(B, 13)
    assign.cache_clear()
    intervals.cache_clear()
    assert assign(B, 13) == first
    with pytest.raises(ValueError, match="shard count"):
        assign(B, 0)


@given(
    st.lists(st.integers(0, 10_000), min_size=2, max_size=80, unique=True).map(sorted),
    st.integers(1, 40),
)
def test_cover_bridges_the_smallest_gaps_and_covers_everything(points: list[int], limit: int) -> None:
    ranges = [(points[i], points[i + 1]) for i in range(0, len(points) - 1, 2)]
    covered = cover(ranges, limit)
    assert len(covered) <= max(limit, 1) or len(covered) == len(ranges) <= limit
    assert len(covered) == min(len(ranges), limit)
    for start, end in ranges:
        assert any(a <= start and end <= b for a, b in covered)
    extra = sum(b - a for a, b in covered) - sum(b - a for a, b in ranges)
    gaps = sorted(ranges[i + 1][0] - ranges[i][1] for i in range(len(ranges) - 1))
    assert extra == sum(gaps[: max(len(ranges) - limit, 0)])  # the smallest gaps, and only them
