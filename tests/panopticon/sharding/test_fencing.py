"""Ring fences (`panopticon.sharding.fencing`), on a real redis-server and on the in-process store.

Every newer ring must get a larger fence than every ring before it, also when its
generation is lower (a StatefulSet deleted and created again, `--shards` changed with
`--ring-generation` kept); a replaced StatefulSet's rings must never be adopted again.
"""

from __future__ import annotations

from collections.abc import Callable

from panopticon.sharding.fencing import SUPERSEDED, first_floor, highest_fence
from panopticon.store.contract import Store
from tests.panopticon.store.test_store import StoreTest, run_store  # noqa: F401 - fixture
from tests.support.redis_server import redis_server  # noqa: F401 - fixture

OLD, NEW = "statefulset:1111", "statefulset:2222"


def test_the_first_lineage_of_a_store_fences_at_its_generation_as_owners_did_before(
    run_store: Callable[[StoreTest], None],  # noqa: F811
) -> None:
    async def body(store: Store) -> None:
        assert await store.ring_fence(OLD, 3, floor=0, renew=False) == SUPERSEDED  # not confirmed
        assert await store.ring_lineage() is None
        assert await store.ring_fence(OLD, 3, floor=0, renew=False, expect="") == 3
        assert await store.ring_lineage() == OLD
        assert await store.ring_fence(OLD, 3, floor=3, renew=False) == 3  # every shard alike
        assert await store.ring_fence(OLD, 4, floor=3, renew=False) == 4

    run_store(body)


def test_a_recreated_statefulset_is_fenced_above_the_one_it_replaced_which_is_never_adopted_again(
    run_store: Callable[[StoreTest], None],  # noqa: F811
) -> None:
    async def body(store: Store) -> None:
        assert await store.ring_fence(OLD, 7, floor=0, renew=False, expect="") == 7
        assert await store.ring_fence(NEW, 1, floor=7, renew=False) == SUPERSEDED  # not confirmed
        first = await store.ring_fence(NEW, 1, floor=7, renew=False, expect=OLD)
        assert first > 7
        assert await store.ring_fence(NEW, 2, floor=first, renew=False) == first + 1
        # A lagging watch still delivering the old StatefulSet, even at a newer generation.
        assert await store.ring_fence(OLD, 8, floor=0, renew=False) == SUPERSEDED
        assert await store.ring_fence(NEW, 1, floor=0, renew=False) == first  # a late shard of it

    run_store(body)


def test_a_confirmed_statefulset_becomes_current_only_over_the_lineage_its_shard_read(
    run_store: Callable[[StoreTest], None],  # noqa: F811
) -> None:
    """Two shards confirmed two StatefulSets (one GET before a replacement, one after):
    the second to reach the store read another current lineage than the one it finds,
    and must confirm again rather than put its lineage over the one set meanwhile."""

    async def body(store: Store) -> None:
        assert await store.ring_fence(OLD, 4, floor=0, renew=False, expect="") == 4
        new = await store.ring_fence(NEW, 1, floor=0, renew=False, expect=OLD)
        assert new > 4 and await store.ring_lineage() == NEW
        # OLD confirmed by a GET that preceded the replacement, while it read OLD current.
        assert await store.ring_fence(OLD, 4, floor=0, renew=False, expect=OLD) == SUPERSEDED
        assert await store.ring_lineage() == NEW
        assert await store.ring_fence(NEW, 1, floor=0, renew=False, expect="") == new  # current: kept

    run_store(body)


def test_a_restored_store_that_holds_the_live_statefulset_as_superseded_fences_it_above_every_ring(
    run_store: Callable[[StoreTest], None],  # noqa: F811
) -> None:
    """The store's word (NEW superseded by OLD) is older than the API server's: a
    rolled-back `{p}:rings` where a replaced StatefulSet was made current. The live one,
    confirmed, gets a new base above every fence handed out; the other is superseded."""

    async def body(store: Store) -> None:
        assert await store.ring_fence(NEW, 2, floor=0, renew=False, expect="") == 2
        stale = await store.ring_fence(OLD, 9, floor=2, renew=False, expect=NEW)
        assert stale == 11 and await store.ring_lineage() == OLD
        assert await store.ring_fence(NEW, 2, floor=2, renew=False) == SUPERSEDED  # unconfirmed
        live = await store.ring_fence(NEW, 2, floor=2, renew=False, expect=OLD)
        assert live > stale and await store.ring_lineage() == NEW
        assert await store.ring_fence(OLD, 9, floor=0, renew=False) == SUPERSEDED

    run_store(body)


