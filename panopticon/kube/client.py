"""The Kubernetes REST client: one aiohttp session, JSON through orjson.

`KubeClient` owns one `aiohttp.ClientSession` (opened and closed as an async
context manager) whose connector allows far more than aiohttp's default 100
connections, because every open watch holds one. Requests carry the credentials'
`Authorization` header (refreshed in a worker thread, cached briefly, and
re-fetched once on a 401) and `Accept-Encoding: gzip`; aiohttp inflates.

Retries follow client-go's `rest/with_retry.go`: an answer of 429 or 5xx that
carries `Retry-After` is retried after that many seconds, up to `max_retries`
times. Everything else surfaces at once as a `KubeError` parsed from the Status
body (or the plain-text 404 and 429 forms); the reflector decides what to do.

Why hand-written rather than kubernetes_asyncio (or the `kubernetes` package, which
the exporter uses for loading credentials only): a generated client turns every
object into model classes, which the hot path avoids (raw orjson dicts, skipped
unparsed when another shard owns them), or hands back the raw response and leaves
parsing, line splitting (`lines`) and the list/watch algorithm (`reflector`) to the
caller anyway; its watch helper follows the Python client's rules (retry a 410 once
with the same RV), not client-go's; and it would be a second HTTP stack beside the
process's one aiohttp session. Not measured against kubernetes_asyncio (not
installed here); the reasons above are not about speed.
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from panopticon.kube.credentials import Credentials
from panopticon.kube.errors import KubeConnectionError, ProtocolError, api_error, parse_retry_after

Params = Mapping[str, str]
JSON_MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Transport settings; every field gives its unit and why its default."""

    connections: int = 1024
    """Connector limit. aiohttp's default (100) is too low: every watch holds a
    connection, and a shard watches one resource per target kind plus its own."""
    connect_timeout: float = 10.0
    """Seconds to establish a connection (TCP and TLS)."""
    request_timeout: float = 120.0
    """Seconds for a whole non-streaming request; a LIST page of 500 big objects
    from a loaded server can take tens of seconds."""
    max_retries: int = 10
    """Retries of a 429/5xx answer with `Retry-After` (client-go `maxRetries`)."""
    max_retry_wait: float = 60.0
    """Seconds; a larger `Retry-After` is capped to this."""
    auth_cache: float = 10.0
    """Seconds an `Authorization` value is reused before asking the credentials again
    (which re-read rotated token files and refresh expired exec tokens)."""
    user_agent: str = "panopticon/0.1 (aiohttp)"


@dataclass(slots=True)
class ClientStats:
    """Counters for self-metrics."""

    requests: int = 0
    retries: int = 0
    errors: Counter[int] = field(default_factory=Counter)
    """By HTTP code; 0 counts transport failures."""


