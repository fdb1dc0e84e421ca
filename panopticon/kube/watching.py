"""One watch response as batches of lines: the inactivity timeout and the wake-up.

`read_chunks` reads a streaming response, failing with `WatchTimeoutError` when no
byte arrives for `inactivity` seconds (a stalled or half-open connection), and
with `StreamBrokenError` when the connection drops mid-stream (client-go treats
such "probable EOF" errors as a normal end and re-watches from the last
resourceVersion; the reflector does the same). `Waker` lets another task end a
blocked read at once (the reflector's `set_filter`). `watch_lines` stacks the line
splitter on top.

No `yield` happens inside a timeout scope: a scope left open across a yield
would cancel whatever the consumer is awaiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import aiohttp

from panopticon.kube.errors import StreamBrokenError, WatchTimeoutError
from panopticon.kube.lines import DEFAULT_MAX_LINE, split_lines


class Interrupted(Exception):
    """A read was woken by `Waker.wake` (not an error: the owner asked for it)."""


class Waker:
    """Wakes the read in progress, if any, and flags every later read."""

    __slots__ = ("scope", "woken")

    def __init__(self) -> None:
        self.woken = False
        self.scope: asyncio.Timeout | None = None
        """The timeout scope of the read in progress (set by `read_chunks`)."""

    def wake(self) -> None:
        self.woken = True
        scope = self.scope
        if scope is not None and not scope.expired():
            scope.reschedule(asyncio.get_running_loop().time())

    def clear(self) -> None:
        self.woken = False


async def read_chunks(
    resp: aiohttp.ClientResponse, *, inactivity: float | None, waker: Waker
) -> AsyncGenerator[bytes, None]:
    """The response body as it arrives (inflated when gzipped), chunk by chunk."""
    content = resp.content
    while True:
        if waker.woken:
            raise Interrupted
        try:
            async with asyncio.timeout(inactivity) as scope:
                waker.scope = scope
                chunk = await content.readany()
        except TimeoutError:
            if waker.woken:
                raise Interrupted from None
            raise WatchTimeoutError(f"no data for {inactivity} s") from None
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, ConnectionError) as e:
            if waker.woken:
                raise Interrupted from None
            raise StreamBrokenError(f"watch stream broke: {type(e).__name__}: {e}") from e
        finally:
            waker.scope = None
        if not chunk:
            return
        yield chunk


async def watch_lines(
    resp: aiohttp.ClientResponse,
    *,
    inactivity: float | None,
    waker: Waker,
    max_line: int = DEFAULT_MAX_LINE,
) -> AsyncGenerator[list[bytes], None]:
    """Batches of complete watch lines from one response."""
    async for batch in split_lines(read_chunks(resp, inactivity=inactivity, waker=waker), max_line=max_line):
        yield batch
