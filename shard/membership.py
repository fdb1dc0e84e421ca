"""Who this shard is and how many shards there are.

- The index comes from `--shard-index`, else from the pod name's ordinal suffix
  (`panopticon-shard-3` → 3; env `POD_NAME`, else `HOSTNAME`), as a StatefulSet
  gives it.
- The shard count comes from `--shards`, or from the StatefulSet's `spec.replicas`,
  watched, so `kubectl scale` needs no restart. The ring's generation is the
  StatefulSet's `metadata.generation`, which the API server only ever increases for
  one StatefulSet; with `--shards` it is `--ring-generation`. What it counts within
  is the ring's *lineage*: the StatefulSet's uid (a StatefulSet deleted and created
  again starts again at 1), or the flags themselves. The store turns (lineage,
  generation) into the fence owners carry (`panopticon.sharding.fencing`).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from panopticon.errors import PanopticonError
from panopticon.kube.events import Event
from panopticon.sharding.ring import ASSIGNMENT


class MembershipError(PanopticonError):
    pass


def shard_index(flag: int | None, env: dict[str, str] | None = None) -> int:
    if flag is not None:
        if flag < 0:
            raise MembershipError(f"--shard-index must be >= 0, not {flag}")
        return flag
    env = dict(os.environ) if env is None else env
    name = env.get("POD_NAME") or env.get("HOSTNAME") or ""
    match = re.search(r"-(\d+)$", name)
    if not match:
        raise MembershipError(
            f"no --shard-index, and the pod name {name!r} (POD_NAME or HOSTNAME) has no ordinal suffix"
        )
    return int(match.group(1))


@dataclass(frozen=True, slots=True)
class RingSpec:
    shards: int
    generation: int
    lineage: str = "static"
    """`statefulset:<uid>:<assignment>`, or `static:<shards>:<generation>:<assignment>`
    for flags. The assignment (`panopticon.sharding.ring.ASSIGNMENT`) makes shards of a version
    that assigned buckets otherwise another lineage: during an upgrade the new version's
    ring is fenced above every owner the old one wrote, and never claims at its fence."""
    static: bool = True
    """From flags: started again after other flags, the lineage is current again."""


def static_ring(shards: int, generation: int) -> RingSpec:
    """The ring `--shards` and `--ring-generation` give. The pair is its own lineage,
    so changing `--shards` without raising the generation (or lowering it) is a new
    ring, fenced above every earlier one."""
    return RingSpec(shards, generation, f"static:{shards}:{generation}:{ASSIGNMENT}", static=True)


def ring_of_statefulset(obj: dict[str, Any]) -> RingSpec | None:
    """The ring a StatefulSet object describes (None if unusable)."""
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    replicas = spec.get("replicas", 1) if isinstance(spec, dict) else 1
    generation = meta.get("generation", 1) if isinstance(meta, dict) else 1
    uid = meta.get("uid", "") if isinstance(meta, dict) else ""
    if type(replicas) is not int or type(generation) is not int or replicas < 0 or not isinstance(uid, str):
        return None
    if not uid:
        return None  # no lineage to name (the API server always sets one)
    return RingSpec(max(replicas, 1), generation, f"statefulset:{uid}:{ASSIGNMENT}", static=False)


RingLookup = Callable[[], Awaitable[RingSpec | None]]
"""Reads the StatefulSet from the API server (a GET: a quorum read, not a watch
cache): the ring it describes now, None when it is gone or unusable. A shard asks
before its StatefulSet's lineage becomes the store's current one
(`panopticon.sharding.fencing`), and its watch may lag."""


async def watch_ring(events: AsyncIterator[Event], on_ring: Callable[[RingSpec], Any]) -> None:
    """Feed every ring change the StatefulSet reflector reports to `on_ring`: a newer
    generation of the same StatefulSet, or any generation of another one (deleted and
    created again: the store decides which is newer, `panopticon.sharding.fencing`)."""
    last: RingSpec | None = None
    async for event in events:
        if event.type in ("ADDED", "MODIFIED") and event.obj is not None:
            ring = ring_of_statefulset(event.obj)
            if ring is None or ring == last:
                continue
            if last is None or ring.lineage != last.lineage or ring.generation >= last.generation:
                last = ring
                await on_ring(ring)
