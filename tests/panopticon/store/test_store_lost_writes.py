"""The Redis store tells when Redis forgot writes it had acknowledged (a real redis-server)."""

from __future__ import annotations

import redis.asyncio as aioredis

from panopticon.store.batch import Batch, Op
from panopticon.store.layout import Layout, token
from panopticon.store.redisstore import RedisOptions, RedisStore
from tests.support import aio
from tests.support.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

LAYOUT = Layout(prefix="lost", buckets=64, slots=4)


def test_a_counter_that_went_back_is_found_by_the_next_write_or_by_the_heartbeat_read(
    redis_server: RedisServer,  # noqa: F811 - fixture
) -> None:
    async def body() -> None:
        store = RedisStore.connect(RedisOptions(url=redis_server.url), LAYOUT)
        raw = aioredis.from_url(redis_server.url)
        try:
            await store.ensure_layout()
            for slot in (0, 1):
                bucket = LAYOUT.buckets_of_slot(slot)[0]
                await store.claim(slot, 3, 1, [bucket])
                for i in range(3):
                    await store.write_batch(slot, token(3, 1), Batch.of([Op("f", bucket, f"u{i}", b"f 1\n")]))
            assert await raw.hget(LAYOUT.writes_key(0), "3") == b"3"
            assert await store.lost_writes() == set()

            # Slot 0 goes back to an older state and a write lands on it: it answers 2 again.
            await raw.hset(LAYOUT.writes_key(0), "3", 1)
            bucket = LAYOUT.buckets_of_slot(0)[0]
            await store.write_batch(0, token(3, 1), Batch.of([Op("f", bucket, "u9", b"f 2\n")]))
            # Slot 1 loses its counter and nothing is written to it: the read finds it.
            await raw.delete(LAYOUT.writes_key(1))
            assert await store.lost_writes() == {0, 1}
            assert await store.lost_writes() == set()  # each loss is reported once
        finally:
            await raw.aclose()
            await store.close()

    aio.run(body())


def test_the_server_run_id_changes_with_a_restart() -> None:
    server = RedisServer()  # its own: the session's server is not restarted under other tests
    server.start()

    async def body() -> dict[str, str]:
        store = RedisStore.connect(RedisOptions(url=server.url), LAYOUT)
        try:
            return await store.servers()
        finally:
            await store.close()

    try:
        before = aio.run(body())
        assert before == aio.run(body())
        server.restart_empty()
        after = aio.run(body())
        assert set(after) == set(before) and after != before
    finally:
        server.close()
