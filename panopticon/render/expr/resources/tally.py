"""Resource arithmetic for a `Plan`: Kubernetes' per-pod rules, summed over replicas.

Per pod, as the scheduler counts it:

- runtime = every regular container, plus the metrics exporter if the group runs one;
- a pod needs max(runtime, the largest init container), per resource, because
  init containers run one at a time before the others start;
- a container's limit for a resource is its limit, or its request when no limit
  is set (resource-metrics' rule); requests are only requests;
- storage is the sum of the pod's PersistentVolumeClaim requests (limits likewise).

Application figures count only the application container of each pod (no init
containers, sidecars or exporter) plus the storage. Totals are exact: quantities
are summed as integer milli-units (see `milli_value`), converted once at the end.

This is the hot path (every object, every render). Paths for error messages are
built only when an error is raised: inner functions raise with the path below
them and `_within` prefixes the path above; `_requirements` parses optimistically
and only on failure goes back to find which field was at fault.
"""

from __future__ import annotations

from types import NoneType
from typing import Any, Final, NoReturn

from panopticon.errors import QuantityError, ResourceCalcError
from panopticon.render.expr.resources.fields import JSONMap, describe, sequence
from panopticon.render.expr.resources.plan import Plan, PodGroup
from panopticon.render.expr.resources.summary import Totals
from panopticon.render.quantity import milli_text, milli_value

Requirements = tuple[int, int, int, int]
"""CPU request, memory request, CPU limit, memory limit, in milli-units."""

_HUGE: Final = 10**308
"""Sums below this convert to a double (in cores or bytes) without overflow."""

_NONE: Final[Requirements] = (0, 0, 0, 0)

_OBJECT_OR_NULL: Final = (dict, NoneType)

_QUANTITY_FIELDS: Final = (
    ("requests", "cpu"),
    ("requests", "memory"),
    ("limits", "cpu"),
    ("limits", "memory"),
)


def tally(plan: Plan) -> Totals:
    """The plan's four figures, in milli-units. Raises `ResourceCalcError` or `QuantityError` (with
    the field's path) for malformed resources or a missing application container."""
    exporter = _NONE
    if plan.exporter is not None:
        try:
            exporter = _container(plan.exporter)
        except (ResourceCalcError, QuantityError) as e:
            raise _within(plan.exporter_where, e) from e
    # t: total, a: application, s: storage; r: requests, l: limits; c: cpu, m: memory.
    t_rc = t_rm = t_lc = t_lm = a_rc = a_rm = a_lc = a_lm = s_r = s_l = 0
    for group in plan.groups:
        n = group.replicas
        if group.pod_spec is not None or group.legacy_resources is not None:
            (p_rc, p_rm, p_lc, p_lm), (i_rc, i_rm, i_lc, i_lm), app = _pod(group)
            if group.exporter:
                e_rc, e_rm, e_lc, e_lm = exporter
                p_rc, p_rm, p_lc, p_lm = p_rc + e_rc, p_rm + e_rm, p_lc + e_lc, p_lm + e_lm
            # max() by comparison: a builtin call costs more than the test.
            t_rc += n * (p_rc if p_rc > i_rc else i_rc)
            t_rm += n * (p_rm if p_rm > i_rm else i_rm)
            t_lc += n * (p_lc if p_lc > i_lc else i_lc)
            t_lm += n * (p_lm if p_lm > i_lm else i_lm)
            a_rc += n * app[0]
            a_rm += n * app[1]
            a_lc += n * app[2]
            a_lm += n * app[3]
        elif group.exporter and exporter is not _NONE:
            # No pod template (many KubeDB objects leave it to the operator): the
            # exporter alone, whose figures are never negative.
            e_rc, e_rm, e_lc, e_lm = exporter
            t_rc, t_rm, t_lc, t_lm = t_rc + n * e_rc, t_rm + n * e_rm, t_lc + n * e_lc, t_lm + n * e_lm
        for where, claim in group.storage:
            try:
                request, limit = _claim(claim)
            except (ResourceCalcError, QuantityError) as e:
                raise _within(where, e) from e
            s_r += n * request
            s_l += n * limit
    totals = (t_rc, t_rm, s_r, t_lc, t_lm, s_l, a_rc, a_rm, s_r, a_lc, a_lm, s_l)
    # Every sum is non-negative and no application figure exceeds its total, so
    # this bounds them all (cheaper than max() of the twelve).
    if t_rc + t_rm + t_lc + t_lm + s_r + s_l >= _HUGE:
        try:  # every figure must convert to a double when it is read
            _ = [total / 1000 for total in totals]
        except OverflowError as e:
            raise ResourceCalcError("resource total too large to report") from e
    return totals


