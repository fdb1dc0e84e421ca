"""What an HTTP client may cost a Panopticon server, and what is counted when it tries more.

Every port Panopticon serves (the aggregator's metrics and telemetry ports, the
shard's port; `serving.start_sites`) is reachable by anything in the cluster, so a
client's mistakes and abuse are contained at the connection, counted through the
listener's `on_reject(reason)` and logged as one line at DEBUG, never as an ERROR
traceback (aiohttp logs one for every malformed request):

- `bad_request`: a request aiohttp cannot parse, or whose request line or a header
  is longer than `max_line` bytes (aiohttp answers 400 and closes the connection);
- `request_timeout`: a client that started a request but did not finish its head
  (request line and headers) within `request_timeout` seconds, slowloris-style,
  is disconnected. A kept-alive connection that sends nothing for `idle_timeout`
  seconds is closed too, without counting it (Prometheus keeps its connections
  between scrapes; the default outlasts the usual scrape intervals);
- `too_many_connections`: past `max_connections` open connections, a new one is
  closed at once, so idle clients cannot use up the process's file descriptors
  (which its Redis and Kubernetes connections need too).

A client that stops reading a long response is the handler's business
(`StallWatch`): only the aggregator's `/metrics` streams more than a socket buffer.

Why hand-written: aiohttp has no limit on open connections or on the time a client
may take to send a request head, and no hook that counts what it rejects; a reverse
proxy (nginx's `client_header_timeout`, `worker_connections`) would give both, but
each Panopticon process serves its ports itself, with no proxy in the pod. No speed
claim.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

log = logging.getLogger("panopticon.http")

Reject = Callable[[str], None]
"""Called with the reason each time a client is refused or disconnected."""


@dataclass(frozen=True, slots=True)
class GuardSettings:
    max_connections: int = 128
    """Open connections per port; more are closed at once. Prometheus servers and a
    few people with curl need a handful."""
    request_timeout: float = 10.0
    """Seconds from a request's first byte to the end of its head."""
    idle_timeout: float = 120.0
    """Seconds a connection may stay open without a request (longer than the usual
    scrape intervals, so Prometheus' kept-alive connections are reused)."""
    max_line: int = 8190
    """Bytes of the request line and of each header (aiohttp's default)."""


class Guard:
    """One port's open connections and limits."""

    def __init__(self, settings: GuardSettings, on_reject: Reject) -> None:
        self.settings = settings
        self.on_reject = on_reject
        self.connections: dict[asyncio.BaseTransport, _Connection] = {}

    def reject(self, reason: str, peer: object, detail: str) -> None:
        self.on_reject(reason)
        log.debug("HTTP client %s: %s (%s)", peer, detail, reason)

    def runner_options(self) -> dict[str, Any]:
        """Keyword arguments of `web.AppRunner` (passed on to aiohttp's protocol)."""
        return {
            "logger": _ClientErrorLogger(self),
            "max_line_size": self.settings.max_line,
            "max_field_size": self.settings.max_line,
        }

    def install(self, app: web.Application) -> None:
        """Let `app`'s requests mark their connection busy (before the runner starts)."""
        app.middlewares.append(self._track)

    @web.middleware
    async def _track(self, request: web.Request, handler: Any) -> web.StreamResponse:
        connection = self.connections.get(request.transport) if request.transport is not None else None
        if connection is None:
            result: web.StreamResponse = await handler(request)
            return result
        connection.request_started()
        try:
            result = await handler(request)
            return result
        finally:
            connection.request_finished()

    def protocol(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory wrapping aiohttp's (`runner.server`)."""
        return lambda: _Connection(inner(), self)


class GuardedSite(web.BaseSite):
    """A TCP site whose connections go through a `Guard`."""

    __slots__ = ("_guard", "_host", "_port")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, guard: Guard) -> None:
        super().__init__(runner)
        self._host, self._port, self._guard = host, port, guard

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._guard.protocol(server), self._host, self._port)


class _Connection(asyncio.Protocol):
    """aiohttp's protocol for one connection, with the guard's timers in front."""

    def __init__(self, inner: asyncio.Protocol, guard: Guard) -> None:
        self.inner = inner
        self.guard = guard
        self.transport: asyncio.Transport | None = None
        self.busy = False
        """A request reached the app and its handler has not returned yet."""
        self.started = False
        """Bytes of a request head arrived since the connection was last idle."""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard = self.guard
        stream = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses
        if len(guard.connections) >= guard.settings.max_connections:
            guard.reject("too_many_connections", _peer(stream), "too many open connections")
            stream.abort()
            return
        self.transport = stream
        guard.connections[stream] = self
        self._arm(guard.settings.idle_timeout)
        self.inner.connection_made(stream)

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        if not self.busy and not self.started:
            self.started = True
            self._arm(self.guard.settings.request_timeout)
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self.transport is None:
            return None
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is None:
            return
        self._disarm()
        self.guard.connections.pop(self.transport, None)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def request_started(self) -> None:
        self.busy, self.started = True, False
        self._disarm()

    def request_finished(self) -> None:
        self.busy = False
        self._arm(self.guard.settings.idle_timeout)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._timer = asyncio.get_running_loop().call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.busy or self.transport is None:
            return
        if self.started:
            seconds = self.guard.settings.request_timeout
            self.guard.reject(
                "request_timeout", _peer(self.transport), f"no complete request in {seconds:g} s"
            )
        self.transport.close()


class _ClientErrorLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server logger: what a client got wrong (a malformed or oversized
    request, a connection dropped while a handler wrote) is counted and logged as one
    line at DEBUG; anything else (a bug) keeps aiohttp's message and traceback."""

    def __init__(self, guard: Guard) -> None:
        super().__init__(logging.getLogger("aiohttp.server"), {})
        self.guard = guard

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        error = kwargs.get("exc_info")
        peer = args[0] if args else "?"
        if isinstance(error, HttpProcessingError):
            message = (error.message or str(error)).splitlines()[0][:200]
            self.guard.reject("bad_request", peer, f"{error.code}: {message}")
        elif isinstance(error, ConnectionError):
            self.guard.reject("client_disconnected", peer, f"gone while its response was written: {error}")
        else:
            super().log(level, msg, *args, **kwargs)


def _peer(transport: asyncio.BaseTransport) -> object:
    peer = transport.get_extra_info("peername")
    return peer[0] if isinstance(peer, tuple) and peer else peer


class StallWatch:
    """Aborts a streamed response whose client stopped reading.

    Every `seconds`, the response must have made progress (`progress()` grew), or
    nothing may be waiting in the transport's write buffer (the server itself is
    waiting, for Redis say). Otherwise the connection is aborted: the handler's
    pending write fails with a ConnectionError, and it ends as for a disconnect."""

    def __init__(self, transport: asyncio.Transport, progress: Callable[[], int], seconds: float) -> None:
        self.transport = transport
        self.progress = progress
        self.seconds = seconds
        self.stalled = False
        self._last = progress()
        self._timer = asyncio.get_running_loop().call_later(seconds, self._check)

    def _check(self) -> None:
        now = self.progress()
        if now == self._last and self.transport.get_write_buffer_size() > 0:
            self.stalled = True
            self.transport.abort()
            return
        self._last = now
        self._timer = asyncio.get_running_loop().call_later(self.seconds, self._check)

    def cancel(self) -> None:
        self._timer.cancel()
