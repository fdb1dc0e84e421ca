"""How stored objects' metadata is shaped: timestamps, managedFields entries, key order.

Split out of `objects.py` so that module holds the write verbs (create, update,
patch, delete and their checks) while this one holds the pure functions that
shape an object the way the API server serialises it, shared with the workload
generators (`natives.py`, `workload.py`, `crds.py`).
"""

from __future__ import annotations

import time
from typing import Any

_META_ORDER = (
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
)
_KEEP_META = ("labels", "annotations", "finalizers", "ownerReferences")


def rfc3339(t: float) -> str:
    """`t` (seconds since the epoch) as the API server writes timestamps."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def fields_v1(value: Any) -> dict[str, Any]:
    """A `FieldsV1` set for `value`, in the shape server-side apply records."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            sub = fields_v1(v)
            out[f"f:{k}"] = {".": {}, **sub} if isinstance(v, dict) and v else sub
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                out[f'k:{{"name":"{item["name"]}"}}'] = {".": {}, **fields_v1(item)}
    return out


def managed_entry(
    obj: dict[str, Any], *, manager: str, api_version: str, now: float, status: bool
) -> dict[str, Any]:
    """The managedFields entry `manager` gets for writing `obj` (its status part only if `status`)."""
    meta = obj.get("metadata") or {}
    tracked: dict[str, Any] = {}
    kept = {k: meta[k] for k in _KEEP_META if k in meta}
    if kept:
        tracked["metadata"] = kept
    for k, v in obj.items():
        if k in ("metadata", "apiVersion", "kind") or (k == "status") != status:
            continue
        tracked[k] = v
    entry: dict[str, Any] = {
        "apiVersion": api_version,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1(tracked),
        "manager": manager,
        "operation": "Update",
        "time": rfc3339(now),
    }
    if status:
        entry["subresource"] = "status"
    return entry


def ordered_object(obj: dict[str, Any], *, crd: bool) -> dict[str, Any]:
    """metadata, spec, the rest, status: the order real objects have; metadata keys in
    `ObjectMeta` field order for built-ins, sorted for custom resources (unstructured)."""
    meta = obj["metadata"]
    meta.setdefault("resourceVersion", "")  # holds its place; the storage sets it
    if crd:
        ordered_meta = dict(sorted(meta.items()))
    else:
        ordered_meta = {k: meta[k] for k in _META_ORDER if k in meta}
        ordered_meta.update((k, v) for k, v in meta.items() if k not in ordered_meta)
    head: dict[str, Any] = {"metadata": ordered_meta}
    if "spec" in obj:
        head["spec"] = obj["spec"]
    rest = {k: v for k, v in obj.items() if k not in ("metadata", "spec", "status", "kind", "apiVersion")}
    tail = {"status": obj["status"]} if "status" in obj else {}
    return {**head, **rest, **tail}


def same_object(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal but for resourceVersion and managedFields: an update that changes nothing else is a no-op."""
    strip = ("resourceVersion", "managedFields")
    am = {k: v for k, v in a.get("metadata", {}).items() if k not in strip}
    bm = {k: v for k, v in b.get("metadata", {}).items() if k not in strip}
    if am != bm:
        return False
    return {k: v for k, v in a.items() if k != "metadata"} == {k: v for k, v in b.items() if k != "metadata"}


def spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    """Everything but metadata and status: a change to it bumps `metadata.generation`."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}
