"""The `scale` subresource of the built-in workloads, as `autoscaling/v1` Scale.

Deployments, ReplicaSets, StatefulSets (apps/v1) and ReplicationControllers
serve `…/{name}/scale` (kube-apiserver `pkg/registry/apps/deployment/storage/
storage.go` `ScaleREST`, and its ReplicaSet, StatefulSet and RC twins):
GET shows the object as a Scale; PUT or PATCH changes a Scale and writes its
`spec.replicas` back to the object, nothing else. `kubectl scale` PATCHes
`{"spec":{"replicas":N}}` as a merge patch; the shard count follows a
StatefulSet's `spec.replicas`, so scaling it this way resizes the ring as
scaling it with any other write does.

Pure functions of objects; the handler reads and writes through `Objects`.
"""

from __future__ import annotations

from typing import Any

import orjson

from kubesim import errors
from kubesim.patch import APPLY, MERGE, PATCH_TYPES, patched_object
from kubesim.resources import ResourceType
from panopticon.config.documents import parse_documents
from panopticon.errors import DocumentError

SCALE_API_VERSION = "autoscaling/v1"


def serves_scale(rtype: ResourceType) -> bool:
    """Built-in kinds with a scale subresource (custom resources' scale is not served)."""
    return not rtype.crd and "scale" in rtype.subresources


def selector_string(selector: Any) -> str:
    """`metav1.FormatLabelSelector` (and the RC's map selector): `a=b,c in (d,e)`."""
    if not isinstance(selector, dict):
        return ""
    labels = selector.get("matchLabels", selector if "matchExpressions" not in selector else {})
    parts = [f"{k}={v}" for k, v in sorted(labels.items())] if isinstance(labels, dict) else []
    for req in selector.get("matchExpressions") or []:
        if not isinstance(req, dict):
            continue
        key, op, values = req.get("key", ""), req.get("operator", ""), req.get("values") or []
        joined = ",".join(str(v) for v in values)
        parts.append(
            {
                "In": f"{key} in ({joined})",
                "NotIn": f"{key} notin ({joined})",
                "Exists": str(key),
                "DoesNotExist": f"!{key}",
            }.get(op, f"{key} {op}")
        )
    return ",".join(parts)


def spec_replicas(obj: dict[str, Any]) -> int:
    """`spec.replicas`, 1 when unset (the apiserver defaults it to 1 on create)."""
    value = (obj.get("spec") or {}).get("replicas")
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The object seen through its scale subresource."""
    meta = obj.get("metadata") or {}
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    kept = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
    replicas = status.get("replicas", 0)
    return {
        "kind": "Scale",
        "apiVersion": SCALE_API_VERSION,
        "metadata": {k: meta[k] for k in kept if k in meta},
        "spec": {"replicas": spec_replicas(obj)},
        "status": {"replicas": replicas, "selector": selector_string(spec.get("selector"))},
    }


def patched_scale(current: dict[str, Any], body: bytes, content_type: str) -> dict[str, Any]:
    """A PATCH of the Scale: merge, strategic or JSON patch; an apply patch (YAML) merges."""
    kind = content_type.split(";", maxsplit=1)[0].strip()
    if kind not in PATCH_TYPES:
        raise errors.unsupported_media_type(kind)
    try:
        if kind == APPLY:
            docs = parse_documents(body, source="request body")
            doc, kind = (docs[0].body if docs else {}), MERGE
        else:
            doc = orjson.loads(body)
    except (orjson.JSONDecodeError, DocumentError) as e:
        raise errors.bad_request(f"error decoding patch: {e}") from None
    return patched_object(current, doc, kind)


def replicas_of(scale: Any, rtype: ResourceType, *, name: str, current_rv: str) -> int:
    """The new replica count of a written Scale; 409 on a stale resourceVersion, 422 if invalid."""
    if not isinstance(scale, dict):
        raise errors.bad_request("the body of the request is not an object")
    rv = (scale.get("metadata") or {}).get("resourceVersion")
    if rv and rv != current_rv:
        raise errors.conflict(
            rtype.plural,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
            group=rtype.group,
        )
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise errors.invalid(
            [
                errors.FieldError(
                    "Invalid", "spec.replicas", "must be greater than or equal to 0", value=str(replicas)
                )
            ],
            kind="Scale",
            group="autoscaling",
            name=name,
        )
    return replicas


def with_replicas(obj: dict[str, Any], replicas: int) -> dict[str, Any]:
    """The object with `spec.replicas` set (the only field a scale write changes)."""
    spec = dict(obj.get("spec") or {})
    spec["replicas"] = replicas
    return {**obj, "spec": spec}
