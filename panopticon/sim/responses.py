"""Response helpers shared by the server and the verb handlers: common headers,
Status error bodies, pretty printing for curl-like agents, and gzip over the
threshold (B.4.6, B.8, B.11)."""

from __future__ import annotations

import asyncio
import uuid
import zlib

import orjson
from aiohttp import web

from panopticon.sim import errors
from panopticon.sim.options import parse_bool
from panopticon.sim.simulator import Simulator

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
    """A JSON body, pretty-printed for curl, gzipped over the threshold (B.4.6)."""
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
