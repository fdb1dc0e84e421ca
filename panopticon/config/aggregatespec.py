"""Reading a metric's `aggregate: {function, by}` (see panopticon.render.aggregate for what it does).

The config layer's half of the extension: the field's structure, read from untrusted
input with every problem reported by field path. Whether each `by` key is a label the
metric has is decided where the labels are known (`check_by`, called by
`panopticon.render.program`), and whether the metric may be aggregated at all (no `states`,
no `each`) by `panopticon.config.model`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from panopticon.config.findings import type_name

FUNCTIONS = ("count", "sum", "min", "max")
"""What a group's value is: how many series (objects) fall in it, or their values'
sum, smallest or largest."""
MAX_BY = 32
"""Label keys one aggregation may group by: more than any useful grouping."""
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_FIELDS = frozenset({"function", "by"})


@dataclass(frozen=True, slots=True)
class Aggregation:
    """What an aggregate family is: served as one series per group of `by` values.

    Part of the family's identity (`FamilyHeader.aggregate`): two configs share an
    aggregate family only when they agree on it, and a family is never both
    aggregated and per-object."""

    function: str
    by: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.function} by ({', '.join(self.by)})"


@dataclass(frozen=True, slots=True)
class AggregateSpec:
    aggregation: Aggregation
    where: str


def read_metric_aggregate(
    item: dict[str, Any], where: str, error: Callable[[str, str], None]
) -> AggregateSpec | None:
    """The `aggregate` of metric `item` at `where` (None when it has none or it is unusable).

    Refused on a StateSet (`states`, or `each`): its series are one per state with a
    0/1 value each, whose count or sum says nothing a `by` on a label read from the
    same field would not say directly (`count by (phase)` of a metric labelled with
    the phase); and `each` follows kube-state-metrics' rules, which have no grouping."""
    if "aggregate" not in item or item["aggregate"] is None:
        return None
    at = f"{where}.aggregate"
    if item.get("states"):
        error(
            at,
            "cannot aggregate a metric with states (a StateSet): aggregate a metricValue, "
            "e.g. count by a label read from the field the states test",
        )
        return None
    if "each" in item:
        error(at, "cannot aggregate a metric with each (kube-state-metrics' rules have no grouping)")
        return None
    return read_aggregate(item["aggregate"], at, error)


def read_aggregate(raw: Any, where: str, error: Callable[[str, str], None]) -> AggregateSpec | None:
    """`aggregate` of a metric at `where`, errors reported by field path; None if unusable."""
    if not isinstance(raw, dict):
        error(where, f"must be an object {{function, by}}, not {type_name(raw)}")
        return None
    ok = True
    for key in sorted(str(k) for k in raw if k not in _FIELDS):
        error(f"{where}.{key[:40]}", "unknown field (aggregate takes function and by)")
        ok = False
    function = raw.get("function")
    if function is None:
        error(f"{where}.function", f"is required (one of {', '.join(FUNCTIONS)})")
        ok = False
    elif function not in FUNCTIONS:
        error(f"{where}.function", f"{str(function)[:40]!r} is not one of {', '.join(FUNCTIONS)}")
        ok = False
    by = _by(raw.get("by"), f"{where}.by", error)
    if by is None or not ok:
        return None
    assert isinstance(function, str)
    return AggregateSpec(Aggregation(function, by), where)


def _by(raw: Any, where: str, error: Callable[[str, str], None]) -> tuple[str, ...] | None:
    if raw is None:
        return ()  # no grouping: one series, the whole family's figure
    if not isinstance(raw, list):
        error(where, f"must be a list of label keys, not {type_name(raw)}")
        return None
    if len(raw) > MAX_BY:
        error(where, f"has {len(raw)} entries; at most {MAX_BY} are allowed")
        return None
    keys: list[str] = []
    ok = True
    for i, key in enumerate(raw):
        if not isinstance(key, str) or not _LABEL_NAME.fullmatch(key):
            error(f"{where}[{i}]", f"{str(key)[:40]!r} is not a label key")
            ok = False
        elif key in keys:
            error(f"{where}[{i}]", f"duplicate label key {key!r}")
            ok = False
        else:
            keys.append(key)
    return tuple(keys) if ok else None


def check_by(spec: AggregateSpec, labels: Collection[str], error: Callable[[str, str], None]) -> bool:
    """Whether every `by` key is one of the metric's `labels` (those its series carry
    before aggregation: the object's name and namespace labels unless defaultLabels is
    false, commonLabels, the metric's labels); each one that is not is an error."""
    ok = True
    for i, key in enumerate(spec.aggregation.by):
        if key not in labels:
            known = ", ".join(sorted(labels)) or "none"
            error(f"{spec.where}.by[{i}]", f"{key!r} is not a label of this metric (its labels: {known})")
            ok = False
    return ok
