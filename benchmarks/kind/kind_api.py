"""The REST client of the kind benchmark scripts: requests to one API server, at most
`qps` per second, with retries of 429/5xx answers and transport errors, credentials
from a kubeconfig through the project's own loader (`panopticon.kube.credentials`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
import orjson
from kind_cluster import FIELD_MANAGER

from panopticon.kube.credentials import load_credentials

APPLY = "application/apply-patch+yaml"
RETRIED = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    """HTTP status; 0 when the request never got an answer."""
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def message(self) -> str:
        return str(self.body.get("message", "")) or f"HTTP {self.status}"


class Api:
    """Requests to one API server, at most `qps` per second (0: no limit), with
    retries of 429/5xx answers and transport errors (honouring Retry-After).
    Use as `async with Api(kubeconfig) as api:`.
    """

    def __init__(
        self, kubeconfig: str, *, context: str | None = None, qps: float = 0.0, retries: int = 8
    ) -> None:
        self.credentials = load_credentials(kubeconfig, context)
        self.qps = qps
        self.retries = retries
        self.requests = 0
        self._next_slot = 0.0
        self._session: aiohttp.ClientSession | None = None
        self._auth: tuple[float, str | None] = (-1e9, None)

    async def __aenter__(self) -> Api:
        creds = self.credentials
        ssl_option: Any = creds.ssl_context if creds.ssl_context is not None else True
        self._session = aiohttp.ClientSession(
            creds.server,
            connector=aiohttp.TCPConnector(limit=256, ssl=ssl_option),
            headers={"Accept": "application/json", "User-Agent": f"{FIELD_MANAGER}/0.1"},
            timeout=aiohttp.ClientTimeout(total=120),
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def _throttle(self) -> None:
        if self.qps <= 0:
            return
        now = time.monotonic()
        slot = max(now, self._next_slot)
        self._next_slot = slot + 1.0 / self.qps
        if slot > now:
            await asyncio.sleep(slot - now)

    async def _authorization(self) -> str | None:
        stamp, value = self._auth
        if time.monotonic() - stamp > 10.0:  # exec plugins and token files rotate; re-ask now and then
            value = await asyncio.to_thread(self.credentials.authorization)
            self._auth = (time.monotonic(), value)
        return value

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
    ) -> Response:
        assert self._session is not None, "use `async with Api(...)`"
        data = orjson.dumps(body) if body is not None else None
        for attempt in range(self.retries + 1):
            await self._throttle()
            headers = {"Content-Type": content_type}
            auth = await self._authorization()
            if auth:
                headers["Authorization"] = auth
            self.requests += 1
            wait = min(5.0, 0.2 * 2**attempt)
            try:
                async with self._session.request(
                    method,
                    path,
                    data=data,
                    params=params,
                    headers=headers,
                    server_hostname=self.credentials.tls_server_name,
                ) as resp:
                    raw = await resp.read()
                    status = resp.status
                    retry_after = resp.headers.get("Retry-After", "")
            except (aiohttp.ClientError, OSError, TimeoutError) as e:
                if attempt == self.retries:
                    return Response(0, {"message": f"{method} {path}: {type(e).__name__}: {e}"})
                await asyncio.sleep(wait)
                continue
            if status in RETRIED and attempt < self.retries:
                await asyncio.sleep(float(retry_after) if retry_after.isdigit() else wait)
                continue
            try:
                decoded = orjson.loads(raw) if raw else {}
            except orjson.JSONDecodeError:
                decoded = {"message": raw[:200].decode(errors="replace")}
            return Response(status, decoded if isinstance(decoded, dict) else {"items": decoded})
        raise AssertionError("unreachable")  # the loop always returns

    async def apply(self, path: str, body: dict[str, Any]) -> Response:
        """Server-side apply of `body` at `path` (force: this benchmark owns its objects)."""
        return await self.call(
            "PATCH",
            path,
            body=body,
            content_type=APPLY,
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
        )
