"""The store contract, on a real redis-server and on the in-process store alike.

Fencing (architecture invariant 3): a shard that lost a bucket, or lags behind a
ring change, can never overwrite what the current owner wrote.
"""

from __future__ import annotations

import random
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator

import hiredis
import pytest

from panopticon.errors import StoreError
from panopticon.render.exposition import FamilyHeader
from panopticon.store.batch import Batch, Burial, Op
from panopticon.store.contract import Store, read_family
from panopticon.store.layout import Layout, RegistryEntry, token
from panopticon.store.memory import MemoryStore
from panopticon.store.redisstore import RedisOptions, RedisStore
from panopticon.store.writescript import write_arguments, write_command
from tests.support import aio
from tests.support.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

LAYOUT = Layout(prefix="t", buckets=64, slots=8)
StoreTest = Callable[[Store], Awaitable[None]]


@pytest.fixture(params=["redis", "memory"])
def run_store(request: pytest.FixtureRequest) -> Iterator[Callable[[StoreTest], None]]:
    def run(test: StoreTest) -> None:
        async def main() -> None:
            if request.param == "memory":
                store: Store = MemoryStore(LAYOUT)
            else:
                server: RedisServer = request.getfixturevalue("redis_server")
                layout = Layout(prefix=f"t{uuid.uuid4().hex[:8]}", buckets=64, slots=8)
                store = RedisStore.connect(RedisOptions(url=server.url), layout)
            try:
                await store.ensure_layout()
                await test(store)
            finally:
                await store.close()

        aio.run(main())

    yield run


def uid_in(layout: Layout, bucket: int) -> str:
    while True:
        uid = str(uuid.uuid4())
        if layout.space.bucket(uid) == bucket:
            return uid


def test_a_claimed_bucket_accepts_its_owners_writes_and_the_aggregator_reads_them(
    run_store: Callable[[StoreTest], None],
) -> None:
    async def body(store: Store) -> None:
        layout = store.layout
        slot = layout.slot_of(5)
        claim = await store.claim(slot, 0, 1, [5])
        assert claim.claimed == (5,) and claim.refused == ()
        a, b = uid_in(layout, 5), uid_in(layout, 5)
        refused = await store.write(
            slot, token(0, 1), [Op("fam", 5, a, b'fam{x="a"} 1\n'), Op("fam", 5, b, b'fam{x="b"} 2\n')]
        )
        assert refused == []
        data = b"".join([chunk async for chunk in read_family(store, "fam")])
        assert sorted(data.splitlines()) == [b'fam{x="a"} 1', b'fam{x="b"} 2']
        assert sorted(await store.fields(slot, "fam")) == sorted([a, b])
        await store.write(slot, token(0, 1), [Op("fam", 5, a, None)])
        assert await store.fields(slot, "fam") == [b]

    run_store(body)


def test_a_lagging_former_owner_is_fenced_out(run_store: Callable[[StoreTest], None]) -> None:
    async def body(store: Store) -> None:
        layout = store.layout
        bucket = 9
        slot = layout.slot_of(bucket)
        uid = uid_in(layout, bucket)
        # Shard 1 owns the bucket at ring generation 3 and writes.
        assert (await store.claim(slot, 1, 3, [bucket])).claimed == (bucket,)
        assert await store.write(slot, token(1, 3), [Op("fam", bucket, uid, b"fam 1\n")]) == []
        # The ring changes (generation 4): shard 2 claims the bucket and writes.
        assert (await store.claim(slot, 2, 4, [bucket])).claimed == (bucket,)
        assert await store.write(slot, token(2, 4), [Op("fam", bucket, uid, b"fam 2\n")]) == []
        # Shard 1 has not seen the change yet: its writes and deletes are refused.
        assert await store.write(slot, token(1, 3), [Op("fam", bucket, uid, b"fam 3\n")]) == [bucket]
        assert await store.write(slot, token(1, 3), [Op("fam", bucket, uid, None)]) == [bucket]
        # Nor can it reclaim at its old generation.
        assert (await store.claim(slot, 1, 3, [bucket])).refused == (bucket,)
        data = b"".join([chunk async for chunk in read_family(store, "fam")])
        assert data == b"fam 2\n"

    run_store(body)


