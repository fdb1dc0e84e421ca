"""Table columns of the built-in kinds, as kube-apiserver prints them.

Column names, types and priorities follow kubernetes `pkg/printers/
internalversion/printers.go` (`AddHandlers`); cells follow its `print*`
functions for the fields the simulator's objects carry. Ages follow
apimachinery `util/duration.HumanDuration`. Priority-1 columns are the ones
`kubectl get -o wide` adds.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from typing import Any

from kubesim.scale import selector_string

Column = dict[str, Any]
Obj = dict[str, Any]
Printer = tuple[list[Column], Callable[[Obj, float], list[Any]]]

NAME_COLUMN: Column = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name automatically. Name "
    "is primarily intended for creation idempotence and configuration definition. Cannot be updated. More "
    "info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    "priority": 0,
}
NONE = "<none>"


def _col(name: str, type_: str = "string", priority: int = 0, fmt: str = "") -> Column:
    return {"name": name, "type": type_, "format": fmt, "description": "", "priority": priority}


AGE = _col("Age")


def parse_time(value: Any) -> float | None:
    """An RFC 3339 UTC timestamp (as the simulator writes them) in epoch seconds."""
    if not isinstance(value, str):
        return None
    try:
        return float(calendar.timegm(time.strptime(value[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """apimachinery `duration.HumanDuration`."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def human_age(created: float, now: float) -> str:
    return human_duration(now - created)


def _age(obj: Obj, now: float) -> str:
    created = parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    return human_age(created, now) if created is not None else NONE


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _part(obj: Obj, key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _containers(obj: Obj) -> tuple[str, str]:
    spec = _part(_part(_part(obj, "spec"), "template"), "spec")
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    return ",".join(str(c.get("name", "")) for c in containers), ",".join(
        str(c.get("image", "")) for c in containers
    )


def _wide_workload(obj: Obj, *, selector: bool = True) -> list[Any]:
    names, images = _containers(obj)
    cells: list[Any] = [names, images]
    if selector:
        cells.append(selector_string(_part(obj, "spec").get("selector")) or NONE)
    return cells


def _replicas(obj: Obj) -> int:
    value = _part(obj, "spec").get("replicas")
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def _deployment(obj: Obj, now: float) -> list[Any]:
    status = _part(obj, "status")
    ready = f"{_int(status.get('readyReplicas'))}/{_replicas(obj)}"
    return [
        _name(obj),
        ready,
        _int(status.get("updatedReplicas")),
        _int(status.get("availableReplicas")),
        _age(obj, now),
        *_wide_workload(obj),
    ]


def _replicaset(obj: Obj, now: float) -> list[Any]:
    status = _part(obj, "status")
    counts = [_replicas(obj), _int(status.get("replicas")), _int(status.get("readyReplicas"))]
    return [_name(obj), *counts, _age(obj, now), *_wide_workload(obj)]


def _statefulset(obj: Obj, now: float) -> list[Any]:
    ready = f"{_int(_part(obj, 'status').get('readyReplicas'))}/{_replicas(obj)}"
    return [_name(obj), ready, _age(obj, now), *_wide_workload(obj, selector=False)]


def _daemonset(obj: Obj, now: float) -> list[Any]:
    s = _part(obj, "status")
    keys = ("desiredNumberScheduled", "currentNumberScheduled", "numberReady", "updatedNumberScheduled")
    node_selector = _part(_part(_part(obj, "spec"), "template"), "spec").get("nodeSelector") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(node_selector.items())) or NONE
    counts = [_int(s.get(k)) for k in keys] + [_int(s.get("numberAvailable"))]
    return [_name(obj), *counts, selector, _age(obj, now), *_wide_workload(obj)]


def _pod_status(obj: Obj) -> str:
    status = _part(obj, "status")
    reason = str(status.get("reason") or status.get("phase") or "Unknown")
    for cs in status.get("containerStatuses") or []:
        state = _part(cs, "state") if isinstance(cs, dict) else {}
        waiting, terminated = _part(state, "waiting"), _part(state, "terminated")
        if waiting.get("reason"):
            reason = str(waiting["reason"])
        elif terminated.get("reason"):
            reason = str(terminated["reason"])
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def _pod(obj: Obj, now: float) -> list[Any]:
    spec, status = _part(obj, "spec"), _part(obj, "status")
    statuses = [c for c in status.get("containerStatuses") or [] if isinstance(c, dict)]
    ready = sum(1 for c in statuses if c.get("ready") is True)
    restarts = sum(_int(c.get("restartCount")) for c in statuses)
    gates = spec.get("readinessGates") or []
    return [
        _name(obj),
        f"{ready}/{len(spec.get('containers') or [])}",
        _pod_status(obj),
        str(restarts),
        _age(obj, now),
        status.get("podIP") or NONE,
        spec.get("nodeName") or NONE,
        status.get("nominatedNodeName") or NONE,
        f"{len(gates)}" if gates else NONE,
    ]


