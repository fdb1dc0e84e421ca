"""The store every aggregator test runs against: in-process, then a real redis-server."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from panopticon.store.contract import Store
from panopticon.store.layout import Layout
from panopticon.store.memory import MemoryStore
from panopticon.store.redisstore import RedisOptions, RedisStore
from tests.support.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

LAYOUT = Layout(prefix="a", buckets=64, slots=8)


@pytest.fixture(params=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> Callable[[], Store]:
    if request.param == "memory":
        return lambda: MemoryStore(LAYOUT)
    server: RedisServer = request.getfixturevalue("redis_server")
    prefix = f"a{uuid.uuid4().hex[:8]}"
    return lambda: RedisStore.connect(
        RedisOptions(url=server.url), Layout(prefix=prefix, buckets=64, slots=8)
    )