def test_a_batch_applies_owned_buckets_and_refuses_only_the_others(
    run_store: Callable[[StoreTest], None],
) -> None:
    async def body(store: Store) -> None:
        layout = store.layout
        mine, theirs = 16, 17  # same slot (8 buckets per slot)
        slot = layout.slot_of(mine)
        assert layout.slot_of(theirs) == slot
        await store.claim(slot, 0, 1, [mine])
        await store.claim(slot, 1, 1, [theirs])
        a, b = uid_in(layout, mine), uid_in(layout, theirs)
        refused = await store.write(
            slot, token(0, 1), [Op("f", mine, a, b"f 1\n"), Op("f", theirs, b, b"f 2\n")]
        )
        assert refused == [theirs]
        assert await store.fields(slot, "f") == [a]

    run_store(body)


def test_objects_with_sets_and_deletes_around_a_refused_bucket_apply_exactly(
    run_store: Callable[[StoreTest], None],
) -> None:
    """Each bucket's group names its uids once per object; a refused bucket between two
    owned ones is skipped whole, and every field of the others lands where it belongs."""

    async def body(store: Store) -> None:
        layout = store.layout
        first, middle, last = 16, 17, 18  # one slot, the middle one another shard's
        slot = layout.slot_of(first)
        await store.claim(slot, 0, 1, [first, last])
        await store.claim(slot, 1, 1, [middle])
        objects = {b: [uid_in(layout, b) for _ in range(3)] for b in (first, middle, last)}
        old = [Op(f, b, u, f"{f} old\n".encode()) for b in (first, last) for u in objects[b] for f in "fgh"]
        assert await store.write(slot, token(0, 1), old) == []
        theirs = [Op("f", middle, u, b"f theirs\n") for u in objects[middle]]
        assert await store.write(slot, token(1, 1), theirs) == []
        ops = []
        for b in (first, middle, last):
            for i, u in enumerate(objects[b]):
                ops += [Op("f", b, u, f"f {b}-{i}\n".encode()), Op("g", b, u, None)]
                if i == 1:
                    ops += [Op("h", b, u, None), Op("k", b, u, f"k {b}-{i}\n".encode())]
        assert await store.write(slot, token(0, 1), ops) == [middle]
        f_lines = sorted(b"".join([c async for c in read_family(store, "f")]).splitlines())
        expected = [f"f {b}-{i}".encode() for b in (first, last) for i in range(3)] + [b"f theirs"] * 3
        assert f_lines == sorted(expected)
        assert await store.fields(slot, "g") == []
        h = sorted(await store.fields(slot, "h"))
        assert h == sorted(u for b in (first, last) for i, u in enumerate(objects[b]) if i != 1)
        k_lines = sorted(b"".join([c async for c in read_family(store, "k")]).splitlines())
        assert k_lines == [f"k {first}-1".encode(), f"k {last}-1".encode()]

    run_store(body)


def test_claims_follow_generations(run_store: Callable[[StoreTest], None]) -> None:
    async def body(store: Store) -> None:
        assert (await store.claim(0, 0, 5, [0, 1])).claimed == (0, 1)
        assert (await store.claim(0, 0, 5, [0])).claimed == (0,)  # re-claim by the owner
        result = await store.claim(0, 1, 5, [0])  # same generation, other shard: a bug somewhere
        assert result.refused == (0,)
        assert (await store.claim(0, 1, 6, [0])).claimed == (0,)

    run_store(body)