def test_a_fence_held_for_the_current_lineage_raises_its_base_back_and_nothing_else(
    run_store: Callable[[StoreTest], None],  # noqa: F811
) -> None:
    """A rolled-back store re-based the live lineage below a fence it handed out
    before; a shard holding that fence (same lineage, same generation) raises the base
    back to it. A held fence of a lineage that is not current changes nothing."""

    async def body(store: Store) -> None:
        assert await store.ring_fence(NEW, 2, floor=0, renew=False, expect="") == 2
        assert await store.ring_fence(NEW, 2, floor=0, renew=False, held=9) == 9
        assert await store.ring_fence(NEW, 2, floor=0, renew=False) == 9  # its peers
        assert await store.ring_fence(NEW, 2, floor=0, renew=False, held=5) == 9  # never lowered
        assert await store.ring_fence(NEW, 3, floor=0, renew=False) == 10
        assert await store.ring_fence(OLD, 9, floor=0, renew=False, held=50) == SUPERSEDED
        assert await store.ring_fence(NEW, 3, floor=0, renew=False) == 10

    run_store(body)


def test_a_store_written_before_lineages_existed_fences_a_recreated_ring_above_its_owners(
    run_store: Callable[[StoreTest], None],  # noqa: F811
) -> None:
    async def body(store: Store) -> None:
        assert (await store.claim(0, 0, 9, [0, 1])).claimed == (0, 1)  # an earlier version's owners
        floor = highest_fence((await store.owners()).values())
        assert floor == 9
        fence = await store.ring_fence(NEW, 2, floor=floor, renew=False, expect="")
        assert fence > 9
        assert (await store.claim(0, 1, fence, [0, 1])).claimed == (0, 1)

    run_store(body)


def test_the_first_ranges_shard_over_a_ring_versions_owners_fences_strictly_above_them(
    run_store: Callable[[StoreTest], None],  # noqa: F811
) -> None:
    """A rolling upgrade from a version before lineages (consistent-hash ring): its
    shards have adopted the StatefulSet's new generation (2) before the first new shard
    starts at that generation. An equal fence would leave the new shard's range to old
    owners it cannot outclaim (found by tests/upgrade/rolling.py from d94eb1e)."""

    async def body(store: Store) -> None:
        assert (await store.claim(0, 0, 2, [0, 1, 2])).claimed == (0, 1, 2)  # old shard 0, fence 2
        floor = first_floor(highest_fence((await store.owners()).values()), own=0)
        fence = await store.ring_fence(NEW, 2, floor=floor, renew=False, expect="")
        assert fence > 2
        assert (await store.claim(0, 2, fence, [1, 2])).claimed == (1, 2)  # the new shard 2 takes them
        assert (await store.claim(0, 0, 2, [1, 2])).claimed == ()  # the old one can never again
        # Its other shards get the same fence, and so does a recovering one (rings lost).
        assert await store.ring_fence(NEW, 2, floor=first_floor(fence, own=0), renew=False) == fence
        assert first_floor(fence, own=fence) == fence

    run_store(body)


def test_the_first_floor_is_above_existing_owners_only_for_a_shards_first_ring() -> None:
    assert first_floor(0, own=0) == 0  # an empty store: fence = generation
    assert first_floor(5, own=0) == 6
    assert first_floor(5, own=7) == 7 and first_floor(9, own=7) == 9


def test_static_flags_changed_or_started_again_are_the_newest_ring(
    run_store: Callable[[StoreTest], None],  # noqa: F811
) -> None:
    async def body(store: Store) -> None:
        two = await store.ring_fence("static:2:5", 5, floor=0, renew=True)
        assert two == 5
        three = await store.ring_fence("static:3:5", 5, floor=two, renew=True)  # generation kept
        assert three > two
        lowered = await store.ring_fence("static:3:1", 1, floor=three, renew=True)
        assert lowered > three
        back = await store.ring_fence("static:2:5", 5, floor=lowered, renew=True)  # a rollback
        assert back > lowered
        assert await store.ring_fence("static:2:5", 5, floor=back, renew=True) == back  # its peers

    run_store(body)


def test_owner_tokens_give_their_highest_fence() -> None:
    assert highest_fence([]) == 0
    assert highest_fence([b"0:3", "1:12", b"2:7", "junk", b"3:"]) == 12
