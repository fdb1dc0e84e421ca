"""The resource functions: replicas, mode, TLS and resource totals of an object.

Python counterparts of AppsCode's kmodules/resource-metrics calculators, behind
the expression functions `resource_replicas(obj)`, `resource_mode(obj)`,
`resource_uses_tls(obj)`, `total_resource_requests(obj, type)`,
`total_resource_limits(obj, type)`, `app_resource_requests(obj, type)` and
`app_resource_limits(obj, type)`. `type` is `cpu` (reported in cores), `memory`
or `storage` (in bytes).

`summarize` walks an object once and returns every figure; the functions below
are thin wrappers over it, for callers that need one figure. Supported kinds are
in `registry.CALCULATORS`: core workloads and the KubeDB databases.

Errors: `ResourceCalcError` (an unsupported kind, a field of the wrong type, a
missing required field or database container), `QuantityError` (a malformed
quantity); both name the object and the field. No other exception escapes,
whatever the input.
"""

from __future__ import annotations

from panopticon.errors import QuantityError, ResourceCalcError
from panopticon.render.expr.resources.fields import describe
from panopticon.render.expr.resources.registry import CALCULATORS, calculator_for
from panopticon.render.expr.resources.summary import (
    RESOURCE_TYPES,
    ResourceFigures,
    ResourceSummary,
    check_type,
)
from panopticon.render.expr.resources.tally import tally

__all__ = [
    "CALCULATORS",
    "RESOURCE_TYPES",
    "ResourceFigures",
    "ResourceSummary",
    "app_resource_limits",
    "app_resource_requests",
    "resource_mode",
    "resource_replicas",
    "resource_uses_tls",
    "summarize",
    "total_resource_limits",
    "total_resource_requests",
]


def summarize(obj: object) -> ResourceSummary:
    """Every resource figure of `obj`, a whole Kubernetes object, in one walk.

    Raises `ResourceCalcError` for an unsupported kind or an unusable spec (a
    count of the wrong type or out of range, a missing required field). Problems
    with the resources alone (quantities, container lists) do not raise here:
    they are kept in the summary and raised when a figure is read, so replicas,
    mode and TLS stay available.
    """
    if not isinstance(obj, dict):
        raise ResourceCalcError(f"expected a Kubernetes object, got {describe(obj)}")
    kind, calculator = calculator_for(obj)
    try:
        plan = calculator(obj)
    except ResourceCalcError as e:
        raise ResourceCalcError(f"{_label(obj, kind)}: {e}") from e
    try:
        totals = tally(plan)
    except (ResourceCalcError, QuantityError) as e:
        failure = type(e)(f"{_label(obj, kind)}: {e}")
        return ResourceSummary(kind, plan.replicas, plan.mode, plan.uses_tls, None, failure)
    return ResourceSummary(kind, plan.replicas, plan.mode, plan.uses_tls, totals)


def resource_replicas(obj: object) -> int:
    """Pods the object asks for, over all its roles."""
    return summarize(obj).replicas


def resource_mode(obj: object) -> str:
    """The object's topology (`Standalone`, `ReplicaSet`, `Sharded`...); empty for native kinds."""
    return summarize(obj).mode


def resource_uses_tls(obj: object) -> bool:
    """Whether the object configures TLS."""
    return summarize(obj).uses_tls


def total_resource_requests(obj: object, rtype: str) -> float:
    """Requests of every container of every pod (sidecars, exporter), plus storage."""
    return summarize(obj).total_requests[check_type(rtype)]


def total_resource_limits(obj: object, rtype: str) -> float:
    """Limits (requests where no limit is set) of every container of every pod, plus storage."""
    return summarize(obj).total_limits[check_type(rtype)]


def app_resource_requests(obj: object, rtype: str) -> float:
    """Requests of the application containers only, plus storage."""
    return summarize(obj).app_requests[check_type(rtype)]


def app_resource_limits(obj: object, rtype: str) -> float:
    """Limits (requests where no limit is set) of the application containers only, plus storage."""
    return summarize(obj).app_limits[check_type(rtype)]


def _label(obj: dict[object, object], kind: str) -> str:
    """`Kind namespace/name` for messages, whatever metadata holds."""
    metadata = obj.get("metadata")
    name = namespace = None
    if isinstance(metadata, dict):
        name, namespace = metadata.get("name"), metadata.get("namespace")
    if not isinstance(name, str) or len(name) > 253:
        return kind
    if isinstance(namespace, str) and len(namespace) <= 63:
        return f"{kind} {namespace}/{name}"
    return f"{kind} {name}"