def _pod(group: PodGroup) -> tuple[Requirements, Requirements, Requirements]:
    """One pod's runtime, init-container and application requirements."""
    spec, name, where, legacy = group.pod_spec, group.app_container, group.where, group.legacy_resources
    p_rc = p_rm = p_lc = p_lm = i_rc = i_rm = i_lc = i_lm = 0
    app = _NONE
    found = False
    if spec is not None:
        containers = spec.get("containers")
        if type(containers) is not list:
            containers = sequence(spec, "containers", where)  # [] if absent, else raises
        for index, container in enumerate(containers):
            resources = container.get("resources") if type(container) is dict else None
            try:
                # One call per container for the common shape; `_container` for the
                # others, and again to raise with the path under the container.
                needs = _requirements(resources) if type(resources) is dict else _container(container)
            except (ResourceCalcError, QuantityError):
                try:
                    needs = _container(container)
                except (ResourceCalcError, QuantityError) as e:
                    raise _within(f"{where}.containers[{index}]", e) from e
            rc, rm, lc, lm = needs
            p_rc, p_rm, p_lc, p_lm = p_rc + rc, p_rm + rm, p_lc + lc, p_lm + lm
            if name is None:
                app = (p_rc, p_rm, p_lc, p_lm)
            elif not found and container.get("name") == name:
                app, found = needs, True
        init = spec.get("initContainers")
        if init is not None:
            for index, container in enumerate(sequence(spec, "initContainers", where)):
                try:
                    rc, rm, lc, lm = _container(container)
                except (ResourceCalcError, QuantityError) as e:
                    raise _within(f"{where}.initContainers[{index}]", e) from e
                i_rc, i_rm, i_lc, i_lm = max(i_rc, rc), max(i_rm, rm), max(i_lc, lc), max(i_lm, lm)
        if name is not None and not found and legacy is None and containers:
            raise ResourceCalcError(f"{where}.containers: no container named {name!r}")
    if name is not None and not found and legacy is not None:
        try:
            app = rc, rm, lc, lm = _requirements(legacy)
        except (ResourceCalcError, QuantityError) as e:
            raise _within(group.legacy_where or f"{where}.resources", e) from e
        p_rc, p_rm, p_lc, p_lm = p_rc + rc, p_rm + rm, p_lc + lc, p_lm + lm
    return (p_rc, p_rm, p_lc, p_lm), (i_rc, i_rm, i_lc, i_lm), app


def _container(container: Any) -> Requirements:
    if type(container) is not dict:
        raise ResourceCalcError(f"expected an object, got {describe(container)}")
    resources = container.get("resources")
    if resources is None:
        return _NONE
    if type(resources) is not dict:
        raise ResourceCalcError(f"resources: expected an object, got {describe(resources)}")
    try:
        return _requirements(resources)
    except (ResourceCalcError, QuantityError) as e:
        raise _within("resources", e) from e


def _requirements(resources: JSONMap) -> Requirements:
    requests, limits = resources.get("requests"), resources.get("limits")
    if type(requests) is dict and type(limits) is dict:
        # The common shape, every quantity a string: a third of the general path's
        # bytecodes. The same result; anything else takes the general path.
        cpu, memory = requests.get("cpu"), requests.get("memory")
        cpu_limit, memory_limit = limits.get("cpu"), limits.get("memory")
        if type(cpu) is str and type(memory) is str and type(cpu_limit) is str and type(memory_limit) is str:
            try:
                cpu, memory = milli_text(cpu), milli_text(memory)
                cpu_limit, memory_limit = milli_text(cpu_limit), milli_text(memory_limit)
            except QuantityError:
                _fault(resources)
            if cpu < 0 or memory < 0 or cpu_limit < 0 or memory_limit < 0:
                _fault(resources)
            return cpu, memory, cpu_limit, memory_limit
    return _general_requirements(resources, requests, limits)


