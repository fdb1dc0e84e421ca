"""Wire bytes: objects, lists, watch events and continue tokens, by concatenation.

Objects are stored pre-serialised without `kind`/`apiVersion` (see storage.py);
here they get the right type prefix for the requested version: `{"kind":…,
"apiVersion":…,` for built-ins (Go's typed encoder order), `{"apiVersion":…,
"kind":…,` for custom resources (unstructured, sorted keys). Built-in list items
carry no type at all (the typed encoder's output), custom-resource items do.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import orjson

from kubesim.resources import ResourceType
from kubesim.storage import ObjVersion

INITIAL_EVENTS_END = "k8s.io/initial-events-end"
EVENT_HEADS = {
    t: b'{"type":"' + t.encode() + b'","object":'
    for t in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR")
}


@lru_cache(maxsize=4096)
def kind_prefix(kind: str, api_version: str, crd: bool) -> bytes:
    """The opening of an object of `kind` at `api_version`, up to and including a comma."""
    k, v = orjson.dumps(kind), orjson.dumps(api_version)
    if crd:
        return b'{"apiVersion":' + v + b',"kind":' + k + b","
    return b'{"kind":' + k + b',"apiVersion":' + v + b","


def prefix_for(rtype: ResourceType, version: str) -> bytes:
    return kind_prefix(rtype.kind, rtype.api_version(version), rtype.crd)


def object_bytes(rtype: ResourceType, version: str, item: bytes) -> bytes:
    """One object with its type, as GET and watch events show it."""
    return b"".join((prefix_for(rtype, version), memoryview(item)[1:]))


def object_dict(rtype: ResourceType, version: str, ov: ObjVersion) -> dict[str, Any]:
    obj = ov.obj()
    if rtype.crd:
        return {"apiVersion": rtype.api_version(version), "kind": rtype.kind, **obj}
    return {"kind": rtype.kind, "apiVersion": rtype.api_version(version), **obj}


LIST_CHUNK_BYTES = 1 << 20
"""Bytes per piece of a streamed list: big enough to amortise, small enough to stay
in cache (one 500 MiB join costs more in page faults than all the copying)."""


def _list_head(rtype: ResourceType, version: str, meta: dict[str, Any]) -> bytes:
    return b"".join(
        (
            kind_prefix(rtype.list_kind, rtype.api_version(version), rtype.crd),
            b'"metadata":',
            orjson.dumps(meta),
            b',"items":[',
        )
    )


def list_size(rtype: ResourceType, version: str, items: list[ObjVersion], meta: dict[str, Any]) -> int:
    """The length of `list_body` without building it."""
    extra = 0 if rtype.typed else len(items) * (len(prefix_for(rtype, version)) - 1)
    commas = max(0, len(items) - 1)
    return len(_list_head(rtype, version, meta)) + sum(len(v.item) for v in items) + extra + commas + 2


def list_chunks(
    rtype: ResourceType,
    version: str,
    items: list[ObjVersion],
    meta: dict[str, Any],
    *,
    chunk: int = LIST_CHUNK_BYTES,
) -> Iterator[bytes]:
    """A `<Kind>List` in pieces of about `chunk` bytes whose concatenation is the list.

    Items are the stored bytes; custom-resource items get their type prefix.
    """
    parts: list[bytes | memoryview] = [_list_head(rtype, version, meta)]
    size = len(parts[0])
    prefix = None if rtype.typed else prefix_for(rtype, version)
    for i, v in enumerate(items):
        if i:
            parts.append(b",")
        if prefix is None:
            parts.append(v.item)
        else:
            parts.append(prefix)
            parts.append(memoryview(v.item)[1:])
        size += len(v.item)
        if size >= chunk:
            yield b"".join(parts)
            parts, size = [], 0
    parts.append(b"]}")
    yield b"".join(parts)


def list_body(rtype: ResourceType, version: str, items: list[ObjVersion], meta: dict[str, Any]) -> bytes:
    """A whole `<Kind>List` as one bytes object."""
    return b"".join(list_chunks(rtype, version, items, meta, chunk=1 << 62))


def event_line(type_: str, prefix: bytes, item: bytes) -> bytes:
    """`{"type":T,"object":{…}}\\n`: one watch event, as Go's json.Encoder frames it."""
    return b"".join((EVENT_HEADS[type_], prefix, memoryview(item)[1:], b"}\n"))


def bookmark_line(
    rtype: ResourceType, version: str, rev: int, *, initial_end: bool, realistic: bool
) -> bytes:
    """A BOOKMARK event: the kind with only the RV (and the initial-events-end annotation)."""
    meta: dict[str, Any] = {"resourceVersion": str(rev)}
    if initial_end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    zero = b""
    if realistic and rtype.typed:
        meta["creationTimestamp"] = None
        zero = rtype.bookmark_fields
    obj = b'{"metadata":' + orjson.dumps(meta) + zero + b"}"
    return event_line("BOOKMARK", prefix_for(rtype, version), obj)


def error_line(status: dict[str, Any]) -> bytes:
    return b'{"type":"ERROR","object":' + orjson.dumps(status) + b"}\n"


# --- metadata-only views (as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1) ---

PARTIAL_PREFIX = b'{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1",'


def partial_item(item: bytes) -> bytes:
    """A stored item reduced to its metadata (`{"metadata":{…}}`, for PARTIAL_PREFIX)."""
    return b'{"metadata":' + orjson.dumps(orjson.loads(item)["metadata"]) + b"}"


def partial_list_chunks(
    items: list[ObjVersion], meta: dict[str, Any], *, chunk: int = LIST_CHUNK_BYTES
) -> Iterator[bytes]:
    """A `PartialObjectMetadataList` in pieces (items keep their type, like the apiserver's)."""
    parts: list[bytes] = [b'{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":'
                          + orjson.dumps(meta) + b',"items":[']  # fmt: skip
    size = 0
    for i, v in enumerate(items):
        if i:
            parts.append(b",")
        piece = PARTIAL_PREFIX + partial_item(v.item)[1:]
        parts.append(piece)
        size += len(piece)
        if size >= chunk:
            yield b"".join(parts)
            parts, size = [], 0
    parts.append(b"]}")
    yield b"".join(parts)


# --- continue tokens (apiserver:pkg/storage/continue.go) ---------------------


class ContinueError(ValueError):
    """A malformed continue token; the message follows `DecodeContinue`."""


def encode_continue(start_key: str, rv: int) -> str:
    """`EncodeContinue`: base64url without padding of {"v","rv","start"}."""
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start_key})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_continue(token: str) -> tuple[str, int]:
    """`DecodeContinue`: the start key (relative to the list prefix) and the RV."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as e:
        raise ContinueError(f"continue key is not valid: {e}") from None
    if not isinstance(data, dict):
        raise ContinueError("continue key is not valid: not an object")
    if data.get("v") != "meta.k8s.io/v1":
        raise ContinueError(
            f"continue key is not valid: server does not recognize this encoded version {data.get('v')}"
        )
    rv, start = data.get("rv"), data.get("start")
    if not isinstance(rv, int) or rv == 0:
        raise ContinueError(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        )
    if not isinstance(start, str) or not start:
        raise ContinueError("continue key is not valid: encoded start key empty (version meta.k8s.io/v1)")
    cleaned = posixpath.normpath(start.rstrip("\x00")) if start.rstrip("\x00") else ""
    if cleaned != start.rstrip("\x00") or cleaned.startswith(("/", "../")) or cleaned == "..":
        raise ContinueError("continue key is not valid: key must be a clean relative path")
    return start, rv
