"""The admin HTTP API: every simulator knob for tests that run `panopticon sim` as a
separate process. Routes map one-to-one onto `Simulator` methods; all need the
admin bearer token; none are logged in the request log or subject to faults.

    GET    {prefix}/state                  revision, compacted revision, object counts, watches
    GET    {prefix}/config                 the current SimConfig
    PATCH  {prefix}/config                 {field: value, …} → reconfigure
    POST   {prefix}/compact                {"revision": N}? → {"compactedRevision": N}
    GET    {prefix}/watches                open watches
    POST   {prefix}/watches/error          {"code": 410|500|504|…, "resource"?, "message"?}
    POST   {prefix}/watches/close          {"mode": "eof"|"abort", "resource"?}
    POST   {prefix}/watches/stall          {"seconds": S|null, "resource"?}
    POST   {prefix}/watches/unstall        {"resource"?}
    GET    {prefix}/faults                 pending request faults
    DELETE {prefix}/faults                 clear every fault (and unstall watches)
    POST   {prefix}/faults/throttle        {"count": N|null, "form": "text"|"json", "retryAfter": S,
                                            "pathPrefix"?, "verbs"?}
    POST   {prefix}/faults/unavailable     {"count": N} or {"seconds": S}
    POST   {prefix}/faults/discovery       {"groupVersion": "kubedb.com/v1", "seconds": S}: its discovery
                                            document answers 503 for S seconds
    POST   {prefix}/faults/split-chunks    {"maxPiece": N, "utf8": bool, "delay": S}; DELETE to stop
    POST   {prefix}/objects                {"ops": [...]} (see Simulator.bulk) → {"revision", "results"}
    GET    {prefix}/objects                ?apiVersion=&kind=&namespace= → {"items": [...]}
    POST   {prefix}/workload               {"examples": scale?, "configs": bool?, "native": {WorkloadSpec}?,
                                            "mongodbs": {"count", "seed", "namespaces"}?} → counts
    POST   {prefix}/churn                  {"rate", "seed"?, "resources"?, "mix"?, "duration"?}
    GET    {prefix}/churn                  churn counters;  DELETE stops it
    GET    {prefix}/requests               ?since=SEQ → {"lastSeq", "items": [...]};  DELETE clears
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from kubesim import errors
from kubesim.auth import is_admin
from kubesim.config import AccessRule, SimConfig
from kubesim.natives import WorkloadSpec, native_objects
from kubesim.simulator import Simulator
from kubesim.workload import example_configs, example_objects, mongodb_objects

Handler = Callable[[web.Request, Simulator, dict[str, Any]], Awaitable[Any]]


def config_to_json(cfg: SimConfig) -> dict[str, Any]:
    out = dataclasses.asdict(cfg)
    out["tokens"] = [list(t) for t in cfg.tokens]
    return out


def config_from_json(changes: dict[str, Any]) -> dict[str, Any]:
    """JSON values → SimConfig field values (lists back to tuples, rules to AccessRule)."""
    names = {f.name for f in dataclasses.fields(SimConfig)}
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in names:
            raise errors.bad_request(f"unknown config field {key!r}")
        out[key] = _config_value(key, value)
    return out


def _config_value(key: str, value: Any) -> Any:
    if key == "rules":
        return tuple(_rule(r) for r in value)
    if key == "tokens":
        return tuple((str(t), str(u)) for t, u in value)
    return tuple(value) if isinstance(value, list) else value


def _rule(r: dict[str, Any]) -> AccessRule:
    def names(field: str) -> tuple[str, ...]:
        return tuple(r.get(field) or ("*",))

    return AccessRule(
        user=str(r["user"]),
        verbs=names("verbs"),
        groups=names("groups"),
        resources=names("resources"),
        namespaces=names("namespaces"),
    )


async def _state(request: web.Request, sim: Simulator, body: dict[str, Any]) -> Any:
    return sim.state()


async def _config(request: web.Request, sim: Simulator, body: dict[str, Any]) -> Any:
    if request.method in ("PATCH", "POST", "PUT"):
        try:
            sim.reconfigure(**config_from_json(body))
        except TypeError as e:
            raise errors.bad_request(str(e)) from None
    return config_to_json(sim.config)


async def _compact(request: web.Request, sim: Simulator, body: dict[str, Any]) -> Any:
    return {"compactedRevision": sim.compact(body.get("revision")), "revision": sim.revision}


async def _watches(request: web.Request, sim: Simulator, body: dict[str, Any]) -> Any:
    return {"items": [w.describe() for w in sorted(sim.watches, key=lambda w: w.id)]}


async def _watch_error(request: web.Request, sim: Simulator, body: dict[str, Any]) -> Any:
    n = sim.inject_watch_error(
        int(body.get("code", 410)), resource=body.get("resource"), message=body.get("message", "")
    )
    return {"affected": n}


async def _watch_close(request: web.Request, sim: Simulator, body: dict[str, Any]) -> Any:
    mode = body.get("mode", "eof")
    if mode not in ("eof", "abort"):
        raise errors.bad_request("mode must be eof or abort")
    return {"affected": sim.close_watches(mode, resource=body.get("resource"))}


async def _watch_stall(request: web.Request, sim: Simulator, body: dict[str, Any]) -> Any:
    return {"affected": sim.stall_watches(body.get("seconds"), resource=body.get("resource"))}


async def _watch_unstall(request: web.Request, sim: Simulator, body: dict[str, Any]) -> Any:
    return {"affected": sim.unstall_watches(resource=body.get("resource"))}


async def _faults(request: web.Request, sim: Simulator, body: dict[str, Any]) -> Any:
    if request.method == "DELETE":
        sim.clear_faults()
    return sim.faults.describe()


async def _throttle(request: web.Request, sim: Simulator, body: dict[str, Any]) -> Any:
    sim.throttle(
        body.get("count", 1),
        form=body.get("form", "text"),
        retry_after=int(body.get("retryAfter", 1)),
        path_prefix=body.get("pathPrefix", ""),
        verbs=tuple(body.get("verbs", ())),
    )
    return sim.faults.describe()


async def _unavailable(request: web.Request, sim: Simulator, body: dict[str, Any]) -> Any:
    sim.make_unavailable(count=body.get("count"), seconds=body.get("seconds"))
    return sim.faults.describe()


async def _discovery_outage(request: web.Request, sim: Simulator, body: dict[str, Any]) -> Any:
    group_version, seconds = body.get("groupVersion"), body.get("seconds")
    if not isinstance(group_version, str) or not group_version or not isinstance(seconds, (int, float)):
        raise errors.bad_request('give {"groupVersion": "group/version", "seconds": S}')
    sim.fail_discovery(group_version, seconds=float(seconds))
    return sim.faults.describe()


async def _split(request: web.Request, sim: Simulator, body: dict[str, Any]) -> Any:
    if request.method == "DELETE":
        sim.faults.split = None
    else:
        sim.split_chunks(
            max_piece=int(body.get("maxPiece", 64)),
            utf8=bool(body.get("utf8", True)),
            delay=float(body.get("delay", 0.001)),
        )
    return sim.faults.describe()


async def _objects(request: web.Request, sim: Simulator, body: dict[str, Any]) -> Any:
    if request.method == "GET":
        q = request.query
        return {
            "items": sim.list_objects(
                q.get("apiVersion", "v1"), q.get("kind", ""), namespace=q.get("namespace", "")
            )
        }
    ops = body.get("ops", []) if isinstance(body, dict) else body
    results = sim.bulk(ops)
    return {"revision": sim.revision, "results": results}


async def _workload(request: web.Request, sim: Simulator, body: dict[str, Any]) -> Any:
    counts: dict[str, int] = {}
    if body.get("examples"):
        counts["examples"] = sim.load(example_objects(int(body["examples"]), seed=sim.config.seed))
    if body.get("configs"):
        counts["configs"] = sim.load(example_configs())
    if body.get("native"):
        spec = WorkloadSpec(**body["native"])
        counts["native"] = sim.load(native_objects(spec))
    if body.get("mongodbs"):
        m = body["mongodbs"]
        namespaces = tuple(m.get("namespaces") or (sim.config.default_namespace,))
        counts["mongodbs"] = sim.load(
            mongodb_objects(int(m["count"]), seed=int(m.get("seed", 0)), namespaces=namespaces)
        )
    return {"revision": sim.revision, "loaded": counts}


async def _churn(request: web.Request, sim: Simulator, body: dict[str, Any]) -> Any:
    if request.method == "POST":
        mix = body.get("mix") or {}
        sim.start_churn(
            float(body["rate"]),
            seed=int(body.get("seed", 0)),
            resources=tuple(body.get("resources", ())),
            mix=(float(mix.get("update", 0.8)), float(mix.get("delete", 0.1)), float(mix.get("create", 0.1))),
            duration=body.get("duration"),
        )
    elif request.method == "DELETE":
        sim.stop_churn()
    return {"churn": sim.churn_stats()}


async def _requests(request: web.Request, sim: Simulator, body: dict[str, Any]) -> Any:
    if request.method == "DELETE":
        sim.requests.clear()
    since = int(request.query.get("since", "0"))
    return {"lastSeq": sim.requests.last_seq, "items": [r.as_dict() for r in sim.requests.since(since)]}


ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/state", _state),
    ("*", "/config", _config),
    ("POST", "/compact", _compact),
    ("GET", "/watches", _watches),
    ("POST", "/watches/error", _watch_error),
    ("POST", "/watches/close", _watch_close),
    ("POST", "/watches/stall", _watch_stall),
    ("POST", "/watches/unstall", _watch_unstall),
    ("*", "/faults", _faults),
    ("POST", "/faults/throttle", _throttle),
    ("POST", "/faults/unavailable", _unavailable),
    ("POST", "/faults/discovery", _discovery_outage),
    ("*", "/faults/split-chunks", _split),
    ("*", "/objects", _objects),
    ("POST", "/workload", _workload),
    ("*", "/churn", _churn),
    ("*", "/requests", _requests),
)


def _wrap(sim: Simulator, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def serve(request: web.Request) -> web.Response:
        if not is_admin(sim.config, request.headers.get("Authorization")):
            err = errors.unauthorized()
            return web.Response(status=401, body=err.body(), content_type="application/json")
        try:
            raw = await request.read()
            body = orjson.loads(raw) if raw else {}
            result = await handler(request, sim, body)
        except errors.ApiError as err:
            return web.Response(status=err.code, body=err.body(), content_type=err.content_type.split(";")[0])
        except orjson.JSONDecodeError as e:
            return web.Response(
                status=400,
                body=errors.bad_request(f"invalid JSON: {e}").body(),
                content_type="application/json",
            )
        return web.Response(body=orjson.dumps(result), content_type="application/json")

    return serve


def add_admin_routes(app: web.Application, sim: Simulator) -> None:
    prefix = sim.config.admin_prefix.rstrip("/")
    for method, path, handler in ROUTES:
        app.router.add_route(method, prefix + path, _wrap(sim, handler))
