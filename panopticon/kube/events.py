"""Reflector events, and deciding from a raw watch line whether this shard owns it.

Without server-side sharding every shard receives every event of a kind, and two
thirds of them (with three shards) belong to someone else. Parsing a 5 KB object
costs far more than finding its uid, so `triage` looks at the raw bytes first:

1. Structural rule. Go encodes `{"type":T,"object":{"kind":…,"apiVersion":…,
   "metadata":{"name":…,"namespace":…,"uid":"…"` with flat strings before `uid`.
   If no `{ [ ] } \\` occurs between the object's opening brace and `"metadata":{`,
   nor between that and the first `"uid":"`, then (JSON strings cannot hold an
   unescaped quote) that key is `object.metadata.uid`, exactly.
2. Agreement rule, for other layouts (custom resources, whose keys are sorted, put
   `ownerReferences[].uid` first): collect every `"uid":"…"` value; if each
   `"uid"` token in the line is such a key and all values have the same owner, the
   true uid is among them, so the answer is known without knowing which it is.
3. Otherwise: undecided; the caller parses the line.

A skipped line is never parsed; its resourceVersion is recovered lazily when the
watch must resume (see `rv_of_line`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import orjson

EventType = Literal["ADDED", "MODIFIED", "DELETED", "SYNCED"]

INITIAL_EVENTS_END = "k8s.io/initial-events-end"


class Event(NamedTuple):
    """One change for the consumer.

    - `ADDED`: `uid` is new to the view; `obj` is the object.
    - `MODIFIED`: a new resourceVersion of a known object; `obj` is the object.
    - `DELETED`: the object is gone (or left a label/field selection). `obj` is its
      last state from a watch; after a relist that found it missing it is only its
      identity (`{"apiVersion","kind","metadata":{"uid"[,"name","namespace"]}}`) and
      `final_state_unknown` is True (client-go's `DeletedFinalStateUnknown`).
    - `SYNCED`: the view equals the server's state at `rv` (after a LIST or a
      watch-list's initial events); `obj` is None, `uid` is "".
    """

    type: EventType
    obj: dict[str, Any] | None
    uid: str
    rv: str
    final_state_unknown: bool = False


WATCH_HEAD = b'{"type":"'
_OBJECT_KEY = b'","object":{'
_METADATA = b'"metadata":{'
_UID_KEY = b'"uid":"'
_UID_TOKEN = b'"uid"'
_UNSTRUCTURED = b'"apiVersion":'
_STRUCTURAL = re.compile(rb"[{}\[\]\\]")


def split_head(line: bytes) -> tuple[bytes, int]:
    """The event type and the index just inside the object's `{` (0, 0 if the line
    is not in Go's compact `{"type":T,"object":{` form)."""
    if not line.startswith(WATCH_HEAD):
        return b"", 0
    end = line.find(b'"', 9)
    if end < 0 or not line.startswith(_OBJECT_KEY, end):
        return b"", 0
    return line[9:end], end + len(_OBJECT_KEY)


def metadata_uid(line: bytes, start: int) -> str | None:
    """`object.metadata.uid` by the structural rule, or None when it does not apply."""
    meta = line.find(_METADATA, start)
    if meta < 0 or _STRUCTURAL.search(line, start, meta):
        return None
    body = meta + len(_METADATA)
    key = line.find(_UID_KEY, body)
    if key < 0 or _STRUCTURAL.search(line, body, key):
        return None
    value = key + len(_UID_KEY)
    end = line.find(b'"', value)
    if end < 0 or line.find(b"\\", value, end) >= 0:
        return None
    return line[value:end].decode("utf-8", "replace")


def uid_candidates(line: bytes, start: int) -> list[str] | None:
    """Every `"uid":"…"` string value in the line, or None if some `"uid"` token is not
    such a key (spaces, a non-string value, a value `"uid"`) or a value has escapes.

    One pass over the line: every `"uid"` token is found in turn and must open a key
    with a string value (the earlier form, finding the keys and then counting the
    tokens, read a custom resource's line twice: 2-3 KB, as much CPU as hashing)."""
    out: list[str] = []
    pos = start
    find = line.find
    while True:
        key = find(_UID_TOKEN, pos)
        if key < 0:
            break
        value = key + len(_UID_KEY)
        if line[key + len(_UID_TOKEN) : value] != b':"':
            return None
        end = find(b'"', value)
        if end < 0 or find(b"\\", value, end) >= 0:
            return None
        out.append(line[value:end].decode("utf-8", "replace"))
        pos = end
    return out or None


def triage(line: bytes, start: int, owns: Callable[[str], bool]) -> bool | None:
    """Whether the event's object is owned (`owns(uid)`), or None if only a parse can tell.

    A custom resource (`{"apiVersion":` first: the API server encodes unstructured
    objects with sorted keys) has its uid last in metadata, after labels, finalizers
    and managedFields, where the structural rule never applies: the agreement rule is
    tried first there, and the structural rule first for built-in kinds (Go's field
    order: the uid right after name and namespace; a pod's ownerReferences hold other
    uids, on which the agreement rule would give up)."""
    if line.startswith(_UNSTRUCTURED, start):
        verdict = _agreement(line, start, owns)
        if verdict is not None:
            return verdict
        uid = metadata_uid(line, start)
        return None if uid is None else owns(uid)
    uid = metadata_uid(line, start)
    if uid is not None:
        return owns(uid)
    return _agreement(line, start, owns)


def _agreement(line: bytes, start: int, owns: Callable[[str], bool]) -> bool | None:
    """The owner every uid candidate agrees on, None if they do not (or there are none)."""
    candidates = uid_candidates(line, start)
    if candidates is None:
        return None
    first = owns(candidates[0])
    for other in candidates[1:]:
        if owns(other) != first:
            return None
    return first


def rv_of_line(line: bytes) -> str:
    """The resourceVersion of a watch line's object ("" if it has none)."""
    try:
        ev = orjson.loads(line)
        rv = ev["object"]["metadata"]["resourceVersion"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return ""
    return rv if isinstance(rv, str) else ""


def compact_rv(rv: str) -> int | str:
    """A resourceVersion as the view stores it: an int when it round-trips (smaller
    than the string), else the string (RVs are opaque; only equality is used)."""
    if rv.isascii() and rv.isdigit() and (rv[0] != "0" or rv == "0") and len(rv) < 19:
        return int(rv)
    return rv
