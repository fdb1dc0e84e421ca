"""MVCC storage: one global revision, per-key history, compaction, event rings.

Like etcd plus the apiserver's watch cache (README.md, "Resource versions and storage"):

- every write takes the next value of one global revision shared by all resources;
- each key keeps its versions `(rev, object | tombstone)` until compaction, so LIST
  at an exact past revision and continue tokens pinned to a revision can be served;
- each resource keeps one shared ring of events; watchers hold cursors into it
  (absolute positions), nothing is copied per watcher;
- every object version is serialised once, at write time (`ObjVersion.item`), so
  LIST and WATCH responses are byte concatenation.

Invariant: `ObjVersion.item` is the object as a typed list item, i.e. JSON without
`kind`/`apiVersion`, starting with `{"metadata":`. Watch events and custom-resource
list items put a `{"kind":…,"apiVersion":…,` prefix in front of `item[1:]`.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import orjson

from kubesim.resources import ResourceType
from kubesim.selectors import fnv1a64


class Waker(Protocol):
    def wake(self) -> None: ...


@functools.lru_cache(maxsize=1024)
def _split_path(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def field_value(obj: dict[str, Any], path: str) -> str:
    """A selectable field's string form: bools as true/false, missing as ""."""
    cur: Any = obj
    for part in _split_path(path):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if isinstance(cur, (dict, list)):
        return orjson.dumps(cur).decode()
    return str(cur)


class ObjVersion:
    """One stored version of one object (or a tombstone: `deleted`)."""

    __slots__ = (
        "_fields",
        "_ns_hash",
        "_uid_hash",
        "deleted",
        "field_paths",
        "item",
        "key",
        "labels",
        "name",
        "namespace",
        "rev",
        "uid",
    )

    def __init__(
        self,
        *,
        rev: int,
        key: str,
        name: str,
        namespace: str,
        uid: str,
        labels: dict[str, str],
        field_paths: tuple[str, ...],
        item: bytes,
        deleted: bool = False,
    ) -> None:
        self.rev = rev
        self.key = key
        self.name = name
        self.namespace = namespace
        self.uid = uid
        self.labels = labels
        self.field_paths = field_paths
        self._fields: dict[str, str] | None = None
        self.item = item
        self.deleted = deleted
        self._uid_hash: int | None = None
        self._ns_hash: int | None = None

    def obj(self) -> dict[str, Any]:
        """A fresh dict of the object (without kind/apiVersion)."""
        out: dict[str, Any] = orjson.loads(self.item)
        return out

    def field_map(self) -> dict[str, str]:
        """Selectable field values; type-specific ones are extracted on first use (few
        requests select on them, every write would pay for them)."""
        if self._fields is None:
            fields = {"metadata.name": self.name, "metadata.namespace": self.namespace}
            if self.field_paths:
                obj = self.obj()
                for path in self.field_paths:
                    fields[path] = field_value(obj, path)
            self._fields = fields
        return self._fields

    def shard_hash(self, key: str) -> int:
        """FNV-1a 64 of `object.metadata.uid` or `.namespace`, computed once."""
        if key == "object.metadata.namespace":
            if self._ns_hash is None:
                self._ns_hash = fnv1a64(self.namespace)
            return self._ns_hash
        if self._uid_hash is None:
            self._uid_hash = fnv1a64(self.uid)
        return self._uid_hash


class Event:
    """One change of one object: `new` is the version after it (a tombstone with the
    last content, stamped with the deletion revision, for DELETED); `old` before."""

    __slots__ = ("new", "old", "rev", "type")

    def __init__(self, rev: int, type_: str, new: ObjVersion, old: ObjVersion | None) -> None:
        self.rev = rev
        self.type = type_
        self.new = new
        self.old = old


def object_key(namespace: str, name: str) -> str:
    """Storage key below the resource prefix: `ns/name`, or `name` for cluster scope."""
    return f"{namespace}/{name}" if namespace else name


