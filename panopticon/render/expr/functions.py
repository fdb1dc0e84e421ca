"""Built-in functions of the expression language.

The contract's functions (`int`, `percentage`, `cpu_cores`, `bytes`, `unix` and the
resource functions) plus `len` (an extension: counts the elements of a list, the
keys of an object or the characters of a string). The names of AppsCode's first
Panopticon release (`toInt`, `toUnix`, `calculateCPU`, `calculateMemory`,
`evaluatePercentage`) are accepted as aliases, with a warning naming the new
function; `evaluatePercentage(a, b)` meant `a × b%`, which is `percentage(b, a)`.

Resource figures are computed once per object and evaluation (`summarize`) and
reused by every resource function call on the same object: six of the KubeDB
configs' metrics call them on the same object.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from panopticon.errors import EvaluationError, MissingValueError
from panopticon.render.expr import resources
from panopticon.render.expr.resources.summary import OFFSETS
from panopticon.render.expr.values import describe, parse_time, to_bool, to_number
from panopticon.render.quantity import cpu_cores, to_bytes
from panopticon.text import numeric_or_none

Env = dict[str, Any]
SUMMARY_CACHE = "$resources"
"""Key in the evaluation environment under which resource summaries are cached."""

_RESOURCE_TYPES = ("cpu", "memory", "storage")


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    min_args: int
    max_args: int
    impl: Callable[[Env, list[Any]], Any]
    pure: bool = True
    """Pure functions of constant arguments are folded at compile time."""
    bind: Callable[[str, tuple[Any, ...]], Callable[[Env], Any] | None] | None = None
    """Optional: for a call whose first argument is the bare param `key` and whose
    others are the constants given, a closure equivalent to `impl` on them (or None
    if there is none). Compiled once; it saves the calls `impl` would make."""


def _int(env: Env, args: list[Any]) -> int:
    v = args[0]
    if v is True or v is False:
        return int(v)
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return int(v.lower() == "true")
    n = to_number(v, "int() argument")
    if isinstance(n, float) and not math.isfinite(n):
        raise EvaluationError(f"int() of {describe(v)}")
    return int(n)


def _percentage(env: Env, args: list[Any]) -> int | float:
    percent, total = args[0], to_number(args[1], "percentage() total")
    round_up = to_bool(args[2], "percentage() roundUp") if len(args) > 2 else None
    if isinstance(percent, str) and percent.strip().endswith("%"):
        scaled = to_number(percent.strip()[:-1], "percentage() percent") * total / 100
        if round_up is None:
            return scaled
        if not math.isfinite(scaled):
            raise EvaluationError(f"percentage() of {describe(percent)} and {total}")
        return math.ceil(scaled) if round_up else math.floor(scaled)
    # Not a percentage: an absolute figure, as Kubernetes' IntOrString means it.
    return to_number(percent, "percentage() percent")


def _unix(env: Env, args: list[Any]) -> int | float:
    return parse_time(args[0])


def _cpu_cores(env: Env, args: list[Any]) -> float:
    if args[0] is None:
        raise MissingValueError("cpu_cores() argument is nil")
    return cpu_cores(args[0])


def _bytes(env: Env, args: list[Any]) -> float:
    if args[0] is None:
        raise MissingValueError("bytes() argument is nil")
    return to_bytes(args[0])


def _len(env: Env, args: list[Any]) -> int:
    v = args[0]
    if isinstance(v, (list, dict, str)):
        return len(v)
    if v is None:
        return 0
    raise EvaluationError(f"len() of {describe(v)}")


def _summary(env: Env, obj: Any, fname: str) -> resources.ResourceSummary:
    if not isinstance(obj, dict):
        if obj is None:
            raise MissingValueError(f"{fname}() argument is nil")
        raise EvaluationError(f"{fname}() needs the object (a param with valuePath: .), got {describe(obj)}")
    summary = summary_of(env, obj)
    if isinstance(summary, EvaluationError):
        raise summary
    return summary


def summary_of(env: Env, obj: dict[str, Any]) -> resources.ResourceSummary | EvaluationError:
    """The summary of `obj`, or why there is none: computed once per evaluation
    environment (kept under SUMMARY_CACHE), failures included, since six metrics
    ask about the same object."""
    cache: dict[int, resources.ResourceSummary | EvaluationError] | None = env.get(SUMMARY_CACHE)
    if cache is None:
        cache = env[SUMMARY_CACHE] = {}
    summary = cache.get(id(obj))
    if summary is None:
        try:
            summary = resources.summarize(obj)
        except EvaluationError as e:
            summary = e
        cache[id(obj)] = summary
    return summary


def _rtype(value: Any, fname: str) -> str:
    if value not in _RESOURCE_TYPES:
        raise EvaluationError(
            f"{fname}() resource type must be one of cpu, memory, storage, not {describe(value)}"
        )
    return str(value)


def _cached(env: Env, obj: Any) -> resources.ResourceSummary | None:
    """The summary of `obj` if this evaluation computed it already (the fast path of
    `_summary`: the resource metrics of a config all read the same object's)."""
    if type(obj) is dict:
        cache = env.get(SUMMARY_CACHE)
        if cache is not None:
            summary = cache.get(id(obj))
            if type(summary) is resources.ResourceSummary:
                return summary
    return None


def _resource_function(fname: str, attr: str) -> Function:
    """A figure that never depends on quantities: `attr` of the summary."""
    pick = operator.attrgetter(attr)

    def impl(env: Env, args: list[Any]) -> Any:
        return pick(_summary(env, args[0], fname))

    def bind(key: str, constants: tuple[Any, ...]) -> Callable[[Env], Any]:
        def figure(env: Env) -> Any:
            obj = env[key]
            summary = _cached(env, obj)
            return pick(summary) if summary is not None else impl(env, [obj])

        return figure

    return Function(fname, 1, 1, impl, pure=False, bind=bind)


def _resource_total(fname: str, index: int) -> Function:
    """A resource total: its figures start at `index` in `ResourceSummary.totals`."""

    def impl(env: Env, args: list[Any]) -> Any:
        summary = _summary(env, args[0], fname)
        summary.checked_totals()  # raises why there are no figures, first
        return summary.figure(index + OFFSETS[_rtype(args[1], fname)])

    def bind(key: str, constants: tuple[Any, ...]) -> Callable[[Env], Any] | None:
        (rtype,) = constants
        if rtype not in _RESOURCE_TYPES:
            return None  # impl reports it, on every evaluation
        offset = index + OFFSETS[rtype]

        def total(env: Env) -> Any:
            obj = env[key]
            if type(obj) is dict:  # _cached, inlined: six metrics per object come here
                summary = env[SUMMARY_CACHE].get(id(obj)) if SUMMARY_CACHE in env else None
                if type(summary) is resources.ResourceSummary and summary.totals is not None:
                    return summary.totals[offset] / 1000  # as summary.figure(offset)
            return impl(env, [obj, rtype])

        return total

    return Function(fname, 2, 2, impl, pure=False, bind=bind)


_TOTALS = {
    "total_resource_requests": 0,
    "total_resource_limits": 3,
    "app_resource_requests": 6,
    "app_resource_limits": 9,
}
"""The resource totals, and where their figures start in `ResourceSummary.totals`."""


def figure_offset(function: str, constants: tuple[Any, ...]) -> int | None:
    """Where `function(obj, *constants)` reads its figure in `ResourceSummary.totals`,
    if it is a resource total of a valid type."""
    start = _TOTALS.get(function)
    if start is None or len(constants) != 1 or constants[0] not in _RESOURCE_TYPES:
        return None
    return start + OFFSETS[constants[0]]


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function("int", 1, 1, _int),
        Function("percentage", 2, 3, _percentage),
        Function("unix", 1, 1, _unix),
        Function("cpu_cores", 1, 1, _cpu_cores),
        Function("bytes", 1, 1, _bytes),
        Function("len", 1, 1, _len),
        _resource_function("resource_replicas", "replicas"),
        _resource_function("resource_mode", "mode"),
        _resource_function("resource_uses_tls", "uses_tls"),
        *(_resource_total(name, index) for name, index in _TOTALS.items()),
    )
}


@dataclass(frozen=True, slots=True)
class Alias:
    """An old function name: the function it maps to and how to reorder arguments."""

    target: str
    argument_order: tuple[int, ...] | None = None


ALIASES: dict[str, Alias] = {
    "toInt": Alias("int"),
    "toUnix": Alias("unix"),
    "calculateCPU": Alias("cpu_cores"),
    "calculateMemory": Alias("bytes"),
    "evaluatePercentage": Alias("percentage", (1, 0)),
}


def numeric_result(value: Any) -> int | float | None:
    """The sample value an expression result denotes (booleans count as 1/0)."""
    if value is True or value is False:
        return int(value)
    return numeric_or_none(value)
