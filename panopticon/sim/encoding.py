"""Wire bytes: objects, lists, watch events and continue tokens, by concatenation.

Objects are stored pre-serialised without `kind`/`apiVersion` (see storage.py);
here they get the right type prefix for the requested version: `{"kind":…,
"apiVersion":…,` for built-ins (Go's typed encoder order), `{"apiVersion":…,
"kind":…,` for custom resources (unstructured, sorted keys). Built-in list items
carry no type at all (B.4), custom-resource items do.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import orjson

from panopticon.sim.resources import ResourceType
from panopticon.sim.storage import ObjVersion

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


def list_body(rtype: ResourceType, version: str, items: Iterable[ObjVersion], meta: dict[str, Any]) -> bytes:
    """A `<Kind>List` whose items are the stored bytes (prefixed for custom resources)."""
    head = b"".join(
        (
            kind_prefix(rtype.list_kind, rtype.api_version(version), rtype.crd),
            b'"metadata":',
            orjson.dumps(meta),
            b',"items":[',
        )
    )
    if rtype.typed:
        body = b",".join([v.item for v in items])
    else:
        prefix = prefix_for(rtype, version)
        parts: list[bytes | memoryview] = []
        for v in items:
            parts.append(b",")
            parts.append(prefix)
            parts.append(memoryview(v.item)[1:])
        body = b"".join(parts[1:])
    return b"".join((head, body, b"]}"))


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
