"""The scrape path's HVALS stream: every reply in order, at most `window` in flight,
and a small first batch so the first reply does not wait for a whole window."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis

from panopticon.store.scan import Endpoint, HvalsStream
from tests.support import aio
from tests.support.redis_server import RedisServer, redis_server  # noqa: F401 - fixture


def _fill(server: RedisServer, count: int) -> list[str]:
    """`count` hashes (every 7th empty), key i holding values i:0 .. i:(i % 5)."""
    prefix = f"scan{uuid.uuid4().hex[:8]}"
    client = redis.Redis(port=server.port)
    keys = [f"{prefix}:{i}" for i in range(count)]
    pipe = client.pipeline(transaction=False)
    for i, key in enumerate(keys):
        if i % 7:
            pipe.hset(key, mapping={f"f{j}": f"{i}:{j};" for j in range(i % 5 + 1)})
    pipe.execute()
    client.close()
    return keys


def _expected(i: int) -> bytes:
    return b"" if i % 7 == 0 else "".join(f"{i}:{j};" for j in range(i % 5 + 1)).encode()


@pytest.mark.parametrize(("window", "first"), [(256, 16), (8, 1), (5, 3), (16, 64), (1, 1)])
def test_every_reply_in_order_with_a_ramped_window(
    redis_server: RedisServer,  # noqa: F811 - fixture
    window: int,
    first: int,
) -> None:
    keys = _fill(redis_server, 600)
    batches: list[int] = []

    async def body() -> None:
        endpoint = Endpoint("127.0.0.1", redis_server.port)
        async with HvalsStream(endpoint, window=window, first=first) as stream:
            assert stream._writer is not None
            writer: Any = stream._writer
            write = writer.write

            def counting(data: bytes) -> None:
                batches.append(data.count(b"HVALS"))
                write(data)

            writer.write = counting
            got = [(key, values) async for key, values in stream.values(keys)]
        assert [key for key, _ in got] == keys
        # Values come back joined in field order of insertion (small hashes are listpacks).
        assert [values for _, values in got] == [_expected(i) for i in range(len(keys))]

    aio.run(body())
    assert sum(batches) == len(keys)
    assert batches[0] == min(first, window)
    assert max(batches) <= window
    if first < window:  # ramps up: the window is reached, in batches bigger than the first
        assert max(batches) > batches[0]


def test_the_first_reply_is_awaited_after_the_first_batch_only(
    redis_server: RedisServer,  # noqa: F811 - fixture
) -> None:
    """Before the first reply, only `first` commands were sent (the rest would hold it back)."""
    keys = _fill(redis_server, 300)
    sent_before_first: list[int] = []

    async def body() -> None:
        async with HvalsStream(Endpoint("127.0.0.1", redis_server.port), window=256, first=16) as stream:
            writer: Any = stream._writer
            write = writer.write
            sent = [0]

            def counting(data: bytes) -> None:
                sent[0] += data.count(b"HVALS")
                write(data)

            writer.write = counting
            async for _ in stream.values(keys):
                if not sent_before_first:
                    sent_before_first.append(sent[0])

    aio.run(body())
    assert sent_before_first == [16]