def test_the_registry_and_heartbeats_round_trip(run_store: Callable[[StoreTest], None]) -> None:
    async def body(store: Store) -> None:
        entry = RegistryEntry.of(FamilyHeader("fam", 'help "q"\nx'), ["c1", "c2"])
        await store.set_registry({"fam": entry, "gone": entry}, [])
        await store.set_registry({}, ["gone"])
        assert await store.registry() == {"fam": entry}
        assert await store.retired() == {"gone"}  # its leftover fields are garbage
        await store.set_registry({"gone": entry}, [])
        assert await store.retired() == set()  # registered again: nothing to collect
        await store.heartbeat(2, {"synced": True, "buckets": 3})
        assert (await store.shards())[2] == {"synced": True, "buckets": 3}
        first, created = await store.epoch()
        assert created
        assert await store.epoch() == (first, False)

    run_store(body)


def test_a_retired_family_leaves_only_if_retired_since_the_time_read_and_stored_nowhere(
    run_store: Callable[[StoreTest], None],
) -> None:
    async def body(store: Store) -> None:
        entry = RegistryEntry.of(FamilyHeader("fam", "h"), ["c1"])
        await store.set_registry({"fam": entry}, [])
        assert (await store.claim(1, 0, 1, [8])).claimed == (8,)
        await store.write(1, token(0, 1), [Op("fam", 8, "u1", b"fam 1\n")])
        await store.set_registry({}, ["fam"])
        since = (await store.retired_since())["fam"]
        assert await store.family_stored("fam")
        await store.write(1, token(0, 1), [Op("fam", 8, "u1", None)])
        assert not await store.family_stored("fam")  # its last field took the hash with it
        assert not await store.drop_retired("fam", since - 1)  # retired again since then
        assert await store.drop_retired("fam", since)
        assert await store.retired() == set() and await store.retired_since() == {}
        await store.set_registry({}, ["fam"])
        since = (await store.retired_since())["fam"]
        await store.set_registry({"fam": entry}, [])  # registered again meanwhile
        assert not await store.drop_retired("fam", since)
        assert await store.registry() == {"fam": entry}

    run_store(body)


def test_a_registry_update_is_one_transaction_on_a_single_redis(redis_server: RedisServer) -> None:  # noqa: F811
    """Registering and retiring go out as one MULTI/EXEC: a failure between the two
    can never leave a family neither registered nor retired. Checked with MONITOR,
    which lists every command the server runs, in order."""

    async def body() -> None:
        layout = Layout(prefix=f"t{uuid.uuid4().hex[:8]}", buckets=64, slots=8)
        store = RedisStore.connect(RedisOptions(url=redis_server.url), layout)
        entry = RegistryEntry.of(FamilyHeader("fam", "h"), ["c1"])
        with socket.create_connection(("127.0.0.1", redis_server.port), timeout=5) as monitor:
            monitor.sendall(b"MONITOR\r\n")
            assert monitor.recv(5) == b"+OK\r\n"
            try:
                await store.set_registry({"fam": entry}, ["gone"])
            finally:
                await store.close()
            seen = b""
            while b'"EXEC"' not in seen:
                chunk = monitor.recv(65536)
                assert chunk, f"MONITOR ended before EXEC: {seen!r}"
                seen += chunk
        commands = [line.split(b'"')[1].upper() for line in seen.splitlines() if line.startswith(b"+")]
        start, end = commands.index(b"MULTI"), commands.index(b"EXEC")
        assert sorted(commands[start + 1 : end]) == [b"HDEL", b"HDEL", b"HSET", b"HSET"]

    aio.run(body())


def test_a_bucket_with_nothing_to_write_is_not_refused(run_store: Callable[[StoreTest], None]) -> None:
    """Both stores decide refusals the same way: a bucket is checked only when the
    batch writes something to it (the Redis script sees no group for it)."""

    async def body(store: Store) -> None:
        layout = store.layout
        mine, theirs = 16, 17  # same slot
        slot = layout.slot_of(mine)
        await store.claim(slot, 0, 1, [mine])
        await store.claim(slot, 1, 1, [theirs])
        batch = Batch.of([Op("f", mine, uid_in(layout, mine), b"f 1\n")])
        batch.segments[theirs] = {}
        assert await store.write_batch(slot, token(0, 1), batch) == []
        assert len(await store.fields(slot, "f")) == 1

    run_store(body)


