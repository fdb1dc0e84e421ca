"""Series caps across shards, in memory (`shard.limiting`): the shards agree with the offline rule.

Shards are `KindLimits`-like `ConfigLimit`s, one per shard, holding the objects of
the buckets a `Ring` gives them; they exchange figures as heartbeats would and act
on their reviews as targets do (a withdrawn object's series go; a readmitted one is
decided again, as its relist renders it again). Whatever the shard count, the event
order and the rescales, once the exchange settles the objects kept are exactly
those `panopticon.limits.keep_objects` keeps.
"""

from __future__ import annotations

import random
import uuid

from panopticon.render.limits import keep_objects
from panopticon.sharding.buckets import BucketSpace
from panopticon.sharding.limits import order_key
from panopticon.sharding.ring import Ring
from shard.limiting import ConfigLimit, Review

SPACE = BucketSpace()
FAMILIES = frozenset({"f"})


class Sim:
    """`shards` shards holding one capped config's objects."""

    def __init__(self, objects: dict[str, int], shards: int, cap: int, seed: int) -> None:
        self.objects = objects
        self.cap = cap
        self.rng = random.Random(seed)
        self.ring = Ring(shards, 1)
        self.limits = [ConfigLimit("c", cap, FAMILIES, SPACE.count) for _ in range(shards)]
        self.withdrawn = 0
        uids = list(objects)
        self.rng.shuffle(uids)  # event order
        for uid in uids:
            self.render(uid)

    def render(self, uid: str) -> None:
        """An event: decided, then reviewed at once if the cutoff receded (as targets do)."""
        bucket = SPACE.bucket(uid)
        limit = self.limits[self.ring.owner(bucket)]
        limit.decide(uid, bucket, self.objects[uid])
        if limit.receded:
            self.act(limit)

    def act(self, limit: ConfigLimit) -> bool:
        review = Review()
        limit.review(review)
        self.withdrawn += len(review.withdraw)
        for uid in review.readmit:  # the relist renders it again
            limit.decide(uid, SPACE.bucket(uid), self.objects[uid])
        return bool(review.withdraw or review.readmit)

    def exchange(self) -> bool:
        """One heartbeat round: every shard learns the others' figures and acts on its
        review; True when anything changed."""
        changed = False
        figures = [dict(map(tuple, limit.own_figures())) for limit in self.limits]  # type: ignore[arg-type]
        for me, limit in enumerate(self.limits):
            for other in range(len(self.limits)):
                if other != me:
                    own = self.ring.buckets_of(other)
                    limit.learn({b: figures[other].get(b, 0) for b in own})
            changed = self.act(limit) or changed
        return changed

    def settle(self) -> set[str]:
        for _ in range(10):
            if not self.exchange():
                break
        else:
            raise AssertionError("the exchange did not settle")
        return self.kept()

    def kept(self) -> set[str]:
        return {uid for limit in self.limits for uid in limit.where if uid not in limit.dropped}

    def series(self) -> int:
        return sum(self.objects[uid] for uid in self.kept())

    def rescale(self, shards: int) -> None:
        """Buckets move as a new ring says: lost ones forgotten, gained ones listed."""
        ring = Ring(shards, self.ring.generation + 1)
        while len(self.limits) < shards:
            fresh = ConfigLimit("c", self.cap, FAMILIES, SPACE.count)
            self.limits.append(fresh)
        for index, limit in enumerate(self.limits):
            held = self.ring.buckets_of(index) if index < self.ring.shards else frozenset()
            limit.forget_buckets(held - (ring.buckets_of(index) if index < shards else frozenset()))
        old = self.ring
        self.ring = ring
        self.limits = self.limits[:shards]
        gained = [u for u in self.objects if old.owner(SPACE.bucket(u)) != ring.owner(SPACE.bucket(u))]
        self.rng.shuffle(gained)
        for uid in gained:
            self.render(uid)


def population(n: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    return {str(uuid.UUID(int=rng.getrandbits(128))): rng.choice((1, 1, 2, 3, 7)) for _ in range(n)}


def test_shards_keep_exactly_what_the_offline_rule_keeps_whatever_the_shard_count_and_order() -> None:
    objects = population(3000, 1)
    total = sum(objects.values())
    for cap in (0, 1, 100, total // 2, total - 1, total, total + 5):
        expected = keep_objects(objects, cap, order_key)
        for shards in (1, 2, 3, 5):
            sim = Sim(objects, shards, cap, seed=shards * 31 + cap)
            assert sim.settle() == expected, (cap, shards)
            assert sim.series() <= cap


def test_a_single_shard_never_writes_past_the_cap() -> None:
    objects = population(2000, 2)
    cap = sum(objects.values()) // 3
    sim = Sim(objects, 1, cap, seed=3)
    assert sim.series() <= cap  # decided on current figures: nothing to withdraw
    assert sim.kept() == keep_objects(objects, cap, order_key)
    assert not sim.exchange()


def test_rescales_keep_the_same_objects() -> None:
    objects = population(2500, 3)
    cap = sum(objects.values()) // 2
    expected = keep_objects(objects, cap, order_key)
    sim = Sim(objects, 2, cap, seed=4)
    assert sim.settle() == expected
    for shards in (3, 5, 2, 1, 4):
        sim.rescale(shards)
        assert sim.settle() == expected, shards


def test_deletes_and_creates_move_the_cutoff_and_the_shards_follow() -> None:
    objects = population(2000, 5)
    cap = sum(objects.values()) // 2
    sim = Sim(objects, 3, cap, seed=6)
    sim.settle()
    rng = random.Random(7)
    for round_ in range(5):
        for uid in rng.sample(sorted(objects), 300):  # deleted
            bucket = SPACE.bucket(uid)
            sim.limits[sim.ring.owner(bucket)].forget(uid)
            del objects[uid]
        for uid, series in population(300, 100 + round_).items():  # created
            objects[uid] = series
            sim.render(uid)
        assert sim.settle() == keep_objects(objects, cap, order_key)


def test_counts_add_up_to_the_totals() -> None:
    objects = population(1000, 8)
    cap = 700
    sim = Sim(objects, 3, cap, seed=9)
    sim.settle()
    counts = [limit.count() for limit in sim.limits]
    assert sum(c.kept for c in counts) == sim.series()
    assert sum(c.kept + c.dropped for c in counts) == sum(objects.values())
