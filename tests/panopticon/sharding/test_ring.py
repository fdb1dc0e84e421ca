"""Ring and bucket properties (deterministic: seeded uids, no timing)."""

from __future__ import annotations

import random
import uuid

from benchmarks.ring_balance import bucket_counts, measure, ring_owners
from panopticon.sharding.buckets import RECENT_UIDS, BucketSpace, ShardFilter, _recent_hash, fnv1a64
from panopticon.sharding.ring import Ring


def test_fnv1a64_matches_the_reference_values() -> None:
    assert fnv1a64("") == 0xCBF29CE484222325
    assert fnv1a64("a") == 0xAF63DC4C8601EC8C
    assert fnv1a64("foobar") == 0x85944171F73967E8


def test_fnv1a64_four_bytes_at_a_time_equals_the_byte_at_a_time_definition() -> None:
    def reference(text: str) -> int:
        h = 0xCBF29CE484222325
        for byte in text.encode("utf-8", "surrogatepass"):
            h = ((h ^ byte) * 0x100000001B3) % (1 << 64)
        return h

    texts = ["x" * n for n in range(12)] + [str(uuid.uuid4()) for _ in range(200)]
    texts += ["é", "漢字", "a漢", "\udcff-uid", "🙂🙂🙂", "ÿ" * 7]
    for text in texts:
        assert fnv1a64(text) == reference(text), text


def test_a_bucket_asked_again_right_after_the_ownership_check_is_not_hashed_again() -> None:
    """The reflector's check and the table's bucket hash the same uid back to back: the
    second is a lookup, and a lookup gives what hashing would (uids beyond the memo too)."""
    space = BucketSpace()
    owned = ShardFilter(space, frozenset(range(0, space.count, 3)))
    uids = [str(uuid.UUID(int=random.Random(7).getrandbits(128) + i)) for i in range(2 * RECENT_UIDS)]
    before = _recent_hash.cache_info()
    for uid in uids:
        owned.contains(uid)
        assert space.bucket(uid) == space.bucket_of_hash(fnv1a64(uid))
    after = _recent_hash.cache_info()
    assert after.misses - before.misses == len(uids)
    assert after.hits - before.hits == len(uids)
    assert [space.bucket(u) for u in uids] == [fnv1a64(u) >> space.shift for u in uids]


def test_ring_balance_and_movement_meet_the_targets_over_2_to_16_shards() -> None:
    space = BucketSpace()
    for row in measure(bucket_counts(50_000, 3, space), lambda n: ring_owners(Ring(n, n, space)), 16):
        if row.shards >= 2:
            assert row.balance <= 1.15, row
        if row.moved_up is not None:
            assert row.moved_up <= 1.2, row


def test_adding_a_shard_only_moves_buckets_to_the_new_shard() -> None:
    for n in range(1, 9):
        before, after = Ring(n, 1), Ring(n + 1, 2)
        for bucket in range(before.space.count):
            if before.owner(bucket) != after.owner(bucket):
                assert after.owner(bucket) == n


def test_every_bucket_has_exactly_one_owner_and_the_filters_partition_the_uids() -> None:
    ring = Ring(5, 1)
    filters = [ring.filter_for(i) for i in range(5)]
    assert sum(len(f.buckets) for f in filters) == ring.space.count
    rng = random.Random(1)
    for _ in range(2000):
        uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        assert sum(f.contains(uid) for f in filters) == 1
        assert filters[ring.owner_of_uid(uid)].contains(uid)


def test_a_filter_selector_covers_exactly_its_buckets_hash_ranges() -> None:
    space = BucketSpace(8)
    f = ShardFilter(space, frozenset({0, 1, 5, 7}))
    assert f.ranges == ((0, 2 << 61), (5 << 61, 6 << 61), (7 << 61, 1 << 64))
    assert f.selector().count("shardRange(object.metadata.uid") == 3
    assert "'0x10000000000000000'" in f.selector()
