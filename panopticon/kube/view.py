"""The reflector's view: what the consumer has been told exists, and nothing more.

Per object only `uid -> resourceVersion` is kept (the RV as an int when it
round-trips: 32 bytes instead of a ~60-byte string), plus, when `track_names` is
on, an interned namespace and the name so that deletes found by a relist can name
the object. Whole objects are never kept: the shard's budget is a few hundred
bytes per owned object, all included. The uid string stored is the one handed out
in the first event about the object, so a consumer keying its own state by
`event.uid` shares it instead of holding a copy.

Every method returns the event the consumer must see for the change, or None when
the change is invisible (same RV again, delete of an unknown uid).

Per-object records are spread over `SLOTS` dicts by the hash of the uid (the view's
RVs and a sync's `Seen`), and every dict holds only str and int keys and values.
Why: an embedding operator's event loop (docs/library.md, the event loop). One
dict of 100,000 uids grows by copying itself, which held the loop for 6-8 ms at
87,381 entries on this project's machines, where 64 dicts of ~1,600 grow in well
under a millisecond each; and dicts of str and int are never tracked by the cyclic
garbage collector, where a set of uids is always walked by a full collection.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from panopticon.kube.discovery import ResourceRef
from panopticon.kube.events import Event, compact_rv
from panopticon.sharding.buckets import ShardFilter

_MISSING: Any = object()

SLOTS = 64
"""Dicts the per-object records are spread over (module docstring)."""


class Seen:
    """The uids a sync (LIST or watch-list) has listed so far: a set of str, kept as
    `SLOTS` untracked dicts (module docstring)."""

    __slots__ = ("_slots",)

    def __init__(self) -> None:
        self._slots: list[dict[str, None]] = [{} for _ in range(SLOTS)]

    def add(self, uid: str) -> None:
        self._slots[hash(uid) % SLOTS][uid] = None

    def __contains__(self, uid: object) -> bool:
        return uid in self._slots[hash(uid) % SLOTS]

    def __len__(self) -> int:
        return sum(map(len, self._slots))


class ObjectView(Protocol):
    """What a reflector needs of its view (`View`, or a consumer's own record).

    A consumer that already keeps a record per object (the shard's render table)
    can serve as the view itself instead of the reflector keeping a second one;
    it must then drop an object only once it has handled the object's DELETED."""

    def apply(self, etype: str, obj: dict[str, Any], uid: str, rv: str) -> Event | None: ...

    def listed(self, obj: dict[str, Any], uid: str, rv: str, seen: Seen) -> Event | None: ...

    def vanished(self, seen: Seen) -> list[Event]: ...

    def retain(self, shard_filter: ShardFilter, keep: Callable[[str], bool]) -> int:
        """Drop, silently, every object outside `shard_filter` (`keep` tests a uid)."""
        ...

    def skipped_delete(self, line: bytes) -> None:
        """A watch's DELETED of an object outside the filter, as its raw line: the
        object is gone, which a consumer may use (the shard buries the series of an
        object recreated under the same name, `shard.successors`). Most ignore it."""
        ...


class View:
    """uid → resourceVersion of every object the consumer holds."""

    __slots__ = ("_names", "_slots", "resource")

    def __init__(self, resource: ResourceRef, *, track_names: bool = False) -> None:
        self.resource = resource
        self._slots: list[dict[str, int | str]] = [{} for _ in range(SLOTS)]
        self._names: dict[str, tuple[str, str]] | None = {} if track_names else None

    def __len__(self) -> int:
        return sum(map(len, self._slots))

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, str) and uid in self._slots[hash(uid) % SLOTS]

    def snapshot(self) -> dict[str, str]:
        """A copy as uid → resourceVersion string (for tests and debugging)."""
        return {uid: str(rv) for slot in self._slots for uid, rv in slot.items()}

    def uids(self) -> list[str]:
        return [uid for slot in self._slots for uid in slot]

    def version(self, uid: str) -> int | str | None:
        """The resourceVersion held for `uid` (`compact_rv` form), None when not held."""
        return self._slots[hash(uid) % SLOTS].get(uid)

    def apply(self, etype: str, obj: dict[str, Any], uid: str, rv: str) -> Event | None:
        """A watch event. ADDED/MODIFIED become ADDED for a uid the view lacks and
        MODIFIED otherwise (dropped if the RV did not change); DELETED of an unknown
        uid is dropped."""
        rvs = self._slots[hash(uid) % SLOTS]
        if etype == "DELETED":
            if rvs.pop(uid, _MISSING) is _MISSING:
                return None
            if self._names is not None:
                self._names.pop(uid, None)
            return Event("DELETED", obj, uid, rv)
        value = compact_rv(rv)
        old = rvs.get(uid, _MISSING)
        if old == value:
            return None
        rvs[uid] = value
        if self._names is not None:
            self._remember(uid, obj)
        return Event("ADDED" if old is _MISSING else "MODIFIED", obj, uid, rv)

    def listed(self, obj: dict[str, Any], uid: str, rv: str, seen: Seen) -> Event | None:
        """An object of a LIST or of a watch-list's initial events (`seen` collects uids)."""
        seen.add(uid)
        return self.apply("ADDED", obj, uid, rv)

    def vanished(self, seen: Seen) -> list[Event]:
        """DELETED (final state unknown) for every object a complete sync did not see.
        Every uid listed is in the view (`listed` put it there), so when the view holds
        no more uids than were seen nothing vanished: the usual case (a first sync, a
        relist that lost nothing) costs no scan. A scan of 100,000 uids held the
        loop for 30-50 ms on this project's loaded machines."""
        if len(seen) >= len(self):
            return []
        gone = [uid for slot in self._slots for uid in slot if uid not in seen]
        return [self.forget(uid) for uid in gone]

    def forget(self, uid: str) -> Event:
        rv = self._slots[hash(uid) % SLOTS].pop(uid)
        meta: dict[str, str] = {"uid": uid}
        if self._names is not None:
            namespace, name = self._names.pop(uid, ("", ""))
            meta["name"] = name
            if namespace:
                meta["namespace"] = namespace
        ref = self.resource
        obj = {"apiVersion": ref.api_version, "kind": ref.kind, "metadata": meta}
        return Event("DELETED", obj, uid, str(rv), True)

    def release(self) -> Iterator[None]:
        """Forget every object, one slot at a time: an embedding loop gives itself a
        turn at each step (100,000 uids freed at once held it about 30 ms)."""
        for slot in self._slots:
            slot.clear()
            yield
        if self._names is not None:
            self._names.clear()

    def retain(self, shard_filter: ShardFilter, keep: Callable[[str], bool]) -> int:
        """Drop, silently, every uid `keep` rejects (ownership moved elsewhere)."""
        dropped = [uid for uid in self.uids() if not keep(uid)]
        self.drop(dropped)
        return len(dropped)

    def skipped_delete(self, line: bytes) -> None:
        return None

    def drop(self, uids: Iterable[str]) -> None:
        names = self._names
        slots = self._slots
        for uid in uids:
            del slots[hash(uid) % SLOTS][uid]
            if names is not None:
                names.pop(uid, None)

    def _remember(self, uid: str, obj: dict[str, Any]) -> None:
        assert self._names is not None
        meta = obj.get("metadata") or {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        if isinstance(namespace, str) and isinstance(name, str):
            self._names[uid] = (sys.intern(namespace), name)