def _general_requirements(resources: JSONMap, requests: Any, limits: Any) -> Requirements:
    """`_requirements` for any shape: absent fields, JSON numbers, errors."""
    if type(requests) not in _OBJECT_OR_NULL or type(limits) not in _OBJECT_OR_NULL:
        _fault(resources)
    try:
        # Quantities are nearly always strings: `milli_text` (cached) without a call
        # to `_quantity` first.
        cpu = memory = 0
        if requests is not None:
            value = requests.get("cpu")
            cpu = milli_text(value) if type(value) is str else _quantity(value)
            value = requests.get("memory")
            memory = milli_text(value) if type(value) is str else _quantity(value)
        cpu_limit, memory_limit = cpu, memory
        if limits is not None:
            value = limits.get("cpu")
            if value is not None:
                cpu_limit = milli_text(value) if type(value) is str else _quantity(value)
            value = limits.get("memory")
            if value is not None:
                memory_limit = milli_text(value) if type(value) is str else _quantity(value)
    except QuantityError:
        _fault(resources)
    if cpu < 0 or memory < 0 or cpu_limit < 0 or memory_limit < 0:
        _fault(resources)
    return cpu, memory, cpu_limit, memory_limit


def _quantity(value: object) -> int:
    if value is None:
        return 0
    return milli_text(value) if type(value) is str else milli_value(value)


def _fault(resources: JSONMap) -> NoReturn:
    """Raise the error for the first bad field of a resource requirements object."""
    for field, name in _QUANTITY_FIELDS:
        parent = resources.get(field)
        if parent is None:
            continue
        if type(parent) is not dict:
            raise ResourceCalcError(f"{field}: expected an object, got {describe(parent)}")
        _checked_quantity(parent.get(name), f"{field}.{name}")
    raise ResourceCalcError("invalid resource requirements")  # unreachable: some field failed


def _claim(claim: JSONMap) -> tuple[int, int]:
    """A PersistentVolumeClaim spec's storage request and limit (the request if no limit)."""
    resources = claim.get("resources")
    if type(resources) is dict and resources.get("limits") is None:
        # The common shape, `resources: {requests: {storage: 1Gi}}`, read directly;
        # anything else (or any error) goes the checked way below.
        requests = resources.get("requests")
        if type(requests) is dict:
            value = requests.get("storage")
            if type(value) is str:
                try:
                    milli = milli_text(value)
                except QuantityError:
                    milli = -1
                if milli >= 0:
                    return milli, milli
    return _checked_claim(claim)


def _checked_claim(claim: JSONMap) -> tuple[int, int]:
    """`_claim`, checking every field and naming the bad one."""
    resources = claim.get("resources")
    if resources is None:
        return 0, 0
    if type(resources) is not dict:
        raise ResourceCalcError(f"resources: expected an object, got {describe(resources)}")
    request = limit = None
    for field in ("requests", "limits"):
        parent = resources.get(field)
        if parent is None:
            continue
        if type(parent) is not dict:
            raise ResourceCalcError(f"resources.{field}: expected an object, got {describe(parent)}")
        value = _checked_quantity(parent.get("storage"), f"resources.{field}.storage")
        if field == "requests":
            request = value
        else:
            limit = value
    request = request or 0
    return request, request if limit is None else limit


def _checked_quantity(value: object, where: str) -> int | None:
    """The milli-units of `value` (None if absent), with `where` in any error."""
    if value is None:
        return None
    try:
        milli = milli_value(value)
    except QuantityError as e:
        raise QuantityError(f"{where}: {e}") from e
    if milli < 0:
        raise ResourceCalcError(f"{where}: a resource quantity cannot be negative")
    return milli


def _within(where: str, error: ResourceCalcError | QuantityError) -> ResourceCalcError | QuantityError:
    """`error` again, under `where`.

    Inner messages start either with `expected ...` (about the value at `where`
    itself) or with a relative path (`requests.cpu: ...`), which gets `where` in front.
    """
    message = str(error)
    return type(error)(f"{where}: {message}" if message.startswith("expected ") else f"{where}.{message}")