class ResourceStore:
    """All versions and the event ring of one resource (group + plural)."""

    def __init__(self, rtype: ResourceType, *, created_rev: int) -> None:
        self.rtype = rtype
        self.history: dict[str, list[ObjVersion]] = {}
        self.current: dict[str, ObjVersion] = {}
        self._sorted: list[str] = []
        self._unsorted: list[str] = []
        self._removed = False
        self.events: list[Event] = []
        self.events_base = 0
        """Absolute position of `events[0]` (watcher cursors are absolute)."""
        self.ring_start_rev = created_rev
        """Every event with rev > this is in the ring."""
        self.watchers: set[Waker] = set()
        self.versions = 0
        """Versions retained over all keys (== len(current) when every key has one live version)."""
        self.last_rev = created_rev
        """Revision of the newest write to this resource."""

    def quiet_since(self, rev: int) -> bool:
        """True when the state at `rev` is the current state (no write after `rev`)."""
        return self.last_rev <= rev

    def simple(self) -> bool:
        """True when every key holds exactly one, live, version (cheap counting)."""
        return self.versions == len(self.current) == len(self.history)

    @property
    def events_end(self) -> int:
        return self.events_base + len(self.events)

    def sorted_keys(self) -> list[str]:
        """Every key with history, in storage order (merged lazily after inserts)."""
        if self._unsorted or self._removed:
            keys = self._sorted + self._unsorted if not self._removed else list(self.history)
            keys.sort()  # Timsort: near-linear on a sorted run plus a short tail
            self._sorted, self._unsorted, self._removed = keys, [], False
        return self._sorted

    def position_after(self, rev: int) -> int:
        """Absolute ring position of the first event with rev > `rev`."""
        idx = bisect.bisect_right(self.events, rev, key=lambda e: e.rev)
        return self.events_base + idx

    def event_at(self, pos: int) -> Event:
        return self.events[pos - self.events_base]

    def version_at(self, key: str, rev: int) -> ObjVersion | None:
        """The live version of `key` at `rev`, None if absent or deleted then."""
        hist = self.history.get(key)
        if not hist:
            return None
        if hist[-1].rev <= rev:
            v = hist[-1]
        else:
            idx = bisect.bisect_right(hist, rev, key=lambda o: o.rev) - 1
            if idx < 0:
                return None
            v = hist[idx]
        return None if v.deleted else v

    def iter_current(self, start: str = "") -> Iterator[ObjVersion]:
        """Live objects at the newest revision, in key order, from key `start`."""
        keys = self.sorted_keys()
        current = self.current
        for i in range(bisect.bisect_left(keys, start) if start else 0, len(keys)):
            v = current.get(keys[i])
            if v is not None:
                yield v

    def iter_at(self, rev: int, start: str = "") -> Iterator[ObjVersion]:
        """Live objects at revision `rev`, in key order, from key `start`."""
        keys = self.sorted_keys()
        for i in range(bisect.bisect_left(keys, start) if start else 0, len(keys)):
            v = self.version_at(keys[i], rev)
            if v is not None:
                yield v

    def append(self, version: ObjVersion, old: ObjVersion | None, type_: str) -> Event:
        key = version.key
        self.versions += 1
        self.last_rev = version.rev
        hist = self.history.get(key)
        if hist is None:
            self.history[key] = [version]
            self._unsorted.append(key)
        else:
            hist.append(version)
        if version.deleted:
            self.current.pop(key, None)
        else:
            self.current[key] = version
        event = Event(version.rev, type_, version, old)
        self.events.append(event)
        for w in list(self.watchers):
            w.wake()
        return event

    def trim_ring(self, *, upto_rev: int | None = None, capacity: int | None = None) -> None:
        """Drop ring events with rev <= `upto_rev`, or the oldest beyond `capacity`."""
        drop = 0
        if upto_rev is not None:
            drop = bisect.bisect_right(self.events, upto_rev, key=lambda e: e.rev)
        if capacity is not None and len(self.events) - drop > capacity:
            drop = len(self.events) - capacity
        if drop <= 0:
            return
        self.ring_start_rev = max(self.ring_start_rev, self.events[drop - 1].rev)
        del self.events[:drop]
        self.events_base += drop
        for w in list(self.watchers):
            w.wake()  # watchers now behind the ring notice and close

    def compact(self, rev: int) -> None:
        """Forget versions superseded at or before `rev`, and tombstones at or before it."""
        gone: list[str] = []
        for key, hist in self.history.items():
            if len(hist) == 1 and not hist[0].deleted:
                continue
            idx = bisect.bisect_right(hist, rev, key=lambda o: o.rev) - 1
            if idx < 0:
                continue
            if hist[idx].deleted:
                self.versions -= idx + 1
                del hist[: idx + 1]
            elif idx > 0:
                self.versions -= idx
                del hist[:idx]
            if not hist:
                gone.append(key)
        for key in gone:
            del self.history[key]
        if gone:
            self._removed = True
        self.trim_ring(upto_rev=rev)


