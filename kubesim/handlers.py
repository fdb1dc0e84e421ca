"""Handlers of the resource verbs: list, watch, get, create, update, patch, delete.

Each parses the request, calls the pure layer (listing, watch planning, object
writes) and writes bytes. The watch handler flushes headers before any event,
writes each batch as it is ready (one HTTP chunk per write, or several when the
chunk-split fault is on), and ends cleanly, with an ERROR event, or by reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import zlib
from typing import Any

import orjson
from aiohttp import web

from kubesim import errors
from kubesim.encoding import PARTIAL_PREFIX, list_body, object_bytes, partial_item, partial_list_chunks
from kubesim.listing import NeedRevision, list_objects
from kubesim.objects import WriteOptions
from kubesim.options import parse_list_options, parse_resource_version
from kubesim.protobody import NoSchema, decode_object
from kubesim.protowire import ProtoError
from kubesim.resources import ResourceType
from kubesim.responses import GZIP_CACHE_KEY, base_headers, json_response, list_response
from kubesim.routing import Route
from kubesim.scale import patched_scale, replicas_of, scale_of, serves_scale, with_replicas
from kubesim.simulator import Simulator
from kubesim.tables import WatchTables, include_object, scale_table, table
from kubesim.watch import Watch, plan_start
from panopticon.config.documents import parse_documents
from panopticon.errors import DocumentError


async def handle(
    request: web.Request, sim: Simulator, target: Route, query: dict[str, str], *, verb: str, user: str
) -> web.StreamResponse:
    if query.get("dryRun"):
        raise errors.bad_request("dryRun is not supported by the simulator")
    if verb == "list":
        return await list_handler(request, sim, target, query)
    if verb == "watch":
        return await watch_handler(request, sim, target, query, user=user)
    if verb == "get":
        return await get_handler(request, sim, target)
    scalable = target.rtype is not None and serves_scale(target.rtype)
    if target.subresource == "scale" and scalable and verb in ("update", "patch"):
        return await scale_write_handler(request, sim, target, query, verb=verb)
    if target.subresource and target.subresource != "status":
        rtype = target.rtype
        assert rtype is not None
        raise errors.method_not_allowed(verb, f"{rtype.plural}/{target.subresource}", group=rtype.group)
    if verb == "create":
        return await create_handler(request, sim, target, query)
    if verb in ("update", "patch"):
        return await write_handler(request, sim, target, query, verb=verb)
    if verb == "delete":
        return await delete_handler(request, sim, target)
    if verb == "deletecollection":
        return await delete_collection_handler(request, sim, target, query)
    rtype = target.rtype
    assert rtype is not None
    raise errors.method_not_allowed(verb, rtype.plural, group=rtype.group)


def negotiate(request: web.Request, *, tables: bool = True) -> str:
    """ "json", "partial" for metadata-only views or "table" (server-side printing, `tables`);
    406 when none is acceptable. Protobuf is not served: a client that also accepts JSON,
    as kubectl does, gets JSON."""
    accept = request.headers.get("Accept", "")
    if not accept:
        return "json"
    for part in accept.split(","):
        media, *raw = (p.strip() for p in part.split(";"))
        params = dict(p.split("=", 1) for p in raw if "=" in p)
        if media not in ("*/*", "application/*", "application/json"):
            continue
        kind = params.get("as")
        if kind is None:
            return "json"
        if params.get("g") != "meta.k8s.io" or params.get("v", "v1") != "v1":
            continue
        if kind in ("PartialObjectMetadata", "PartialObjectMetadataList"):
            return "partial"
        if kind == "Table" and tables:
            return "table"
    raise errors.not_acceptable(accept)


async def table_response(
    request: web.Request,
    sim: Simulator,
    target: Route,
    objects: list[dict[str, Any]],
    meta: dict[str, Any],
) -> web.Response:
    rtype = target.rtype
    assert rtype is not None
    include = include_object(dict(request.query))
    body = table(rtype, target.version, objects, meta, include=include, now=sim.objects.clock())
    return await json_response(sim, request, orjson.dumps(body))


async def list_handler(
    request: web.Request, sim: Simulator, target: Route, query: dict[str, str]
) -> web.StreamResponse:
    rtype = target.rtype
    assert rtype is not None
    view = negotiate(request)
    cfg = sim.config
    opts = parse_list_options(query, rtype, cfg, watch=False)
    st = sim.storage.store(rtype)
    try:
        result = list_objects(st, sim.storage, opts, namespace=target.namespace, cfg=cfg)
    except NeedRevision as need:
        if not await sim.wait_for_revision(need.rev, cfg.too_large_rv_wait):
            raise errors.too_large_resource_version(need.rev, sim.storage.revision) from None
        result = list_objects(st, sim.storage, opts, namespace=target.namespace, cfg=cfg)
    if view == "partial":
        return await json_response(sim, request, b"".join(partial_list_chunks(result.items, result.meta())))
    if view == "table":
        return await table_response(request, sim, target, [v.obj() for v in result.items], result.meta())
    cache = request.app[GZIP_CACHE_KEY]
    return await list_response(
        sim, request, cache, rtype=rtype, version=target.version, items=result.items, meta=result.meta()
    )


def _watch_query(target: Route, query: dict[str, str]) -> dict[str, str]:
    """A named legacy watch (`/watch/…/pods/foo`) is a watch with a name selector."""
    if not target.name:
        return query
    selector = query.get("fieldSelector", "")
    terms = [t for t in selector.split(",") if t]
    for t in terms:
        key, _, value = t.partition("=")
        if key.rstrip("=!") == "metadata.name" and value.lstrip("=") != target.name:
            raise errors.bad_request("fieldSelector metadata.name doesn't match requested name")
    return {**query, "fieldSelector": ",".join([*terms, f"metadata.name={target.name}"])}


async def watch_handler(
    request: web.Request, sim: Simulator, target: Route, query: dict[str, str], *, user: str
) -> web.StreamResponse:
    rtype = target.rtype
    assert rtype is not None
    view = negotiate(request)
    cfg = sim.config
    opts = parse_list_options(_watch_query(target, query), rtype, cfg, watch=True)
    rv = parse_resource_version(opts.resource_version, rtype, watch=True)
    st = sim.storage.store(rtype)
    if opts.is_watch_list and rv > sim.storage.revision:
        await sim.wait_for_revision(rv, cfg.too_large_rv_wait)
    start = plan_start(st, sim.storage, opts, namespace=target.namespace, cfg=sim.config)
    loop = asyncio.get_running_loop()
    timeout = opts.timeout_seconds
    if timeout is None:
        timeout = cfg.min_request_timeout * (1 + sim.rng.random())
    timeout /= cfg.time_scale
    watch = Watch(
        st,
        version=target.version,
        opts=opts,
        namespace=target.namespace,
        deadline=loop.time() + timeout,
        user=user,
        metadata_only=view == "partial",
    )
    tables = None
    if view == "table":
        tables = WatchTables(rtype, target.version, include=include_object(query), clock=sim.objects.clock)
    headers = base_headers(sim)
    compressor = None
    if (
        opts.is_watch_list
        and cfg.watch_list_compression
        and cfg.gzip
        and "gzip" in request.headers.get("Accept-Encoding", "")
    ):
        compressor = zlib.compressobj(cfg.gzip_level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        headers["Content-Encoding"] = "gzip"
    resp = web.StreamResponse(status=200, headers=headers)
    resp.content_type = "application/json"
    resp.enable_chunked_encoding()
    try:
        await resp.prepare(request)  # headers go out before any event (watch.go)
    except ConnectionError:
        return resp  # the client left before the headers went out: nothing to serve
    sim.watches.add(watch)
    st.watchers.add(watch)
    try:
        async for batch in watch.stream(start, sim.storage, lambda: sim.config):
            data = batch if tables is None else tables.convert(batch)
            out = (
                data
                if compressor is None
                else compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
            )
            await _write(resp, sim, out)
        if watch.close_mode == "abort":
            _reset(request)
            return resp
        if compressor is not None:
            await resp.write(compressor.flush())
        await resp.write_eof()
    except ConnectionError:
        pass  # the client went away
    finally:
        sim.watches.discard(watch)
        st.watchers.discard(watch)
    return resp


async def _write(resp: web.StreamResponse, sim: Simulator, data: bytes) -> None:
    split = sim.faults.split
    if split is None:
        await resp.write(data)
        return
    for piece in sim.faults.pieces(data):
        await resp.write(piece)
        if split.delay:
            await asyncio.sleep(split.delay)


def _reset(request: web.Request) -> None:
    """Abort the connection with a TCP RST (SO_LINGER 0), not a clean close."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def get_handler(request: web.Request, sim: Simulator, target: Route) -> web.Response:
    rtype = target.rtype
    assert rtype is not None
    view = negotiate(request)
    if target.subresource == "scale" and not serves_scale(rtype):
        raise errors.method_not_allowed("get", f"{rtype.plural}/scale", group=rtype.group)
    v = sim.objects.require(rtype, target.namespace, target.name)
    if target.subresource == "scale":
        scale = scale_of(v.obj())
        if view == "table":
            scale = scale_table(scale, include=include_object(dict(request.query)))
        return await json_response(sim, request, orjson.dumps(scale))
    if view == "partial":
        return await json_response(sim, request, PARTIAL_PREFIX + partial_item(v.item)[1:])
    if view == "table":
        return await table_response(request, sim, target, [v.obj()], {"resourceVersion": str(v.rev)})
    return await json_response(sim, request, object_bytes(rtype, target.version, v.item))