def _ports(spec: dict[str, Any]) -> str:
    out = []
    for p in spec.get("ports") or []:
        if not isinstance(p, dict):
            continue
        node = f":{p['nodePort']}" if p.get("nodePort") else ""
        out.append(f"{p.get('port', '')}{node}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or NONE


def _service(obj: Obj, now: float) -> list[Any]:
    spec = _part(obj, "spec")
    kind = spec.get("type") or "ClusterIP"
    ingress = _part(_part(obj, "status"), "loadBalancer").get("ingress") or []
    external = [str(i.get("ip") or i.get("hostname")) for i in ingress if isinstance(i, dict)]
    external += [str(ip) for ip in spec.get("externalIPs") or []]
    if kind == "ExternalName":
        external = [str(spec.get("externalName", ""))]
    shown = ",".join(external) or ("<pending>" if kind == "LoadBalancer" else NONE)
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or NONE
    return [_name(obj), kind, spec.get("clusterIP") or NONE, shown, _ports(spec), _age(obj, now), selector]


def _configmap(obj: Obj, now: float) -> list[Any]:
    return [_name(obj), len(_part(obj, "data")) + len(_part(obj, "binaryData")), _age(obj, now)]


def _secret(obj: Obj, now: float) -> list[Any]:
    count = len(_part(obj, "data")) + len(_part(obj, "stringData"))
    return [_name(obj), obj.get("type") or "Opaque", count, _age(obj, now)]


def _namespace(obj: Obj, now: float) -> list[Any]:
    return [_name(obj), _part(obj, "status").get("phase") or "Active", _age(obj, now)]


def _node(obj: Obj, now: float) -> list[Any]:
    status = _part(obj, "status")
    ready = "Unknown"
    for c in status.get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Ready":
            ready = "Ready" if c.get("status") == "True" else "NotReady"
    if _part(obj, "spec").get("unschedulable"):
        ready += ",SchedulingDisabled"
    labels = (obj.get("metadata") or {}).get("labels") or {}
    prefix = "node-role.kubernetes.io/"
    roles = ",".join(sorted(k[len(prefix) :] for k in labels if k.startswith(prefix))) or NONE
    version = _part(status, "nodeInfo").get("kubeletVersion", "")
    return [_name(obj), ready, roles, _age(obj, now), version]


def _serviceaccount(obj: Obj, now: float) -> list[Any]:
    return [_name(obj), len(obj.get("secrets") or []), _age(obj, now)]


def _job(obj: Obj, now: float) -> list[Any]:
    spec, status = _part(obj, "spec"), _part(obj, "status")
    completions = spec.get("completions")
    shown = f"{_int(status.get('succeeded'))}/{completions if isinstance(completions, int) else 1}"
    state = "Running"
    for c in status.get("conditions") or []:
        if isinstance(c, dict) and c.get("status") == "True" and c.get("type") in ("Complete", "Failed"):
            state = str(c["type"])
    if spec.get("suspend") is True:
        state = "Suspended"
    start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    duration = human_duration((end if end is not None else now) - start) if start is not None else ""
    return [_name(obj), state, shown, duration, _age(obj, now)]


def _cronjob(obj: Obj, now: float) -> list[Any]:
    spec, status = _part(obj, "spec"), _part(obj, "status")
    last = parse_time(status.get("lastScheduleTime"))
    return [
        _name(obj),
        spec.get("schedule", ""),
        spec.get("timeZone") or NONE,
        spec.get("suspend") is True,
        len(status.get("active") or []),
        human_age(last, now) if last is not None else NONE,
        _age(obj, now),
    ]


_WORKLOAD_WIDE = [_col("Containers", priority=1), _col("Images", priority=1), _col("Selector", priority=1)]

PRINTERS: dict[tuple[str, str], Printer] = {
    ("apps", "deployments"): (
        [
            NAME_COLUMN,
            _col("Ready"),
            _col("Up-to-date", "integer"),
            _col("Available", "integer"),
            AGE,
            *_WORKLOAD_WIDE,
        ],
        _deployment,
    ),
    ("apps", "replicasets"): (
        [
            NAME_COLUMN,
            _col("Desired", "integer"),
            _col("Current", "integer"),
            _col("Ready", "integer"),
            AGE,
            *_WORKLOAD_WIDE,
        ],
        _replicaset,
    ),
    ("apps", "statefulsets"): ([NAME_COLUMN, _col("Ready"), AGE, *_WORKLOAD_WIDE[:2]], _statefulset),
    ("apps", "daemonsets"): (
        [NAME_COLUMN]
        + [_col(n, "integer") for n in ("Desired", "Current", "Ready", "Up-to-date", "Available")]
        + [_col("Node Selector"), AGE]
        + _WORKLOAD_WIDE,
        _daemonset,
    ),
    ("", "pods"): (
        [NAME_COLUMN, _col("Ready"), _col("Status"), _col("Restarts"), AGE]
        + [_col(n, priority=1) for n in ("IP", "Node", "Nominated Node", "Readiness Gates")],
        _pod,
    ),
    ("", "services"): (
        [
            NAME_COLUMN,
            _col("Type"),
            _col("Cluster-IP"),
            _col("External-IP"),
            _col("Port(s)"),
            AGE,
            _col("Selector", priority=1),
        ],
        _service,
    ),
    ("", "configmaps"): ([NAME_COLUMN, _col("Data", "integer"), AGE], _configmap),
    ("", "secrets"): ([NAME_COLUMN, _col("Type"), _col("Data", "integer"), AGE], _secret),
    ("", "namespaces"): ([NAME_COLUMN, _col("Status"), AGE], _namespace),
    ("", "nodes"): ([NAME_COLUMN, _col("Status"), _col("Roles"), AGE, _col("Version")], _node),
    ("", "serviceaccounts"): ([NAME_COLUMN, _col("Secrets", "integer"), AGE], _serviceaccount),
    ("batch", "jobs"): (
        [NAME_COLUMN, _col("Status"), _col("Completions"), _col("Duration"), AGE],
        _job,
    ),
    ("batch", "cronjobs"): (
        [
            NAME_COLUMN,
            _col("Schedule"),
            _col("Timezone"),
            _col("Suspend", "boolean"),
            _col("Active", "integer"),
            _col("Last Schedule"),
            AGE,
        ],
        _cronjob,
    ),
}
"""(group, plural) → (column definitions, cells of one object)."""
