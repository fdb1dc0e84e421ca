"""The LIST half of the reflector: a paged LIST diffed against the view, and the probe
for server-side sharding.

A mixin of `panopticon.kube.reflector.Reflector` (split out to keep each module
readable): it runs on the reflector's own state, declared below for the type checker.
The LIST falls back from `resourceVersion=<last>` to a consistent read (`""`) when the
server no longer has that version, as client-go's `relistResourceVersion` does.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

from panopticon.kube.client import KubeClient
from panopticon.kube.discovery import ResourceRef
from panopticon.kube.errors import ApiStatusError, ExpiredError, KubeError, is_too_large_resource_version
from panopticon.kube.events import Event
from panopticon.kube.failures import listed_identity
from panopticon.kube.listing import list_pages
from panopticon.kube.settings import ReflectorSettings
from panopticon.kube.stats import ReflectorStats
from panopticon.kube.view import ObjectView, Seen
from panopticon.kube.watching import Interrupted, Waker

log = logging.getLogger("panopticon.kube.reflector")


class Listing:
    """LIST and the shard-support probe, on the reflector's state."""

    client: KubeClient
    resource: ResourceRef
    settings: ReflectorSettings
    name: str
    path: str
    stats: ReflectorStats
    view: ObjectView
    server_sharding: bool | None
    _owns: Callable[[str], bool] | None
    _rv_unavailable: bool
    _waker: Waker

    @property
    def resource_version(self) -> str:
        raise NotImplementedError

    def _params(self) -> dict[str, str]:
        raise NotImplementedError

    def _count(self, e: BaseException) -> None:
        raise NotImplementedError

    def _finish_sync(self, seen: Seen, rv: str) -> list[Event]:
        raise NotImplementedError

    async def _list(self) -> AsyncGenerator[Event, None]:
        rv = "" if self._rv_unavailable else (self.resource_version or "0")
        try:
            async for ev in self._list_at(rv):
                yield ev
        except ApiStatusError as e:
            if rv == "" or not (isinstance(e, ExpiredError) or is_too_large_resource_version(e)):
                raise
            self._count(e)
            self._rv_unavailable = True
            async for ev in self._list_at(""):
                yield ev

    async def _list_at(self, rv: str) -> AsyncGenerator[Event, None]:
        params = self._params()
        if rv:
            params["resourceVersion"] = rv
            if rv != "0":
                params["resourceVersionMatch"] = "NotOlderThan"
        seen = Seen()
        list_rv = ""
        owns, view, waker = self._owns, self.view, self._waker
        pages = list_pages(self.client, self.path, params, page_size=self.settings.page_size)
        async with aclosing(pages) as stream:
            async for page in stream:
                if waker.woken:
                    raise Interrupted
                if page.restarted:
                    seen = Seen()
                elif not list_rv and "shardSelector" in params:
                    self.server_sharding = page.shard_info is not None
                list_rv = page.resource_version
                api_version, kind = self.resource.api_version, self.resource.kind
                for item in page.items:
                    uid, item_rv = listed_identity(item)
                    if owns is not None and not owns(uid):
                        continue
                    if "kind" not in item:  # built-in list items carry no type (B.4); events do
                        item["apiVersion"], item["kind"] = api_version, kind
                    ev = view.listed(item, uid, item_rv, seen)
                    if ev is not None:
                        yield ev
                        if waker.woken:
                            raise Interrupted
        self.stats.list_syncs += 1
        for ev in self._finish_sync(seen, list_rv):
            yield ev

    async def _probe_server_sharding(self) -> None:
        """A watch-list carries no `shardInfo`: ask a one-item LIST once."""
        if self.server_sharding is not None or self._owns is None:
            return
        try:
            page = await self.client.list_page(self.path, {**self._params(), "limit": "1"})
        except KubeError as e:
            log.info("reflector %s: shard support probe failed: %s", self.name, e)
            return
        meta = page.get("metadata")
        self.server_sharding = isinstance(meta, dict) and isinstance(meta.get("shardInfo"), dict)
