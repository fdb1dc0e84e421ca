"""Joined labels in the library: the related watch of the exporter's kinds.

As in a shard (`shard/joined.py`): the related kinds the configs join are watched
in full (`panopticon.kube.relatedwatch`), and a change of a joined value renders the held
objects of its scope again from a one-shot LIST (the library keeps no objects either).
"""

from __future__ import annotations

from collections.abc import Sequence

from panopticon._embed.kinds import WatchedKind
from panopticon.kube.client import KubeClient
from panopticon.kube.discovery import Discovery, ResourceRef
from panopticon.kube.reflector import Reflector
from panopticon.kube.relatedwatch import RelatedWatch, relations, scopes
from panopticon.render.related import Dirty


def related_watch(kinds: Sequence[WatchedKind], client: KubeClient, discovery: Discovery) -> RelatedWatch:
    """The watch of what `kinds`' programs join, wired to render their dependents again."""

    async def rerender(dirty: set[Dirty]) -> None:
        for kind in kinds:
            if kind.resource is None:
                continue
            joined = relations(kind.programs)
            watched = [ns for ns in kind.namespaces if ns]  # none: cluster-wide
            for namespace, field_selector in scopes(dirty, joined, bool(kind.resource.namespaced)):
                if not watched:
                    await kind.rerender(client, namespace, field_selector)
                elif not namespace:  # the whole kind: as watched, one namespace at a time
                    for ns in watched:
                        await kind.rerender(client, ns, field_selector)
                elif namespace in watched:
                    await kind.rerender(client, namespace, field_selector)

    def source(resource: ResourceRef) -> Reflector:
        return Reflector(client, resource)

    watch = RelatedWatch(discovery, source, rerender)
    watch.configure(p for kind in kinds for p in kind.programs)
    for kind in kinds:
        kind.related = watch
    return watch
