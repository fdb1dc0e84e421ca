"""Response helpers shared by the server and the verb handlers: common headers,
Status error bodies, pretty printing for curl-like agents, and gzip over the
threshold (README.md, "Status errors" and "LIST and paging")."""

from __future__ import annotations

import asyncio
import uuid
import zlib
from collections import OrderedDict
from typing import Any

import orjson
from aiohttp import web

from kubesim import errors
from kubesim.encoding import list_body, list_chunks, list_size
from kubesim.options import parse_bool
from kubesim.resources import ResourceType
from kubesim.simulator import Simulator
from kubesim.storage import ObjVersion

GZIP_IN_THREAD_BYTES = 4 * 1024 * 1024
"""Bodies above this are compressed in a worker thread (zlib releases the GIL)."""
_PRETTY_AGENTS = ("curl", "Wget", "Mozilla/5.0")


def is_pretty(request: web.Request) -> bool:
    """`negotiate.go` `isPrettyPrint`: `?pretty=true`, or a curl/Wget/browser agent."""
    pretty = request.query.get("pretty")
    if pretty:
        try:
            return parse_bool("pretty", pretty)
        except errors.ApiError:
            return False
    return request.headers.get("User-Agent", "").startswith(_PRETTY_AGENTS)


def base_headers(sim: Simulator) -> dict[str, str]:
    return {
        "Audit-Id": str(uuid.uuid4()),
        "Cache-Control": "no-cache, private",
        "X-Kubernetes-Pf-Flowschema-Uid": sim.flowschema_uid,
        "X-Kubernetes-Pf-Prioritylevel-Uid": sim.prioritylevel_uid,
    }


def error_response(sim: Simulator, request: web.Request, err: errors.ApiError) -> web.Response:
    headers = base_headers(sim)
    headers.update(err.headers)
    if err.status is not None:
        headers["X-Content-Type-Options"] = "nosniff"
    resp = web.Response(status=err.code, body=err.body(pretty=is_pretty(request)), headers=headers)
    resp.content_type = err.content_type.split(";")[0]
    if err.status is None:
        resp.charset = "utf-8"
    return resp


async def json_response(
    sim: Simulator,
    request: web.Request,
    body: bytes,
    *,
    status: int = 200,
    content_type: str = "application/json",
) -> web.Response:
    """A JSON body, pretty-printed for curl, gzipped over the threshold."""
    headers = base_headers(sim)
    cfg = sim.config
    if is_pretty(request):
        body = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2) + b"\n"
    if (
        cfg.gzip
        and len(body) > cfg.gzip_threshold_bytes
        and "gzip" in request.headers.get("Accept-Encoding", "")
    ):
        body = await gzip_bytes(body, cfg.gzip_level)
        headers["Content-Encoding"] = "gzip"
    headers["Content-Type"] = content_type
    return web.Response(status=status, body=body, headers=headers)


async def gzip_bytes(body: bytes, level: int) -> bytes:
    def run() -> bytes:
        c = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return c.compress(body) + c.flush()

    if len(body) > GZIP_IN_THREAD_BYTES:
        return await asyncio.get_running_loop().run_in_executor(None, run)
    return run()


STREAM_THRESHOLD = 1 << 20
"""Lists larger than this are streamed in pieces rather than joined into one body."""


class GzipCache:
    """Compressed big lists by (path, query, snapshot revision): the watch cache's "gzip large
    lists once per snapshot", so N clients listing the same revision cost one gzip."""

    def __init__(self, *, entries: int = 4, max_bytes: int = 512 << 20) -> None:
        self._entries = entries
        self._max_bytes = max_bytes
        self._data: OrderedDict[tuple[object, ...], list[bytes]] = OrderedDict()

    def get(self, key: tuple[object, ...]) -> list[bytes] | None:
        chunks = self._data.get(key)
        if chunks is not None:
            self._data.move_to_end(key)
        return chunks

    def put(self, key: tuple[object, ...], chunks: list[bytes]) -> None:
        if sum(len(c) for c in chunks) > self._max_bytes:
            return
        self._data[key] = chunks
        while len(self._data) > self._entries:
            self._data.popitem(last=False)


GZIP_CACHE_KEY = web.AppKey("gzip_cache", GzipCache)


async def list_response(
    sim: Simulator,
    request: web.Request,
    cache: GzipCache,
    *,
    rtype: ResourceType,
    version: str,
    items: list[ObjVersion],
    meta: dict[str, Any],
) -> web.StreamResponse:
    """A LIST response; big ones stream in ~1 MiB pieces (gzipped per piece when asked)."""
    size = list_size(rtype, version, items, meta)
    if size <= STREAM_THRESHOLD or is_pretty(request):
        return await json_response(sim, request, list_body(rtype, version, items, meta))
    cfg = sim.config
    headers = base_headers(sim)
    headers["Content-Type"] = "application/json"
    gzipped = (
        cfg.gzip and size > cfg.gzip_threshold_bytes and "gzip" in request.headers.get("Accept-Encoding", "")
    )
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    else:
        headers["Content-Length"] = str(size)
    resp = web.StreamResponse(headers=headers)
    await resp.prepare(request)
    chunks = list_chunks(rtype, version, items, meta)
    if not gzipped:
        for chunk in chunks:
            await resp.write(chunk)
    else:
        key = (request.path, tuple(sorted(request.query.items())), meta["resourceVersion"], cfg.gzip_level)
        cached = cache.get(key)
        if cached is None:
            cached = []
            compressor = zlib.compressobj(cfg.gzip_level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            for chunk in chunks:
                cached.append(await asyncio.to_thread(compressor.compress, chunk))
                await resp.write(cached[-1])
            cached.append(compressor.flush())
            await resp.write(cached[-1])
            cache.put(key, cached)
        else:
            for piece in cached:
                await resp.write(piece)
    await resp.write_eof()
    return resp