_BODY_TYPES = ("application/json", "application/yaml", "application/apply-patch+yaml", "*/*", "")


async def _body(request: web.Request, rtype: ResourceType) -> Any:
    """The request body as JSON, YAML or (built-in kinds, kubectl's typed clients) protobuf."""
    raw = await request.read()
    ctype = request.headers.get("Content-Type", "application/json").split(";")[0].strip()
    if ctype == errors.PROTOBUF and not rtype.crd:
        try:
            return decode_object(raw)
        except NoSchema as e:
            raise errors.unsupported_body_type(protobuf=False, detail=f"simulator: {e}") from None
        except ProtoError as e:
            raise errors.bad_request(f"the body of the request is not valid protobuf: {e}") from None
    if ctype not in _BODY_TYPES:
        raise errors.unsupported_body_type(protobuf=not rtype.crd)
    if ctype in ("application/yaml", "application/apply-patch+yaml"):
        try:
            docs = parse_documents(raw, source="request body")
        except DocumentError as e:
            raise errors.bad_request(str(e)) from None
        return docs[0].body if docs else {}
    try:
        return orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as e:
        raise errors.bad_request(f"the body of the request could not be decoded as JSON: {e}") from None


def _manager(request: web.Request, query: dict[str, str]) -> str:
    """`fieldManager`, else the User-Agent's product token (managerOrUserAgent)."""
    return query.get("fieldManager") or request.headers.get("User-Agent", "unknown").split("/")[0][:128]


