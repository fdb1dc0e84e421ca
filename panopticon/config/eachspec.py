"""The `each` field of a metric: kube-state-metrics' generators in a MetricsConfiguration.

An extension: a metric with `each` takes its series the way kube-state-metrics'
custom resource state (CRS) does (`panopticon.render.each` renders it), so that a CRS
config converted by `panopticon convert --from ksm-crs` serves the same series:

    each:
      type: Gauge            # Gauge, Info or StateSet (any case)
      path: .status.sub      # where the series come from (default: the object);
                             # a list gives one series per element, an object one
                             # per field (Gauge, Info), anything else one series
      labelFromKey: type     # Gauge, Info: the field's name as a label
      labels:                # paths relative to the element
        - {key: active, valuePath: .active}
      valueFrom: .ready      # Gauge: the value (default: the element);
                             # StateSet: the text compared with `list`
      nilIsZero: true        # Gauge: a missing value is 0
      labelName: phase       # StateSet: the label of each state
      list: [Pending, Running]

This module reads the field into an `EachSpec`; `panopticon.config.model` calls it with its
own finding collector, so every problem is reported against its field path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:
    from panopticon.config.model import LabelSpec

EACH_TYPES: Final = ("Gauge", "Info", "StateSet")
EACH_FIELDS: Final = {
    "type": EACH_TYPES,
    "path": EACH_TYPES,
    "labels": EACH_TYPES,
    "labelFromKey": ("Gauge", "Info"),
    "valueFrom": ("Gauge", "StateSet"),
    "nilIsZero": ("Gauge",),
    "labelName": ("StateSet",),
    "list": ("StateSet",),
}
"""Every field of `each`, and the types that use it."""
MAX_STATES: Final = 1000
MAX_LABELS: Final = 64
_BOOLEANS: Final = {"true": True, "false": False}


class Reader(Protocol):
    """What `read_each` needs from the model's finding collector."""

    def error(self, where: str, message: str) -> None: ...

    def warn(self, where: str, message: str) -> None: ...

    def mapping(self, obj: Any, where: str, *, required: bool = False) -> dict[str, Any]: ...

    def sequence(self, obj: Any, where: str, *, limit: int) -> list[Any]: ...

    def text(self, obj: dict[str, Any], key: str, where: str, *, required: bool = False) -> str | None: ...


@dataclass(frozen=True, slots=True)
class EachSpec:
    """A parsed `each` (structure only; `panopticon.render.each` compiles it)."""

    type: str
    """"Gauge", "Info" or "StateSet"."""
    path: str
    labels: tuple[LabelSpec, ...]
    label_from_key: str | None
    value_from: str | None
    nil_is_zero: bool
    label_name: str | None
    states: tuple[str, ...]
    where: str


def read_flag(r: Reader, obj: dict[str, Any], key: str, where: str, *, default: bool) -> bool:
    """A boolean field: true/false, or their text."""
    value = obj.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _BOOLEANS:
        return _BOOLEANS[value.lower()]
    r.error(f"{where}.{key}", "must be true or false")
    return default


def read_each(
    r: Reader,
    raw: Any,
    where: str,
    *,
    label: Callable[[Any, str], LabelSpec | None],
    label_name: Callable[[str], bool],
) -> EachSpec | None:
    """Read `each`; `label` reads one label entry, `label_name` checks a label name."""
    item = r.mapping(raw, where, required=True)
    if not item:
        return None
    for key in item:
        if key not in EACH_FIELDS:
            r.warn(f"{where}.{key}", f"unknown field, ignored (each has {', '.join(EACH_FIELDS)})")
    kind_text = r.text(item, "type", where, required=True)
    if kind_text is None:
        return None
    kind = next((t for t in EACH_TYPES if t.lower() == kind_text.lower()), None)
    if kind is None:
        r.error(f"{where}.type", f"{kind_text!r} is not one of {', '.join(EACH_TYPES)}")
        return None
    for key, types in EACH_FIELDS.items():
        if key in item and kind not in types:
            r.error(f"{where}.{key}", f"is not used by type {kind} (only by {', '.join(types)})")
    labels = tuple(
        spec
        for i, x in enumerate(r.sequence(item.get("labels"), f"{where}.labels", limit=MAX_LABELS))
        if (spec := label(x, f"{where}.labels[{i}]")) is not None
    )
    label_from_key = _name(r, item, "labelFromKey", where, label_name)
    state_label = _name(r, item, "labelName", where, label_name)
    states = _states(r, item, where) if kind == "StateSet" else ()
    if kind == "StateSet" and state_label is None and "labelName" not in item:
        r.error(f"{where}.labelName", "is required for type StateSet")
    return EachSpec(
        type=kind,
        path=r.text(item, "path", where) or ".",
        labels=labels,
        label_from_key=label_from_key,
        value_from=r.text(item, "valueFrom", where) or None,
        nil_is_zero=read_flag(r, item, "nilIsZero", where, default=False),
        label_name=state_label,
        states=states,
        where=where,
    )


def _name(
    r: Reader, item: dict[str, Any], key: str, where: str, label_name: Callable[[str], bool]
) -> str | None:
    text = r.text(item, key, where)
    if text is None or text == "":
        return None
    if not label_name(text) or text.startswith("__"):
        r.error(f"{where}.{key}", f"{text!r} is not a valid Prometheus label name")
        return None
    return text


def _states(r: Reader, item: dict[str, Any], where: str) -> tuple[str, ...]:
    raw = r.sequence(item.get("list"), f"{where}.list", limit=MAX_STATES)
    if not raw:
        r.error(f"{where}.list", "must list at least one state")
        return ()
    states: list[str] = []
    for i, value in enumerate(raw):
        text = value if isinstance(value, str) else None
        if text is None:
            r.error(f"{where}.list[{i}]", "must be a string")
        elif text in states:
            r.error(f"{where}.list[{i}]", f"duplicate state {text!r}")
        else:
            states.append(text)
    return tuple(states)
