"""The simulated API server's state and its Python control API.

`Simulator` owns the storage, the registry, the object writer, the open watches,
the faults and the request log. Tests that run the simulator in-process call its
methods directly; the admin HTTP API (`admin.py`) maps one-to-one onto them, so a
test driving a `panopticon sim` process reaches the same knobs.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, Literal

import orjson

from kubesim import errors
from kubesim.bulkload import bulk_result, freeze_if_large, gc_paused
from kubesim.churn import Churn, ChurnStats
from kubesim.config import SimConfig
from kubesim.crds import CrdController, builtin_crds
from kubesim.encoding import object_dict
from kubesim.faults import (
    ChunkSplit,
    DiscoveryOutage,
    Faults,
    RequestLog,
    Throttle,
    ThrottleForm,
    Unavailable,
)
from kubesim.objects import Objects, WriteOptions
from kubesim.resources import Registry, ResourceType
from kubesim.storage import ObjVersion, Storage
from kubesim.watch import CloseMode, Watch

PatchType = Literal["merge", "strategic", "json"]
_PATCH_CONTENT = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}
_LOADER = WriteOptions(manager="panopticon-sim", preserve=True, auto_namespace=True)
"""Loads keep the metadata they bring; what is missing (uid, creationTimestamp,
generation, managedFields, namespace) the simulator fills in."""


class Simulator:
    """One simulated cluster. Not thread-safe: use it from its event loop's thread."""

    def __init__(self, config: SimConfig | None = None, *, install_crds: bool = True) -> None:
        cfg = config or SimConfig()
        self.config = cfg
        # Every random stream of the simulator derives its own seed (simulator:, natives:,
        # examples:, mongodbs:, churn:), so streams never repeat each other's uids.
        self.rng = random.Random(f"simulator:{cfg.seed}")  # noqa: S311 - reproducible uids, not security
        start = cfg.start_revision if cfg.start_revision is not None else self.rng.randrange(10**6, 10**9)
        self.registry = Registry()
        self.storage = Storage(start_revision=start, ring_capacity=cfg.watch_cache_capacity)
        self.objects = Objects(
            self.storage,
            self.registry,
            rng=self.rng,
            clock=lambda: time.time() + self.config.clock_offset,
            default_namespace=cfg.default_namespace,
        )
        self.crds = CrdController(self.objects, close_watches=self._close_store_watches)
        self.faults = Faults(rng=random.Random(cfg.seed + 1))  # noqa: S311 - reproducible faults
        self.requests = RequestLog(cfg.request_log_size)
        self.watches: set[Watch] = set()
        self._churn: tuple[Churn, asyncio.Task[ChurnStats]] | None = None
        self.flowschema_uid = self.objects.new_uid()
        self.prioritylevel_uid = self.objects.new_uid()
        self._revision_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._revision_times: deque[tuple[float, int]] = deque()
        self.storage.on_commit.append(self._on_commit)
        for ns in cfg.initial_namespaces:
            self.objects.ensure_namespace(ns)
        if install_crds:
            for crd in builtin_crds():
                self.create(crd)
        if cfg.startup_unavailable_seconds > 0:
            self.faults.unavailable = Unavailable(until=time.monotonic() + cfg.startup_unavailable_seconds)

    # --- configuration and state ---

    def reconfigure(self, **changes: Any) -> SimConfig:
        """Swap in a config with `changes` (any `SimConfig` field) for later requests."""
        self.config = self.config.replace(**changes)
        self.storage.ring_capacity = self.config.watch_cache_capacity
        for w in self.watches:
            w.wake()  # open watches pick up new bookmark and lag settings
        return self.config

    def version_body(self) -> bytes:
        """`/version`, as kube-apiserver `k8s_version` reports it."""
        major, minor = self.config.k8s_version.split(".")
        return orjson.dumps(
            {
                "major": major,
                "minor": minor,
                "emulationMajor": major,
                "emulationMinor": minor,
                "minCompatibilityMajor": major,
                "minCompatibilityMinor": str(int(minor) - 1),
                "gitVersion": f"v{major}.{minor}.0",
                "gitCommit": "0" * 40,
                "gitTreeState": "clean",
                "buildDate": "2026-04-22T00:00:00Z",
                "goVersion": "go1.26.0",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        )

    @property
    def revision(self) -> int:
        return self.storage.revision

    def state(self) -> dict[str, Any]:
        counts = {
            (f"{st.rtype.plural}.{st.rtype.group}" if st.rtype.group else st.rtype.plural): len(st.current)
            for st in self.storage.stores.values()
        }
        return {
            "revision": self.storage.revision,
            "compactedRevision": self.storage.compacted,
            "objects": counts,
            "watches": len(self.watches),
        }

    # --- resolving types ---

    def resolve(self, api_version: str, kind: str) -> ResourceType:
        rtype = self.registry.for_kind(api_version, kind)
        if rtype is None:
            raise errors.bad_request(f"no kind {kind!r} is registered for version {api_version!r}")
        return rtype

    def _type_of(self, obj: dict[str, Any]) -> ResourceType:
        return self.resolve(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))

    def _out(self, rtype: ResourceType, v: ObjVersion) -> dict[str, Any]:
        return object_dict(rtype, rtype.storage_version, v)

    # --- objects (loader semantics: given metadata is kept, namespaces are made) ---
    # Public methods return API dicts; the `_…_v` ones return the stored version
    # (bulk loads skip decoding what they just wrote).

    def create(self, obj: dict[str, Any], *, namespace: str = "") -> dict[str, Any]:
        return self._out(*self._create_v(obj, namespace=namespace))

    def _create_v(self, obj: dict[str, Any], *, namespace: str = "") -> tuple[ResourceType, ObjVersion]:
        rtype = self._type_of(obj)
        return rtype, self.objects.create(rtype, obj, namespace=namespace, opts=_LOADER)

    def update(self, obj: dict[str, Any], *, status: bool = False) -> dict[str, Any]:
        """Replace an object (its status too, unless the type has a status subresource
        and `status` is False; with `status` True only the status is written)."""
        return self._out(*self._update_v(obj, status=status))

    def _update_v(self, obj: dict[str, Any], *, status: bool = False) -> tuple[ResourceType, ObjVersion]:
        rtype = self._type_of(obj)
        meta = obj.get("metadata", {})
        opts = WriteOptions(preserve=not status, subresource="status" if status else "")
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        return rtype, self.objects.update(rtype, obj, namespace=ns, name=name, opts=opts)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create `obj`, or replace the existing object of that name."""
        return self._out(*self._apply_v(obj))

    def _apply_v(self, obj: dict[str, Any]) -> tuple[ResourceType, ObjVersion]:
        rtype = self._type_of(obj)
        meta = obj.get("metadata", {})
        ns = meta.get("namespace") or (self.config.default_namespace if rtype.namespaced else "")
        if self.objects.get(rtype, ns, meta.get("name", "")) is None:
            return rtype, self.objects.create(rtype, obj, namespace="", opts=_LOADER)
        meta = obj["metadata"]
        meta["namespace"] = ns
        meta.pop("resourceVersion", None)
        return self._update_v(obj)

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Any,
        *,
        namespace: str = "",
        patch_type: PatchType = "merge",
        status: bool = False,
    ) -> dict[str, Any]:
        rtype = self.resolve(api_version, kind)
        opts = WriteOptions(preserve=not status, subresource="status" if status else "")
        content = _PATCH_CONTENT[patch_type]
        v = self.objects.patch_doc(rtype, patch, content, namespace=namespace, name=name, opts=opts)
        return self._out(rtype, v)

    def delete(self, api_version: str, kind: str, name: str, *, namespace: str = "") -> dict[str, Any]:
        rtype = self.resolve(api_version, kind)
        return self._out(rtype, self.objects.delete(rtype, namespace, name))

    def get(self, api_version: str, kind: str, name: str, *, namespace: str = "") -> dict[str, Any] | None:
        rtype = self.resolve(api_version, kind)
        v = self.objects.get(rtype, namespace, name)
        return None if v is None else self._out(rtype, v)

    def list_objects(self, api_version: str, kind: str, *, namespace: str = "") -> list[dict[str, Any]]:
        rtype = self.resolve(api_version, kind)
        st = self.storage.stores.get(rtype.key)
        if st is None:
            return []
        return [self._out(rtype, v) for v in st.iter_current() if not namespace or v.namespace == namespace]

    def load(self, objs: Iterable[dict[str, Any]]) -> int:
        """Create or replace each object (loader semantics); returns how many."""
        n = 0
        with gc_paused():
            for obj in objs:
                self._apply_v(obj)
                n += 1
        freeze_if_large(n)
        return n

    def bulk(self, ops: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run mutations in order; each result is `{code, …}` and failures do not stop the rest.

        An op is `{"op": create|update|apply|status|patch|delete, …}` with `object`
        for create/update/apply/status, and `apiVersion`, `kind`, `name`,
        `namespace` (plus `patch` and `patchType`) for patch and delete.
        """
        out: list[dict[str, Any]] = []
        with gc_paused():
            for op in ops:
                try:
                    out.append(bulk_result(self._bulk_one(op)))
                except errors.ApiError as e:
                    out.append({"code": e.code, "message": str(e)})
                except (KeyError, TypeError, ValueError) as e:
                    out.append({"code": 400, "message": f"malformed operation: {e!r}"})
        return out

    def _bulk_one(self, op: dict[str, Any]) -> ObjVersion:
        kind = op.get("op", "apply")
        if kind in ("create", "update", "apply", "status"):
            obj = op["object"]
            if kind == "create":
                return self._create_v(obj)[1]
            if kind == "apply":
                return self._apply_v(obj)[1]
            return self._update_v(obj, status=kind == "status")[1]
        rtype = self.resolve(op["apiVersion"], op["kind"])
        ns, name = op.get("namespace", ""), op["name"]
        if kind == "patch":
            content = _PATCH_CONTENT[op.get("patchType", "merge")]
            opts = WriteOptions(preserve=True)
            return self.objects.patch_doc(rtype, op["patch"], content, namespace=ns, name=name, opts=opts)
        if kind == "delete":
            return self.objects.delete(rtype, ns, name)
        raise ValueError(f"unknown op {kind!r}")

    # --- history ---

    def compact(self, revision: int | None = None) -> int:
        """Compact history to `revision` (default: now); returns the compacted revision."""
        return self.storage.compact(self.storage.revision if revision is None else revision)

    def compaction_tick(self, now: float) -> None:
        """Record the revision at `now` and compact what is older than the window."""
        window = self.config.compaction_window
        self._revision_times.append((now, self.storage.revision))
        if window is None:
            return
        target = None
        while self._revision_times and self._revision_times[0][0] <= now - window:
            target = self._revision_times.popleft()[1]
        if target is not None:
            self.compact(target)

    async def wait_for_revision(self, rev: int, within: float) -> bool:
        """Wait until the storage reaches `rev`; False on timeout."""
        if self.storage.revision >= rev:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (rev, fut)
        self._revision_waiters.append(entry)
        try:
            async with asyncio.timeout(within):
                await fut
            return True
        except TimeoutError:
            return False
        finally:
            if entry in self._revision_waiters:
                self._revision_waiters.remove(entry)

    def _on_commit(self, rev: int) -> None:
        if not self._revision_waiters:
            return
        for target, fut in list(self._revision_waiters):
            if target <= rev and not fut.done():
                fut.set_result(None)

    # --- open watches ---

    def open_watches(self, resource: str | None = None) -> list[Watch]:
        """Open watches, optionally only of `resource` (`pods`, `deployments.apps`)."""
        return [w for w in self.watches if _is(w.rtype, resource)]

    def inject_watch_error(self, code: int = 410, *, resource: str | None = None, message: str = "") -> int:
        """Send an in-band ERROR (410, 500, 504 or any code) to open watches, which then end."""
        n = 0
        for w in self.open_watches(resource):
            w.inject(self._injected_error(code, w, message))
            n += 1
        return n

    def _injected_error(self, code: int, w: Watch, message: str) -> errors.ApiError:
        current = self.storage.revision
        if code == 410:
            rev = w.store.event_at(w.cursor - 1).rev if w.cursor > w.store.events_base else w.min_rev
            return errors.expired(
                message or f"too old resource version: {rev} ({current})", reason=self.config.expired_reason
            )
        if code == 500:
            return errors.internal(message or "injected fault")
        if code == 504:
            return errors.too_large_resource_version(current + 1000, current)
        return errors.ApiError(code, errors.status(code, "", message or f"injected error {code}"))

    def close_watches(self, mode: CloseMode = "eof", *, resource: str | None = None) -> int:
        """End open watches: clean end of stream (`eof`) or connection reset (`abort`)."""
        targets = self.open_watches(resource)
        for w in targets:
            w.close(mode)
        return len(targets)

    def stall_watches(self, seconds: float | None = None, *, resource: str | None = None) -> int:
        """Stop sending anything on open watches for `seconds` (None: until unstalled)."""
        now = asyncio.get_running_loop().time()
        targets = self.open_watches(resource)
        for w in targets:
            w.stall(seconds, now=now)
        return len(targets)

    def unstall_watches(self, *, resource: str | None = None) -> int:
        targets = self.open_watches(resource)
        for w in targets:
            w.unstall()
        return len(targets)

    def _close_store_watches(self, key: tuple[str, str]) -> None:
        for w in list(self.watches):
            if w.rtype.key == key:
                w.close("eof")

    # --- request faults ---

    def throttle(
        self,
        count: int | None = 1,
        *,
        form: ThrottleForm = "text",
        retry_after: int = 1,
        path_prefix: str = "",
        verbs: tuple[str, ...] = (),
    ) -> None:
        """Answer the next `count` matching requests 429 (APF text form or JSON Status)."""
        self.faults.throttles.append(Throttle(count, form, retry_after, path_prefix, tuple(verbs)))

    def make_unavailable(self, *, count: int | None = None, seconds: float | None = None) -> None:
        """Answer API requests 503 for the next `count` requests or `seconds`."""
        until = time.monotonic() + seconds if seconds is not None else 0.0
        if count is None and seconds is None:
            count = 1
        self.faults.unavailable = Unavailable(count=count, until=until)

    def fail_discovery(self, group_version: str, *, seconds: float) -> None:
        """Answer `group_version`'s discovery document (`kubedb.com/v1`, `v1`) 503 for `seconds`."""
        path = f"/apis/{group_version}" if "/" in group_version else f"/api/{group_version}"
        self.faults.discovery_outages.append(DiscoveryOutage(path, time.monotonic() + seconds))

    def split_chunks(self, *, max_piece: int = 64, utf8: bool = True, delay: float = 0.001) -> None:
        """Cut watch writes at random byte offsets (inside UTF-8 sequences when possible)."""
        self.faults.split = ChunkSplit(max_piece, utf8, delay)

    # --- churn ---

    def start_churn(
        self,
        rate: float,
        *,
        seed: int = 0,
        resources: tuple[str, ...] = (),
        mix: tuple[float, float, float] = (0.8, 0.1, 0.1),
        duration: float | None = None,
    ) -> Churn:
        """Mutate objects at `rate` events/s in a background task (replacing any churn)."""
        self.stop_churn()
        churn = Churn(self, rate=rate, seed=seed, resources=resources, mix=mix)
        self._churn = (churn, asyncio.get_running_loop().create_task(churn.run(duration), name="sim-churn"))
        return churn

    def stop_churn(self) -> ChurnStats | None:
        if self._churn is None:
            return None
        churn, task = self._churn
        task.cancel()
        self._churn = None
        return churn.stats

    def churn_stats(self) -> dict[str, Any] | None:
        if self._churn is None:
            return None
        churn, task = self._churn
        st = churn.stats
        return {
            "rate": churn.rate,
            "running": not task.done(),
            "updates": st.updates,
            "deletes": st.deletes,
            "creates": st.creates,
            "skipped": st.skipped,
        }

    def clear_faults(self) -> None:
        self.faults.clear()
        self.unstall_watches()


def _is(rtype: ResourceType, resource: str | None) -> bool:
    if resource is None:
        return True
    return resource in (rtype.plural, f"{rtype.plural}.{rtype.group}", rtype.kind)
