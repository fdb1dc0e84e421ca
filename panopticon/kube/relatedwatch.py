"""Watching the related objects joined labels read, and telling dependents to render again.

A shard and the embedded library render each target object when it changes; a
joined label (panopticon.render.joins) also changes when its related object does (a
Namespace relabelled, a Node's zone, an owner's labels), and no event of the target
says so. `RelatedWatch` watches every related kind the programs join (Namespaces and
Nodes in full, on every shard: whatever shard owns a Pod must know its Namespace and
Node; owner kinds and the kinds their chains pass through, in full too), feeds a
`RelatedIndex`, and hands each change that alters a joined value to `rerender` as a
`Dirty` scope (a namespace, a node), batched every `BATCH` seconds.

The host renders the dependents of a scope again from a one-shot LIST of that scope
(the shard keeps no objects: 300 bytes per object is its budget). When a related
kind (re)syncs, which happens at start, after a config change and when a chain met
a kind not watched yet, every joined target is rendered again (`Dirty("all", "")`):
objects rendered before it synced had their joined labels left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Protocol

from panopticon.config.joinspec import JoinSource
from panopticon.errors import PanopticonError
from panopticon.kube.discovery import Discovery, ResourceRef
from panopticon.kube.events import Event
from panopticon.render.joins import Record
from panopticon.render.program import Program
from panopticon.render.related import Dirty, Needs, RelatedIndex

log = logging.getLogger("panopticon.render.joins")

BATCH = 0.2
"""Seconds related changes are gathered before their dependents are rendered again."""
POLL = 1.0
"""Seconds between looks for chain kinds met but not watched yet."""
RETRY = 10.0
"""Seconds before a related kind that could not be resolved is looked up again."""
ALL = Dirty("all", "")


class EventSource(Protocol):
    def events(self) -> AsyncIterator[Event]: ...


class RelatedWatch:
    """The related-object watches of one process, and the index they feed."""

    def __init__(
        self,
        discovery: Discovery,
        make_source: Callable[[ResourceRef], EventSource],
        rerender: Callable[[set[Dirty]], Awaitable[None]],
    ) -> None:
        self.discovery = discovery
        self.make_source = make_source
        self.rerender = rerender
        self.index = RelatedIndex(Needs())
        self._signature = Needs().signature()
        self._watches: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._pending: set[Dirty] = set()
        self._wake = asyncio.Event()
        self.synced: set[tuple[str, str]] = set()

    def records(self, sources: Sequence[JoinSource], obj: object) -> list[Record | None]:
        """The `Related` lookup renders use (the current index)."""
        return self.index.records(sources, obj)

    @property
    def active(self) -> bool:
        return bool(self.index.needs.paths)

    def configure(self, programs: Iterable[Program]) -> None:
        """The programs changed: when what they join changed, watch anew (a fresh index)."""
        needs = Needs.of(program.joins for program in programs)
        if needs.signature() == self._signature:
            return
        self._signature = needs.signature()
        self.stop()
        self.index = RelatedIndex(needs)
        for kind, api_version in needs.versions.items():
            self._start(api_version, kind[1])

    def stop(self) -> None:
        for task in self._watches.values():
            task.cancel()
        self._watches.clear()
        self.synced.clear()

    def _start(self, api_version: str, kind: str) -> None:
        key = (api_version, kind)
        if key not in self._watches:
            self.index.watched.add((api_version.rpartition("/")[0], kind))
            self._watches[key] = asyncio.create_task(self._watch(api_version, kind), name=f"related {key}")

    async def run(self) -> None:
        """Render dependents of related changes, in batches; watch chain kinds met."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL):
                    await self._wake.wait()
            self._wake.clear()
            for api_version, kind in sorted(self.index.unwatched):
                log.info("owner chains pass through %s/%s: watching it", api_version, kind)
                self._start(api_version, kind)
            self.index.unwatched.clear()
            if not self._pending:
                continue
            await asyncio.sleep(BATCH)
            pending, self._pending = self._pending, set()
            if ALL in pending:
                pending = {ALL}
            try:
                await self.rerender(pending)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rendering the dependents of related objects failed; trying again")
                self._pending |= pending
                await asyncio.sleep(RETRY)

    async def _watch(self, api_version: str, kind: str) -> None:
        index = self.index
        while True:
            try:
                resource = await self.discovery.resolve(api_version, kind)
                break
            except PanopticonError as e:
                log.warning(
                    "related kind %s/%s: %s (joined labels from it are left out)", api_version, kind, e
                )
                await asyncio.sleep(RETRY)
        while index is self.index:
            try:
                await self._consume(index, resource, api_version, kind)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The reflector retries API errors itself: reaching here is a bug. Watch
                # again (a fresh sync renders every dependent again) rather than stop.
                log.exception("watch of related kind %s/%s failed; restarting it", api_version, kind)
                await asyncio.sleep(1)

    async def _consume(self, index: RelatedIndex, resource: ResourceRef, api_version: str, kind: str) -> None:
        synced = False
        async for event in self.make_source(resource).events():
            if index is not self.index:
                return  # reconfigured meanwhile
            if event.type == "SYNCED":
                if not synced:
                    synced = True
                    self.synced.add((api_version, kind))
                    self._note(ALL)
                continue
            dirty = index.apply(event.type, event.obj, event.uid)
            if dirty is not None and synced:
                self._note(dirty)

    def _note(self, dirty: Dirty) -> None:
        self._pending.add(dirty)
        self._wake.set()


def relations(programs: Iterable[Program]) -> set[str]:
    """The relations (namespace, node, owner) some program joins."""
    return {source.relation for p in programs if p.joins is not None for source in p.joins.sources}


def scopes(dirty: set[Dirty], joined: set[str], namespaced: bool) -> list[tuple[str, str]]:
    """The (namespace, fieldSelector) LISTs that cover a target's dependents of `dirty`
    ([("", "")]: everything), given the relations its programs join."""
    if not joined:
        return []
    out: set[tuple[str, str]] = set()
    for d in dirty:
        if d.relation == "all" or (d.relation == "owner" and "owner" in joined and not d.name):
            return [("", "")]
        if d.relation == "namespace" and "namespace" in joined and namespaced:
            out.add((d.name, ""))
        elif d.relation == "node" and "node" in joined:
            out.add(("", f"spec.nodeName={d.name}"))
        elif d.relation == "owner" and "owner" in joined:
            out.add((d.name if namespaced else "", ""))
    return sorted(out)