class Storage:
    """Every resource's store under one global revision."""

    def __init__(self, *, start_revision: int, ring_capacity: int) -> None:
        self.start_revision = start_revision
        self.revision = start_revision
        self.compacted = start_revision
        """Versions superseded at or before this revision are gone (410 below it)."""
        self.ring_capacity = ring_capacity
        self.stores: dict[tuple[str, str], ResourceStore] = {}
        self.on_commit: list[Callable[[int], None]] = []

    def store(self, rtype: ResourceType) -> ResourceStore:
        """The store of `rtype`, made on first use as if it had existed since the start
        (built-in kinds have a watch cache from the apiserver's start: a watch from any
        retained revision is valid even if nobody touched the kind before)."""
        st = self.stores.get(rtype.key)
        if st is None:
            created = max(self.start_revision, self.compacted)
            st = self.stores[rtype.key] = ResourceStore(rtype, created_rev=created)
        else:
            st.rtype = rtype
        return st

    def open_store(self, rtype: ResourceType) -> ResourceStore:
        """The store of a kind that starts existing now (a CRD just established)."""
        if rtype.key not in self.stores:
            self.stores[rtype.key] = ResourceStore(rtype, created_rev=self.revision)
        return self.store(rtype)

    def drop_store(self, key: tuple[str, str]) -> ResourceStore | None:
        return self.stores.pop(key, None)

    def _next(self) -> int:
        self.revision += 1
        return self.revision

    def _committed(self, st: ResourceStore, rev: int) -> None:
        if len(st.events) > self.ring_capacity * 5 // 4:
            st.trim_ring(capacity=self.ring_capacity)
        for cb in self.on_commit:
            cb(rev)

    def put(self, rtype: ResourceType, obj: dict[str, Any]) -> tuple[ObjVersion, ObjVersion | None]:
        """Store `obj` (a dict this call may modify) as the next revision.

        Sets `metadata.resourceVersion`; returns the new and the previous version.
        """
        st = self.store(rtype)
        meta = obj["metadata"]
        namespace = meta.get("namespace", "") if rtype.namespaced else ""
        key = object_key(namespace, meta["name"])
        old = st.current.get(key)
        rev = self._next()
        meta["resourceVersion"] = str(rev)
        version = make_version(rtype, obj, rev=rev, key=key)
        st.append(version, old, "MODIFIED" if old is not None else "ADDED")
        self._committed(st, rev)
        return version, old

    def delete(
        self, rtype: ResourceType, key: str, *, final: dict[str, Any] | None = None
    ) -> ObjVersion | None:
        """Delete `key` now; the tombstone carries the last content (or `final`, the
        content of an update that removed the last finalizer) at the deletion RV."""
        st = self.store(rtype)
        old = st.current.get(key)
        if old is None:
            return None
        rev = self._next()
        obj = final if final is not None else old.obj()
        obj["metadata"]["resourceVersion"] = str(rev)
        tomb = make_version(rtype, obj, rev=rev, key=key, deleted=True)
        st.append(tomb, old, "DELETED")
        self._committed(st, rev)
        return tomb

    def compact(self, rev: int) -> int:
        """Compact every store to `rev` (clamped to the current revision)."""
        rev = min(rev, self.revision)
        if rev <= self.compacted:
            return self.compacted
        for st in self.stores.values():
            st.compact(rev)
        self.compacted = rev
        return rev


def make_version(
    rtype: ResourceType, obj: dict[str, Any], *, rev: int, key: str, deleted: bool = False
) -> ObjVersion:
    """Serialise `obj` once (kind/apiVersion stripped, metadata first) and index it."""
    obj.pop("kind", None)
    obj.pop("apiVersion", None)
    meta = obj["metadata"]
    body = obj if next(iter(obj)) == "metadata" else {"metadata": meta, **obj}
    labels = meta.get("labels") or {}
    namespace = meta.get("namespace", "") if rtype.namespaced else ""
    return ObjVersion(
        rev=rev,
        key=key,
        name=meta["name"],
        namespace=namespace,
        uid=meta.get("uid", ""),
        labels=labels,
        field_paths=rtype.extra_fields,
        item=orjson.dumps(body),
        deleted=deleted,
    )
