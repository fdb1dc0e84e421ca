"""Objects deleted and created again under the same name: the dead one's series go first.

Kubernetes holds at most one object per (kind, namespace, name) at a time. An object
deleted and created again (every StatefulSet pod at a rollout, a resource replaced
with `kubectl replace --force` or re-applied after a delete) gets a new uid, hence
another bucket, usually another shard's. Its old series stay stored until the shard
owning the old uid applies the DELETED; if the new uid's owner writes first, every
scrape in between serves the same series twice (a duplicate Prometheus rejects sample
by sample).

Every shard's watch of a kind carries the DELETED events of objects it does not own
(unless the API server shards the watch), which the reflector skips unparsed and
hands here (`panopticon.kube.view.ObjectView.skipped_delete`); the target adds the
DELETED it renders itself. `Successors` remembers, for `WINDOW` seconds, the uids
deleted under each (namespace, name). When the target then renders an object new to
it under a remembered name, those uids are dead for good (a DELETED event proves
it, whatever the order in which shards apply their events), so anyone may delete
their fields: the target queues a burial of each (`shard.writer.WriteQueue.bury`),
which the next flush sends, unfenced, before any write of the new object's series.
It does so again for every object of a remembered name that it re-renders after a
restart of its target (a store rewrite: Redis restored from a snapshot taken before
the delete brings the dead uid's fields back, beside the new object's rewritten ones,
until collection would delete them).

The watch stream is ordered, and Kubernetes must delete the old object before it
accepts the new one, so the DELETED always arrives here before the new object's
ADDED: the order of the two shards' flushes no longer matters. The same holds when
one shard owns both uids (its own DELETED is remembered too, and the burial goes
out before the batch that writes the new object, whatever their slots).

What this does not see (the overlap then lasts until the old owner applies its
delete, as before): a DELETED this shard's watch did not carry (it was relisting,
or the API server shards watches by uid range), and a dead object's change that its
lagging owner flushes after the burial. Both are documented in docs/design.md.
"""

from __future__ import annotations

from typing import Any

import orjson

WINDOW = 120.0
"""Seconds a deleted uid is remembered under its name. A burial matters only while
the old owner may not have applied the delete yet: milliseconds usually, up to the
deletion bound (tens of seconds) when it restarts or lags. A recreation later than
this finds the old series long gone."""
MAX_NAMES = 4096
"""Names remembered at most per kind (the oldest go first): a mass delete with no
recreation must not grow the shard's memory (about 300 bytes per name)."""

Name = tuple[str, str]


class Successors:
    """(namespace, name) -> the uids deleted under it lately, oldest name first."""

    __slots__ = ("_dead",)

    def __init__(self) -> None:
        self._dead: dict[Name, list[tuple[str, float]]] = {}

    def __bool__(self) -> bool:
        return bool(self._dead)

    def __len__(self) -> int:
        return len(self._dead)

    def deleted(self, obj: Any, uid: str, now: float) -> None:
        """The object `obj` (an event's object) with `uid` was deleted."""
        name = name_of(obj)
        if name is None or not uid:
            return
        entries = [(u, t) for u, t in self._dead.pop(name, ()) if u != uid and now - t <= WINDOW]
        entries.append((uid, now))
        self._dead[name] = entries  # moved to the newest end
        self._expire(now)

    def deleted_line(self, line: bytes, now: float) -> None:
        """A watch line's DELETED (skipped by the reflector: not owned). A line that does
        not parse, or names nothing, is ignored: this is only ever an optimisation of
        the overlap, never a correctness input."""
        try:
            obj = orjson.loads(line)["object"]
            uid = obj["metadata"]["uid"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if isinstance(uid, str):
            self.deleted(obj, uid, now)

    def predecessors(self, obj: Any, uid: str, now: float) -> list[str]:
        """The dead uids of `obj`'s name (which `uid` now holds). They stay remembered
        until `WINDOW` ends: a rewrite of the store (Redis restored from a snapshot
        taken before the delete brings the dead uid's fields back) buries them again."""
        name = name_of(obj)
        entries = self._dead.get(name) if name is not None else None
        if not entries:
            return []
        return [u for u, t in entries if u != uid and now - t <= WINDOW]

    def _expire(self, now: float) -> None:
        dead = self._dead
        while dead:
            oldest = next(iter(dead))
            if len(dead) <= MAX_NAMES and now - dead[oldest][-1][1] <= WINDOW:
                return
            del dead[oldest]


def name_of(obj: Any) -> Name | None:
    """(namespace, name) of an event's object ("" namespace: cluster-scoped), or None."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        return None
    name, namespace = meta.get("name"), meta.get("namespace", "")
    if not isinstance(name, str) or not name or not isinstance(namespace, str):
        return None
    return namespace, name