async def create_handler(
    request: web.Request, sim: Simulator, target: Route, query: dict[str, str]
) -> web.Response:
    rtype = target.rtype
    assert rtype is not None
    if target.name or (rtype.namespaced and not target.namespace):
        raise errors.method_not_allowed("create", rtype.plural, group=rtype.group)
    obj = await _body(request, rtype)
    if not isinstance(obj, dict):
        raise errors.bad_request("the body of the request is not an object")
    v = sim.objects.create(
        rtype, obj, namespace=target.namespace, opts=WriteOptions(manager=_manager(request, query))
    )
    return await json_response(sim, request, object_bytes(rtype, target.version, v.item), status=201)


async def write_handler(
    request: web.Request, sim: Simulator, target: Route, query: dict[str, str], *, verb: str
) -> web.Response:
    rtype = target.rtype
    assert rtype is not None
    if not target.name:
        raise errors.method_not_allowed(verb, rtype.plural, group=rtype.group)
    ctype = request.headers.get("Content-Type", "application/json")
    if verb == "patch" and ctype.startswith("application/apply-patch") and not query.get("fieldManager"):
        raise errors.invalid(
            [errors.FieldError("Required", "fieldManager", "is required for apply patch")],
            kind="PatchOptions",
            group="meta.k8s.io",
        )
    opts = WriteOptions(manager=_manager(request, query), subresource=target.subresource)
    existed = sim.objects.get(rtype, target.namespace, target.name) is not None
    if verb == "update":
        obj = await _body(request, rtype)
        if not isinstance(obj, dict):
            raise errors.bad_request("the body of the request is not an object")
        v = sim.objects.update(rtype, obj, namespace=target.namespace, name=target.name, opts=opts)
    else:
        raw = await request.read()
        v = sim.objects.patch(rtype, raw, ctype, namespace=target.namespace, name=target.name, opts=opts)
    return await json_response(
        sim, request, object_bytes(rtype, target.version, v.item), status=200 if existed else 201
    )


async def scale_write_handler(
    request: web.Request, sim: Simulator, target: Route, query: dict[str, str], *, verb: str
) -> web.Response:
    """PUT or PATCH of `…/scale`: only `spec.replicas` reaches the object (see `scale`)."""
    rtype = target.rtype
    assert rtype is not None
    old = sim.objects.require(rtype, target.namespace, target.name)
    current = old.obj()
    if verb == "update":
        written = await _body(request, rtype)
    else:
        written = patched_scale(
            scale_of(current), await request.read(), request.headers.get("Content-Type", "")
        )
    replicas = replicas_of(written, rtype, name=target.name, current_rv=str(old.rev))
    opts = WriteOptions(manager=_manager(request, query), subresource="scale")
    v = sim.objects.update(
        rtype,
        with_replicas(current, replicas),
        namespace=target.namespace,
        name=target.name,
        opts=opts,
    )
    return await json_response(sim, request, orjson.dumps(scale_of(v.obj())))


async def delete_handler(request: web.Request, sim: Simulator, target: Route) -> web.Response:
    rtype = target.rtype
    assert rtype is not None
    options = await _body(request, rtype) if request.can_read_body else {}
    pre = options.get("preconditions") if isinstance(options, dict) else None
    v = sim.objects.delete(
        rtype, target.namespace, target.name, preconditions=pre if isinstance(pre, dict) else None
    )
    return await json_response(sim, request, object_bytes(rtype, target.version, v.item))


async def delete_collection_handler(
    request: web.Request, sim: Simulator, target: Route, query: dict[str, str]
) -> web.Response:
    rtype = target.rtype
    assert rtype is not None
    opts = parse_list_options(
        {k: v for k, v in query.items() if k in ("labelSelector", "fieldSelector")}, rtype, sim.config
    )
    result = list_objects(
        sim.storage.store(rtype), sim.storage, opts, namespace=target.namespace, cfg=sim.config
    )
    deleted = [sim.objects.delete(rtype, v.namespace, v.name) for v in result.items]
    body = list_body(rtype, target.version, deleted, {"resourceVersion": str(sim.storage.revision)})
    return await json_response(sim, request, body)
