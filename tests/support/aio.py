"""The one way tests run coroutines: on uvloop, as the product runs, with a deadline.

    from tests.support import aio

    def test_something() -> None:
        async def body() -> None: ...
        aio.run(body())                      # a sync test runs a coroutine

    @aio.asynctest
    async def test_other() -> None: ...      # a test whose whole body is async

Every call gets a fresh loop from `asyncio.Runner(loop_factory=uvloop.new_event_loop)`,
the runner `panopticon.serving.run` uses, so tests exercise the event loop the shard
and the aggregator run on. A coroutine that outlives `timeout` seconds is cancelled and
the test fails with a message naming it, instead of hanging until pytest-timeout's
thread dump (300 s, pyproject). `timeout=None` is for loops that run until something
else stops them (a background server or poller in its own thread). The project uses no
pytest async plugin: this module is the whole story.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import pytest
import uvloop

DEFAULT_TIMEOUT = 120.0
"""Seconds; generous for a loaded 2-core machine, and below pytest-timeout's 300 s so
that the message here, not a thread dump, says what hung."""

T = TypeVar("T")
P = ParamSpec("P")


def run(coro: Coroutine[Any, Any, T], *, timeout: float | None = DEFAULT_TIMEOUT) -> T:
    """Run `coro` to completion on a fresh uvloop loop; fail the test after `timeout` s."""
    name = getattr(coro, "__qualname__", repr(coro))

    async def bounded() -> T:
        if timeout is None:
            return await coro
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                return await coro
        except TimeoutError:
            if deadline.expired():
                pytest.fail(
                    f"{name} did not finish within {timeout:g} s (tests.support.aio.run)", pytrace=False
                )
            raise

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(bounded())


def asynctest(
    fn: Callable[P, Coroutine[Any, Any, None]] | None = None, *, timeout: float | None = DEFAULT_TIMEOUT
) -> Any:
    """Decorate an `async def` test so pytest can call it: `run` with the test's arguments.

    `@asynctest` or `@asynctest(timeout=…)`."""

    def decorate(fn: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
            run(fn(*args, **kwargs), timeout=timeout)

        return wrapper

    return decorate if fn is None else decorate(fn)
