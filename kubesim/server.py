"""The aiohttp application: one dispatcher, thin over pure functions.

Every API request goes: request log → authentication (401) → request faults
(429/503) → routing (404) → authorization (403) → the verb's handler. Handlers
parse, call the simulator, and write pre-built bytes; errors become Status
responses (or the plain-text forms) via `error_response`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kubesim import errors, handlers
from kubesim.admin import add_admin_routes
from kubesim.auth import Attributes, authenticate, authorize
from kubesim.discovery import AGGREGATED_TYPE, Discovery, wants_aggregated
from kubesim.options import parse_bool
from kubesim.responses import GZIP_CACHE_KEY, GzipCache, base_headers, error_response, json_response
from kubesim.routing import Route, route, verb_of
from kubesim.simulator import Simulator

SIM_KEY = web.AppKey("simulator", Simulator)
DISCOVERY_KEY = web.AppKey("discovery", Discovery)
_OPEN_PATHS = frozenset({"health", "version"})


def first_values(request: web.Request) -> dict[str, str]:
    query: dict[str, str] = {}
    for k, v in request.query.items():
        query.setdefault(k, v)
    return query


async def dispatch(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM_KEY]
    query = first_values(request)
    record = sim.requests.add(
        method=request.method,
        path=request.path,
        query=query,
        headers={str(k): v for k, v in request.headers.items()},
    )
    try:
        resp = await _serve(request, sim, query, record)
    except errors.ApiError as err:
        resp = error_response(sim, request, err)
    record.status = resp.status
    return resp


async def _serve(
    request: web.Request, sim: Simulator, query: dict[str, str], record: Any
) -> web.StreamResponse:
    cfg = sim.config
    target: Route | None = None
    try:
        target = route(request.path, sim.registry)
    except errors.ApiError:
        target = None
    if target is not None and target.target in _OPEN_PATHS:
        return await _open_endpoint(request, sim, target)
    user = authenticate(cfg, request.headers.get("Authorization"))
    record.user = user
    watch = _is_watch(query)
    verb = (
        verb_of(request.method, target, watch=watch)
        if target is not None and target.rtype
        else request.method.lower()
    )
    record.verb = verb
    fault = sim.faults.check(path=request.path, verb=verb)
    if fault is not None:
        raise fault
    if target is None:
        target = route(request.path, sim.registry)  # raises the right 404
    if target.rtype is None:
        return await _discovery(request, sim, target)
    authorize(
        cfg,
        user,
        Attributes(
            verb, target.group, target.rtype.plural, target.namespace, target.name, target.subresource
        ),
    )
    return await handlers.handle(request, sim, target, query, verb=verb, user=user)


def _is_watch(query: dict[str, str]) -> bool:
    value = query.get("watch")
    if not value:
        return False
    return parse_bool("watch", value)


async def _open_endpoint(request: web.Request, sim: Simulator, target: Route) -> web.StreamResponse:
    if target.target == "version":
        return await json_response(sim, request, sim.version_body())
    if request.path.startswith("/readyz") and sim.faults.unavailable is not None:
        return web.Response(
            status=500, text="[-]poststarthook/simulator-startup failed: not finished\nreadyz check failed\n"
        )
    return web.Response(text="ok", headers=base_headers(sim))


async def _discovery(request: web.Request, sim: Simulator, target: Route) -> web.StreamResponse:
    disc = request.app[DISCOVERY_KEY]
    if request.method != "GET":
        raise errors.ApiError(
            405,
            errors.status(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
            ),
        )
    aggregated = sim.config.aggregated_discovery and wants_aggregated(request.headers.get("Accept", ""))
    body: bytes | None
    if target.target == "api":
        if aggregated:
            return await json_response(sim, request, disc.aggregated(core=True), content_type=AGGREGATED_TYPE)
        body = disc.api_versions()
    elif target.target == "apis":
        if aggregated:
            return await json_response(
                sim, request, disc.aggregated(core=False), content_type=AGGREGATED_TYPE
            )
        body = disc.group_list()
    elif target.target == "group":
        body = disc.group(target.group)
    elif target.target == "resources":
        body = disc.resource_list(target.group, target.version)
    elif target.target == "openapi_root":
        body = disc.openapi_root()
    else:
        body = disc.openapi_group_version(target.group, target.version)
    if body is None:
        raise errors.page_not_found()
    return await json_response(sim, request, body)


async def _on_shutdown(app: web.Application) -> None:
    sim = app[SIM_KEY]
    sim.close_watches("eof")


def build_app(sim: Simulator, *, server_address: str = "127.0.0.1:6443") -> web.Application:
    """The aiohttp application serving `sim` (admin API included when enabled)."""
    app = web.Application(client_max_size=256 * 1024 * 1024)
    app[SIM_KEY] = sim
    app[DISCOVERY_KEY] = Discovery(sim.registry, server_address=server_address)
    app[GZIP_CACHE_KEY] = GzipCache()
    if sim.config.admin_enabled:
        add_admin_routes(app, sim)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    app.on_shutdown.append(_on_shutdown)
    return app
