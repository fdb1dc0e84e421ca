"""Discovery: `apiVersion` + `kind` to the resource to list and watch (legacy discovery:
k8s.io/apiserver `pkg/endpoints/discovery/`, client-go `discovery/discovery_client.go`).

`Discovery` reads the legacy documents (`/api`, `/api/v1`, `/apis`, then
`/apis/{group}/{version}` for every served version, concurrently) into a map of
`ResourceRef`s. Resolution is served from that cache. A miss refreshes at most
once per `miss_refresh_interval` seconds, so a config naming a CRD installed
after start-up resolves without a restart while a typo cannot hammer the server;
the shard also calls `refresh()` when its CRD reflector sees a change. A group
version that fails to load (an aggregated API server down) keeps its previous
entries, as client-go's discovery tolerates `ErrGroupDiscoveryFailed`; a kind that
cannot be found because its group version (or the group list itself) failed raises
`DiscoveryFailedError`, not `UnknownKindError`: it may exist, and its caller must
not act as if it did not (delete its series).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from panopticon.kube.client import KubeClient
from panopticon.kube.errors import DiscoveryFailedError, KubeError, UnknownKindError

GroupVersion = tuple[str, str]


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """One listable resource of one group version."""

    group: str
    """"" for the core group."""
    version: str
    resource: str
    """The plural resource name in paths (`pods`, `mongodbs`)."""
    kind: str
    namespaced: bool
    verbs: tuple[str, ...] = ("list", "watch")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def path(self) -> str:
        """The collection across all namespaces: what a cluster-wide reflector lists."""
        return self.list_path()

    def list_path(self, namespace: str = "") -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace and self.namespaced:
            return f"{root}/namespaces/{namespace}/{self.resource}"
        return f"{root}/{self.resource}"

    def object_path(self, name: str, namespace: str = "") -> str:
        return f"{self.list_path(namespace)}/{name}"

    def __str__(self) -> str:
        return (
            f"{self.resource}.{self.group}/{self.version}"
            if self.group
            else f"{self.resource}/{self.version}"
        )


def split_api_version(api_version: str) -> GroupVersion:
    group, _, version = api_version.rpartition("/")
    return group, version


class Discovery:
    """A cache of the server's resources, refreshed on demand and on misses."""

    def __init__(
        self,
        client: KubeClient,
        *,
        miss_refresh_interval: float = 30.0,
        concurrency: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.miss_refresh_interval = miss_refresh_interval
        """Seconds: at most one refresh per this interval is triggered by misses."""
        self.concurrency = concurrency
        self._clock = clock
        self._by_gv: dict[GroupVersion, dict[str, ResourceRef]] = {}
        self._refreshed_at: float | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0
        self.failed_group_versions: list[GroupVersion] = []
        self.listing_failed = False
        """The last refresh could not read the group list (`/api` or `/apis`)."""

    async def resolve(self, api_version: str, kind: str) -> ResourceRef:
        """The resource serving `kind` at `api_version`; raises `UnknownKindError` when
        the server does not serve it, `DiscoveryFailedError` when discovery failed where
        it would be described (and whatever the refresh raised)."""
        group, version = split_api_version(api_version)
        found = self.lookup(group, version, kind)
        if found is not None:
            return found
        async with self._lock:
            last = self._refreshed_at
            if last is None or self._clock() - last >= self.miss_refresh_interval:
                await self._refresh_locked()
        found = self.lookup(group, version, kind)
        if found is not None:
            return found
        if self.listing_failed:
            raise DiscoveryFailedError(f"the API server's group list failed to load; {kind!r} unknown")
        if (group, version) in self.failed_group_versions:
            raise DiscoveryFailedError(f"the discovery document of {api_version!r} failed to load")
        raise UnknownKindError(f"the server has no resource of kind {kind!r} in {api_version!r}")

    def lookup(self, group: str, version: str, kind: str) -> ResourceRef | None:
        """A cached resolution, without any request."""
        return self._by_gv.get((group, version), {}).get(kind)

    def resources(self) -> list[ResourceRef]:
        return [ref for kinds in self._by_gv.values() for ref in kinds.values()]

    async def refresh(self) -> None:
        """Re-read every discovery document now (e.g. after a CRD changed)."""
        async with self._lock:
            await self._refresh_locked()

    async def _refresh_locked(self) -> None:
        try:
            gvs = await self._group_versions()
        except KubeError:
            # Counted as a refresh: a miss retries after `miss_refresh_interval`, not at
            # once for every kind resolved in a row.
            self._refreshed_at = self._clock()
            self.listing_failed = True
            raise
        sem = asyncio.Semaphore(self.concurrency)

        async def load(gv: GroupVersion) -> tuple[GroupVersion, dict[str, ResourceRef] | None]:
            async with sem:
                try:
                    doc = await self.client.get(_gv_path(gv))
                except KubeError:
                    return gv, None
            return gv, _resources(gv, doc)

        results = await asyncio.gather(*(load(gv) for gv in gvs))
        fresh: dict[GroupVersion, dict[str, ResourceRef]] = {}
        failed: list[GroupVersion] = []
        for gv, kinds in results:
            if kinds is None:
                failed.append(gv)
                if gv in self._by_gv:
                    fresh[gv] = self._by_gv[gv]
            else:
                fresh[gv] = kinds
        self._by_gv = fresh
        self.failed_group_versions = failed
        self.listing_failed = False
        self._refreshed_at = self._clock()
        self.refreshes += 1

    async def _group_versions(self) -> list[GroupVersion]:
        core = await self.client.get("/api")
        out: list[GroupVersion] = [("", str(v)) for v in core.get("versions", []) if isinstance(v, str)]
        groups = await self.client.get("/apis")
        for group in groups.get("groups", []):
            if not isinstance(group, dict):
                continue
            name = str(group.get("name", ""))
            versions = group.get("versions", [])
            out.extend((name, v["version"]) for v in versions if isinstance(v, dict) and v.get("version"))
        return out


def _gv_path(gv: GroupVersion) -> str:
    group, version = gv
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def _resources(gv: GroupVersion, doc: dict[str, Any]) -> dict[str, ResourceRef]:
    """Kind → resource of an `APIResourceList`, subresources (`pods/status`) left out."""
    out: dict[str, ResourceRef] = {}
    for r in doc.get("resources", []):
        if not isinstance(r, dict):
            continue
        name, kind = r.get("name"), r.get("kind")
        if not isinstance(name, str) or not isinstance(kind, str) or "/" in name:
            continue
        verbs = tuple(v for v in r.get("verbs", []) if isinstance(v, str))
        ref = ResourceRef(gv[0], gv[1], name, kind, bool(r.get("namespaced")), verbs)
        out.setdefault(kind, ref)
    return out
