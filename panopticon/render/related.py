"""The related objects joined labels read: Namespaces, Nodes, owners, projected.

A `RelatedIndex` is fed the related objects (a shard's and the library's watches of
Namespaces, Nodes and owner kinds; the extra documents of `panopticon render`) and
answers `record(source, obj)`: the record of `obj`'s Namespace, Node or owner of a
kind (panopticon.render.joins reads joined labels from it).

What it keeps per related object is small on purpose: only the values of the paths
that configs join on it (`Needs`), and its controller ownerReference (to walk owner
chains), never the object itself (a Node is ~10 KB of JSON; its zone label is a few
bytes). A change to a related object matters only when that projection changes:
`apply` says which dependents to render again then (a `Dirty` scope), and nothing
when, say, a Node's heartbeat moved its resourceVersion.

Owner chains (Pod -> ReplicaSet -> Deployment) go through objects of kinds no config
names: every object fed is kept as a link (uid -> controller ref). A chain that meets
a kind the feeder does not watch records it in `unwatched`, so the feeder can watch
it (the shard does) and render the dependents again once it has synced.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from panopticon.config.joinspec import JoinSource
from panopticon.render.joins import JoinPlan, Record
from panopticon.render.paths import MISSING, Getter

MAX_CHAIN = 10
"""Owner references followed at most (a cycle, or hostile objects, ends there)."""
GroupKind = tuple[str, str]
Ref = tuple[str, str, str, str]
"""A controller ownerReference: (API group, kind, uid, apiVersion)."""
NAMESPACE: GroupKind = ("", "Namespace")
NODE: GroupKind = ("", "Node")


@dataclass(slots=True)
class Needs:
    """What a set of programs joins: per related kind, its paths (text -> getter)."""

    paths: dict[GroupKind, dict[str, Getter]] = field(default_factory=dict)
    owners: bool = False
    """Whether any program joins an owner (links must be kept, chains walked)."""
    versions: dict[GroupKind, str] = field(default_factory=dict)
    """An apiVersion to watch each related kind at."""

    @classmethod
    def of(cls, plans: Iterable[JoinPlan | None]) -> Needs:
        needs = cls()
        for plan in plans:
            if plan is None:
                continue
            for source, paths in zip(plan.sources, plan.paths, strict=True):
                needs.paths.setdefault(source.related_kind, {}).update(paths)
                needs.versions[source.related_kind] = source.api_version or "v1"
                needs.owners = needs.owners or source.relation == "owner"
        return needs

    def signature(self) -> tuple[Any, ...]:
        """Equal for equal needs (a feeder restarts its watches when this changes)."""
        return (self.owners, tuple(sorted((gk, tuple(sorted(p))) for gk, p in self.paths.items())))


@dataclass(frozen=True, slots=True)
class Dirty:
    """Which dependents a related change affects: objects in namespace `name`
    (relation namespace), Pods on Node `name` (node), or objects in namespace `name`
    with an owner chain ("" for all namespaces; relation owner)."""

    relation: str
    name: str


@dataclass(slots=True)
class _Entry:
    kind: GroupKind
    name: str
    namespace: str
    record: Record | None
    ref: Ref | None


def group_kind(obj: dict[str, Any]) -> GroupKind | None:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    return (sys.intern(api_version.rpartition("/")[0]), sys.intern(kind))


def controller_ref(obj: Any, *, keep: bool = True) -> Ref | None:
    """The object's controller ownerReference, as (group, kind, uid, apiVersion); its
    strings interned when it is to be kept (`keep`: one copy per kind, not per object)."""
    meta = obj.get("metadata") if type(obj) is dict else None
    refs = meta.get("ownerReferences") if type(meta) is dict else None
    if type(refs) is not list:
        return None
    for ref in refs:
        if type(ref) is dict and ref.get("controller") is True:
            api_version, kind, uid = ref.get("apiVersion"), ref.get("kind"), ref.get("uid")
            if isinstance(api_version, str) and isinstance(kind, str) and isinstance(uid, str) and uid:
                group = api_version.rpartition("/")[0]
                if not keep:
                    return (group, kind, uid, api_version)
                return (sys.intern(group), sys.intern(kind), uid, sys.intern(api_version))
    return None


class RelatedIndex:
    """Projected related objects by uid, Namespaces and Nodes also by name."""

    def __init__(self, needs: Needs, *, complete: bool = False) -> None:
        self.needs = needs
        self.complete = complete
        """Every object there is was fed (offline): a broken chain is not an unwatched kind."""
        self.watched: set[GroupKind] = set(needs.paths)
        """Kinds the feeder watches (it adds link kinds it starts watching)."""
        self.unwatched: set[tuple[str, str]] = set()
        """(apiVersion, kind) of chain links met but not watched: for the feeder to watch."""
        self._entries: dict[str, _Entry] = {}
        self._names: dict[GroupKind, dict[str, str]] = {NAMESPACE: {}, NODE: {}}

    @property
    def size(self) -> int:
        """Related objects kept (a property, not __len__: an empty index is still an index)."""
        return len(self._entries)

    def apply(self, etype: str, obj: Any, uid: str = "") -> Dirty | None:
        """Feed one ADDED/MODIFIED/DELETED related object; the dependents to render
        again when what configs join on it changed (None: nothing to do)."""
        meta = obj.get("metadata") if type(obj) is dict else None
        if type(meta) is not dict:
            return None
        uid = uid or _text(meta.get("uid"))
        if not uid:
            return None
        old = self._entries.get(uid)
        if etype == "DELETED":
            if old is None:
                return None
            del self._entries[uid]
            names = self._names.get(old.kind)
            if names is not None and names.get(old.name) == uid:
                del names[old.name]
            return _dirty(old)
        kind = group_kind(obj)
        if kind is None:
            return None
        paths = self.needs.paths.get(kind)
        if paths is None and not (self.needs.owners and (self.complete or kind in self.watched)):
            return None  # a kind no join reads and no owner chain passes through
        name, namespace = _text(meta.get("name")), _text(meta.get("namespace"))
        record = None if paths is None else _project(obj, paths)
        ref = controller_ref(obj) if self.needs.owners else None
        entry = _Entry(kind, name, namespace, record, ref)
        self._entries[uid] = entry
        names = self._names.get(kind)
        if names is not None and name:
            names[name] = uid
        if old is not None and old.record == record and old.ref == ref and old.name == name:
            return None
        return _dirty(entry)

    def record(self, source: JoinSource, obj: Any) -> Record | None:
        """The record of `obj`'s related object `source`; None when there is none (yet)."""
        return self.records((source,), obj)[0]

    def records(self, sources: Sequence[JoinSource], obj: Any) -> list[Record | None]:
        """The records of `obj`'s related objects `sources` (the render's hot path: the
        object's metadata and controller reference are read once for all of them)."""
        meta = obj.get("metadata") if type(obj) is dict else None
        if type(meta) is not dict:
            return [None] * len(sources)
        out: list[Record | None] = []
        ref: Ref | bool | None = False
        entries = self._entries
        for source in sources:
            relation = source.relation
            if relation == "namespace":
                name = meta.get("namespace")
                uid = self._names[NAMESPACE].get(name) if type(name) is str else None
            elif relation == "node":
                spec = obj.get("spec")
                name = spec.get("nodeName") if type(spec) is dict else None
                uid = self._names[NODE].get(name) if type(name) is str else None
            else:
                if ref is False:
                    ref = controller_ref(obj, keep=False)
                namespace = meta.get("namespace")
                out.append(
                    self._owner(ref, source.related_kind, namespace if type(namespace) is str else "")  # type: ignore[arg-type]
                )
                continue
            entry = entries.get(uid) if uid is not None else None
            out.append(entry.record if entry is not None else None)
        return out

    def _owner(self, ref: Ref | None, wanted: GroupKind, namespace: str) -> Record | None:
        """Up the controller references from a dependent in `namespace` ("" for a
        cluster-scoped one) to the owner of kind `wanted`. A namespaced owner in another
        namespace counts as absent, as Kubernetes' garbage collector treats it: owner
        references carry no namespace, and following one across namespaces would also
        leave the dependent out of the owner's change scope (`Dirty("owner", ns)`)."""
        for _ in range(MAX_CHAIN):
            if ref is None:
                return None
            entry = self._entries.get(ref[2])
            if entry is not None and entry.namespace and entry.namespace != namespace:
                return None
            if (ref[0], ref[1]) == wanted:
                return entry.record if entry is not None else None
            if entry is None:
                if not self.complete and (ref[0], ref[1]) not in self.watched:
                    self.unwatched.add((ref[3], ref[1]))
                return None
            ref, namespace = entry.ref, entry.namespace
        return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _project(obj: Any, paths: dict[str, Getter]) -> Record:
    record: Record = {}
    for text, getter in paths.items():
        value = getter(obj)
        if value is not MISSING:
            record[text] = sys.intern(value) if type(value) is str and len(value) < 64 else value
    return record


def _dirty(entry: _Entry) -> Dirty:
    if entry.kind == NAMESPACE:
        return Dirty("namespace", entry.name)
    if entry.kind == NODE:
        return Dirty("node", entry.name)
    return Dirty("owner", entry.namespace)