class KubeClient:
    """The REST client of one API server. Use as `async with KubeClient(creds) as client:`."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        settings: ClientSettings | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.credentials = credentials
        self.settings = settings or ClientSettings()
        self.stats = ClientStats()
        self._sleep = sleep
        self._base = credentials.server.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._auth: tuple[float, str | None] | None = None
        self._auth_lock = asyncio.Lock()
        s = self.settings
        self._timeout = aiohttp.ClientTimeout(total=s.request_timeout, sock_connect=s.connect_timeout)
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=s.connect_timeout, sock_read=None
        )

    async def __aenter__(self) -> KubeClient:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self._session is not None:
            return
        ssl_option: Any = self.credentials.ssl_context if self.credentials.ssl_context is not None else True
        connector = aiohttp.TCPConnector(limit=self.settings.connections, limit_per_host=0, ssl=ssl_option)
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={
                "Accept": "application/json",
                "Accept-Encoding": "gzip",
                "User-Agent": self.settings.user_agent,
            },
        )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("KubeClient is not open: use `async with KubeClient(...)`")
        return self._session

    # --- requests ---

    async def get(self, path: str, params: Params | None = None) -> dict[str, Any]:
        """GET `path` and decode the JSON object it answers."""
        resp = await self._send("GET", path, params=params)
        return await _json_of(resp, path)

    async def list_page(self, path: str, params: Params | None = None) -> dict[str, Any]:
        """One LIST page: `{"metadata": {"resourceVersion", "continue"?, "shardInfo"?}, "items": [...]}`."""
        page = await self.get(path, params)
        if not isinstance(page.get("items", []), list):
            raise ProtocolError(f"LIST {path}: items is not a list")
        return page

    async def patch_merge(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386) of the object at `path`."""
        resp = await self._send(
            "PATCH", path, data=orjson.dumps(body), content_type=JSON_MERGE_PATCH, retry_unsafe=True
        )
        return await _json_of(resp, path)

    async def patch_status(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A merge patch of the `/status` subresource of the object at `path`."""
        return await self.patch_merge(path.rstrip("/") + "/status", body)

    @asynccontextmanager
    async def stream(self, path: str, params: Params | None = None) -> AsyncIterator[aiohttp.ClientResponse]:
        """A streaming GET (a watch): the response once its status is 2xx.

        The caller reads `response.content`; a stream not read to its end is closed
        (its connection cannot be reused), one read to EOF returns to the pool.
        """
        resp = await self._send("GET", path, params=params, streaming=True)
        try:
            yield resp
        finally:
            if resp.content.at_eof():
                resp.release()
            else:
                resp.close()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        data: bytes | None = None,
        content_type: str | None = None,
        streaming: bool = False,
        retry_unsafe: bool = False,
    ) -> aiohttp.ClientResponse:
        """Send until a 2xx answer (returned unread) or an error that is not retried."""
        session = self.session
        url = self._base + path
        retries = 0
        refreshed = False
        creds = self.credentials
        while True:
            headers = {"Content-Type": content_type} if content_type else {}
            auth = await self._authorization()
            if auth:
                headers["Authorization"] = auth
            self.stats.requests += 1
            try:
                resp = await session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=headers,
                    timeout=self._stream_timeout if streaming else self._timeout,
                    server_hostname=creds.tls_server_name,
                    proxy=creds.proxy,
                )
            except aiohttp.ClientConnectorError as e:
                self.stats.errors[0] += 1
                refused = isinstance(e.os_error, ConnectionRefusedError) or e.errno == errno.ECONNREFUSED
                raise KubeConnectionError(f"{method} {path}: {e}", refused=refused) from e
            except (aiohttp.ClientError, OSError, TimeoutError) as e:
                self.stats.errors[0] += 1
                raise KubeConnectionError(f"{method} {path}: {type(e).__name__}: {e}") from e
            if resp.status < 300:
                return resp
            self.stats.errors[resp.status] += 1
            try:
                body = await resp.read()
            except (aiohttp.ClientError, OSError, TimeoutError):
                body = b""
            finally:
                resp.release()
            retry_after = resp.headers.get("Retry-After")
            err = api_error(resp.status, body, retry_after=retry_after)
            if resp.status == 401 and not refreshed:
                refreshed = True  # a rotated token: ask the credentials again, once
                self._auth = None
                continue
            wait = parse_retry_after(retry_after)
            if (
                wait is not None
                and (resp.status == 429 or resp.status >= 500)
                and retries < self.settings.max_retries
                and (method == "GET" or retry_unsafe)
            ):
                retries += 1
                self.stats.retries += 1
                await self._sleep(min(wait, self.settings.max_retry_wait))
                continue
            raise err

    async def _authorization(self) -> str | None:
        cached = self._auth
        if cached is not None and time.monotonic() - cached[0] < self.settings.auth_cache:
            return cached[1]
        async with self._auth_lock:
            cached = self._auth
            if cached is not None and time.monotonic() - cached[0] < self.settings.auth_cache:
                return cached[1]
            value = await asyncio.to_thread(self.credentials.authorization)
            self._auth = (time.monotonic(), value)
            return value


async def _json_of(resp: aiohttp.ClientResponse, path: str) -> dict[str, Any]:
    try:
        body = await resp.read()
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        raise KubeConnectionError(f"reading {path}: {type(e).__name__}: {e}") from e
    finally:
        resp.release()
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ProtocolError(f"{path}: the answer is not JSON: {e}") from e
    if not isinstance(value, dict):
        raise ProtocolError(f"{path}: the answer is not a JSON object")
    return value
