"""The test runner helper: uvloop, the value back, and a deadline that fails clearly."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from tests.support import aio


def test_run_returns_the_coroutines_value_and_runs_it_on_uvloop() -> None:
    async def which_loop() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert aio.run(which_loop()) == uvloop.Loop.__module__


def test_a_coroutine_past_its_deadline_fails_the_test_with_its_name() -> None:
    async def sleeper() -> None:
        await asyncio.sleep(30)

    with pytest.raises(pytest.fail.Exception, match=r"sleeper did not finish within 0\.05 s"):
        aio.run(sleeper(), timeout=0.05)


def test_a_timeout_error_of_the_coroutine_itself_is_not_mistaken_for_the_deadline() -> None:
    async def times_out_inside() -> None:
        async with asyncio.timeout(0.01):
            await asyncio.sleep(30)

    with pytest.raises(TimeoutError):
        aio.run(times_out_inside(), timeout=30)


def test_asynctest_runs_the_decorated_coroutine_with_its_arguments() -> None:
    seen: list[int] = []

    @aio.asynctest
    async def decorated(x: int) -> None:
        seen.append(x)

    @aio.asynctest(timeout=0.05)
    async def slow() -> None:
        await asyncio.sleep(30)

    decorated(3)
    assert seen == [3]
    with pytest.raises(pytest.fail.Exception, match=r"slow did not finish within 0\.05 s"):
        slow()
