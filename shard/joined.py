"""Joined labels in the shard: render again the owned objects whose related objects changed.

Every shard watches the related kinds its configs join in full (`RelatedWatch`, in
`shard.state`): a Pod's Namespace, Node and owners may be owned by any shard, or be
of a kind nobody targets. A change that alters a joined value names a scope (a
namespace, a node); each target joining that relation lists the scope once
(`Target.rerender`) and renders again the objects it owns, writing only those whose
series changed (the table's digests). A LIST, not a cache of the objects: the shard
keeps 300 bytes per owned object, and related changes are rare next to object churn.
"""

from __future__ import annotations

import logging

from panopticon.kube.relatedwatch import relations, scopes
from panopticon.render.related import Dirty
from shard.state import WorkerState

log = logging.getLogger("panopticon.shard")


class JoinedRender(WorkerState):
    """`_rerender_joined`: the related watch's callback."""

    async def _rerender_joined(self, dirty: set[Dirty]) -> None:
        for key, target in list(self.targets.items()):
            for namespace, field_selector in scopes(
                dirty, relations(target.programs), bool(target.resource.namespaced)
            ):
                changed = await target.rerender(namespace, field_selector)
                log.debug("target %s: %d objects changed with their related objects", key, changed)