def test_a_different_layout_is_refused(redis_server: RedisServer) -> None:  # noqa: F811
    async def body() -> None:
        prefix = f"t{uuid.uuid4().hex[:8]}"
        one = RedisStore.connect(
            RedisOptions(url=redis_server.url), Layout(prefix=prefix, buckets=64, slots=8)
        )
        two = RedisStore.connect(
            RedisOptions(url=redis_server.url), Layout(prefix=prefix, buckets=128, slots=8)
        )
        try:
            await one.ensure_layout()
            with pytest.raises(StoreError, match="use the same --buckets/--slots"):
                await two.ensure_layout()
        finally:
            await one.close()
            await two.close()

    aio.run(body())


def test_a_store_of_another_layout_version_is_refused_with_the_upgrade_path(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    async def body() -> None:
        layout = Layout(prefix=f"t{uuid.uuid4().hex[:8]}", buckets=64, slots=8)
        store = RedisStore.connect(RedisOptions(url=redis_server.url), layout)
        try:
            # What a release of another layout version would record.
            await store._client.set(layout.layout_key, b'{"version":99,"buckets":64,"slots":8}')
            with pytest.raises(StoreError, match=r"another release.*new --prefix"):
                await store.ensure_layout()
        finally:
            await store.close()

    aio.run(body())


def test_a_password_protected_redis_needs_the_password() -> None:
    server = RedisServer(password="s3cret")
    server.start()
    try:

        async def body() -> None:
            good = RedisStore.connect(RedisOptions(url=server.url), LAYOUT)
            bad = RedisStore.connect(RedisOptions(url=server.url.replace("s3cret", "wrong")), LAYOUT)
            # The configured password wins over one in the URL (a Secret over a stale URL).
            override = RedisStore.connect(
                RedisOptions(url=server.url.replace("s3cret", "stale"), password="s3cret"), LAYOUT
            )
            try:
                await good.ping()
                await override.ping()
                with pytest.raises(StoreError):
                    await bad.ping()
                # The scrape path's own connection authenticates too (and selects the db).
                on_db3 = RedisStore.connect(RedisOptions(url=server.url.replace("/0", "/3")), LAYOUT)
                await on_db3.claim(0, 0, 1, [0])
                await on_db3.write(0, token(0, 1), [Op("f", 0, "u", b"f 1\n")])
                assert [pair async for pair in on_db3.read_families(["f"])] == [("f", b"f 1\n")]
                assert [pair async for pair in override.read_families(["f"])] == []
                await on_db3.close()
                with pytest.raises(StoreError):
                    _ = [pair async for pair in bad.read_families(["f"])]
            finally:
                for store in (good, bad, override):
                    await store.close()

        aio.run(body())
    finally:
        server.close()


def test_an_unreachable_redis_is_a_store_error_naming_it() -> None:
    async def body() -> None:
        store = RedisStore.connect(RedisOptions(url="redis://127.0.0.1:1/0", timeout=0.5), LAYOUT)
        try:
            with pytest.raises(StoreError, match="redis"):
                await store.ping()
        finally:
            await store.close()

    aio.run(body())


def test_large_batches_of_sets_and_deletes_apply_in_full(run_store: Callable[[StoreTest], None]) -> None:
    async def body(store: Store) -> None:
        layout = store.layout
        bucket = 3
        slot = layout.slot_of(bucket)
        await store.claim(slot, 0, 1, [bucket])
        uids = [f"uid-{i}" for i in range(5000)]  # 10,000 arguments in one segment
        ops = [Op("big", bucket, u, b"big 1\n") for u in uids] + [
            Op("other", bucket, u, b"other 1\n") for u in uids
        ]
        assert await store.write(slot, token(0, 1), ops) == []
        deletes = [Op("big", bucket, u, None) for u in uids[:4500]]
        assert await store.write(slot, token(0, 1), deletes) == []
        assert sorted(await store.fields(slot, "big")) == sorted(uids[4500:])
        assert len(await store.fields(slot, "other")) == 5000
        big, none, other = await store.fields_of(slot, ["big", "none", "other"])
        assert sorted(big) == sorted(uids[4500:]) and none == [] and sorted(other) == sorted(uids)

    run_store(body)


def test_writes_survive_redis_forgetting_its_scripts(redis_server: RedisServer) -> None:  # noqa: F811
    async def body() -> None:
        layout = Layout(prefix=f"t{uuid.uuid4().hex[:8]}", buckets=64, slots=8)
        store = RedisStore.connect(RedisOptions(url=redis_server.url), layout)
        try:
            await store.claim(0, 0, 1, [0])
            assert await store.write(0, token(0, 1), [Op("f", 0, uid_in(layout, 0), b"f 1\n")]) == []
            await store._client.script_flush()  # what a Redis restart does to the script cache
            assert await store.write(0, token(0, 1), [Op("f", 0, uid_in(layout, 0), b"f 2\n")]) == []
            assert len(await store.fields(0, "f")) == 2
        finally:
            await store.close()

    aio.run(body())


def test_several_slots_are_written_in_one_exchange_each_with_its_own_outcome(
    run_store: Callable[[StoreTest], None],
) -> None:
    async def body(store: Store) -> None:
        layout = store.layout
        mine, theirs = token(0, 1), token(1, 2)
        buckets = {slot: slot * (layout.buckets // layout.slots) for slot in range(3)}
        for slot, bucket in buckets.items():
            await store.claim(slot, 0 if slot != 1 else 1, 1 if slot != 1 else 2, [bucket])
        uids = {slot: uid_in(layout, bucket) for slot, bucket in buckets.items()}
        batches = [
            (slot, Batch.of([Op("f", bucket, uids[slot], b"f 1\n")])) for slot, bucket in buckets.items()
        ]
        batches.append((3, Batch()))  # nothing to send
        outcomes = await store.write_batches(mine, batches)
        assert outcomes == [[], [buckets[1]], [], []]
        assert await store.fields(0, "f") == [uids[0]]
        assert await store.fields(1, "f") == []  # slot 1's bucket belongs to shard 1 at generation 2
        assert await store.fields(2, "f") == [uids[2]]
        assert await store.write_batches(theirs, batches[1:2]) == [[]]
        assert await store.fields(1, "f") == [uids[1]]

    run_store(body)


def test_one_failing_slot_in_an_exchange_leaves_the_others_applied(redis_server: RedisServer) -> None:  # noqa: F811
    async def body() -> None:
        layout = Layout(prefix=f"t{uuid.uuid4().hex[:8]}", buckets=64, slots=8)
        store = RedisStore.connect(RedisOptions(url=redis_server.url), layout)
        try:
            owner = token(0, 1)
            await store.claim(0, 0, 1, [0])
            await store.claim(1, 0, 1, [8])
            await store._client.set(layout.family_key(0, "f"), b"not a hash")  # HSET on it fails
            await store._client.script_flush()  # and the script must be loaded again on the way
            batches = [
                (0, Batch.of([Op("f", 0, uid_in(layout, 0), b"f 1\n")])),
                (1, Batch.of([Op("f", 8, uid_in(layout, 8), b"f 2\n")])),
            ]
            broken, fine = await store.write_batches(owner, batches)
            assert isinstance(broken, StoreError) and "WRONGTYPE" in str(broken)
            assert fine == []
            assert len(await store.fields(1, "f")) == 1
        finally:
            await store.close()

    aio.run(body())


def test_write_commands_are_what_hiredis_packs_of_the_script_arguments() -> None:
    """`write_command` builds the RESP of the write script's EVALSHA itself; it must be
    byte for byte what hiredis packs of `write_arguments` (sets only, deletes only,
    both, empty objects, non-ASCII uids, lines past the header table, counts past 255)."""
    rng = random.Random(7)
    layout = Layout(prefix="t", buckets=64, slots=8)
    families = [f"fam_{i}" for i in range(300)]
    for case in range(60):
        batch = Batch()
        for _ in range(rng.randint(1, 40)):
            bucket = rng.choice(range(8, 16))  # slot 1
            uid = rng.choice([str(uuid.uuid4()), f"uid-é-{rng.random()}", "x"])
            batch.segments.setdefault(bucket, {})[uid] = {
                family: (None if rng.random() < 0.3 * (case % 3) else bytes(rng.randint(0, 5000)))
                for family in rng.sample(families, rng.choice([0, 1, 5, 13, 300]))
            }
        keys, args = write_arguments(layout, 1, "3:7", batch)
        expected = hiredis.pack_command(("EVALSHA", "a" * 40, str(len(keys)), *keys, *args))
        assert write_command(layout, 1, "3:7", batch, "a" * 40) == expected
    assert write_command(layout, 1, "3:7", Batch(), "a" * 40) is None


def test_a_batch_keeps_the_last_operation_per_field_and_counts_fields() -> None:
    batch = Batch.of(
        [
            Op("f", 1, "a", b"f 1\n"),
            Op("f", 1, "a", None),  # the delete replaces the set
            Op("f", 1, "b", None),
            Op("f", 1, "b", b"f 2\n"),  # the set replaces the delete
            Op("g", 2, "a", b"g 1\n"),
            Op("g", 2, "a", b"g 2\n"),
        ]
    )
    assert len(batch) == 3
    assert set(batch.ops()) == set(
        [Op("f", 1, "a", None), Op("f", 1, "b", b"f 2\n"), Op("g", 2, "a", b"g 2\n")]
    )
    picked = batch.select([2])
    assert picked.ops() == [Op("g", 2, "a", b"g 2\n")] and len(picked) == 1
    batch.drop([1])
    assert batch.ops() == [Op("g", 2, "a", b"g 2\n")] and len(batch) == 1
    later = Batch.of([Op("g", 2, "a", None), Op("h", 2, "c", b"h 1\n")])
    batch.merge(later)
    assert set(batch.ops()) == set([Op("g", 2, "a", None), Op("h", 2, "c", b"h 1\n")])
    assert len(batch) == 2


def test_a_burial_deletes_a_dead_objects_fields_whoever_owns_its_bucket(
    run_store: Callable[[StoreTest], None],
) -> None:
    """Unfenced, by design (`shard.successors`): the uid is dead for good, so any shard
    may delete its fields; nothing else in the slot is touched, and twice is harmless."""

    async def test(store: Store) -> None:
        await store.claim(LAYOUT.slot_of(3), 0, 1, [3])
        await store.claim(LAYOUT.slot_of(40), 1, 1, [40])
        dead, alive, other = uid_in(store.layout, 3), uid_in(store.layout, 3), uid_in(store.layout, 40)
        for bucket, uid, owner in ((3, dead, token(0, 1)), (3, alive, token(0, 1)), (40, other, token(1, 1))):
            ops = [Op("fam_a", bucket, uid, b"fam_a 1\n"), Op("fam_b", bucket, uid, b"fam_b 1\n")]
            assert await store.write(store.layout.slot_of(bucket), owner, ops) == []
        burial = Burial(store.layout.slot_of(3), dead, ("fam_a", "fam_b", "fam_never_written"))
        await store.bury([burial, Burial(store.layout.slot_of(40), "not-stored", ("fam_a",))])
        await store.bury([burial])
        slot = store.layout.slot_of(3)
        assert [sorted(uids) for uids in await store.fields_of(slot, ["fam_a", "fam_b"])] == [
            [alive],
            [alive],
        ]
        assert await store.fields(store.layout.slot_of(40), "fam_a") == [other]

    run_store(test)
