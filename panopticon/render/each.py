"""Metrics with `each`: kube-state-metrics' custom resource state generators.

A config whose metrics use `each` (panopticon.config.eachspec) renders the series
kube-state-metrics (KSM) would serve for the same CRS config, so that configs
converted by `panopticon convert --from ksm-crs` are drop-in replacements. This module
renders such metrics (`panopticon.render.eachcompile` compiles them); the rules are KSM's
(pkg/customresourcestate):

- `each.path` resolves on the object. A list gives one series per element; an object
  one per field (Gauge, Info; the field name under `labelFromKey`); anything else,
  one series. StateSet compares the text at `valueFrom` with each state of `list`.
- Labels are gathered in a dict, later writers winning: the metric's and the config's
  constant labels, then their map labels (`key: prefix_*`: every field of an object),
  then their path labels; the element's own labels (`labelFromKey`, the state,
  `each.labels` on the element, and for a Gauge over an object, `each.labels` again on
  the object) take precedence over all of those. Labels are written in key order.
- Values convert as KSM's do (panopticon.render.ksmvalues); label values are written as Go's
  `%v` writes them. Series of one object and metric come out in KSM's order (by their
  element labels), each label set once (a repeat is dropped and counted).

Unlike KSM, a value that is missing is not an error (as everywhere in Panopticon),
and the object's name and namespace labels are added unless `spec.defaultLabels` is
false (converted configs set it false: KSM adds no such labels).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from panopticon.config.eachspec import EachSpec
from panopticon.config.model import LABEL_NAME
from panopticon.errors import EvaluationError
from panopticon.render.exposition import FamilyHeader, escape_label_value, sample_value
from panopticon.render.ksmvalues import go_text, ksm_number, sanitize_label_name
from panopticon.render.paths import MISSING, Getter, KeyEquals, Path
from panopticon.render.shapes.metrics import MAX_LABEL_VALUE, MAX_SERIES_PER_METRIC, Metric, RenderError
from panopticon.render.shapes.values import Env

MAX_MAP_LABELS: Final = 256
"""Most labels one map label adds to a series; the rest are dropped and counted."""

Labels = dict[str, str]
"""Label name -> escaped value text."""
Writer = tuple[bool, str, Getter]
"""A label read from an object: (is a map, name or map prefix, getter)."""
PathCompiler = Callable[[str, str], Path | None]
"""(path text, field) -> the compiled path, or None after reporting an error."""


@dataclass(frozen=True, slots=True)
class LabelSet:
    """One level's labels: constants first, then map labels, then path labels."""

    constants: tuple[tuple[str, str], ...]
    writers: tuple[Writer, ...]

    def write(self, obj: Any, out: Labels, family: str, errors: list[RenderError]) -> None:
        for key, text in self.constants:
            out[key] = text
        write_labels(self.writers, obj, out, family, errors)


def write_labels(
    writers: Iterable[Writer], obj: Any, out: Labels, family: str, errors: list[RenderError]
) -> None:
    """Resolve `writers` on `obj` into `out` (a value that is missing writes nothing)."""
    for is_map, key, getter in writers:
        v = getter(obj)
        if v is MISSING:
            continue
        if not is_map:
            out[key] = label_value(v, key, family, errors)
            continue
        if type(v) is not dict:
            continue
        for count, (field, item) in enumerate(v.items()):
            if count == MAX_MAP_LABELS:
                errors.append(RenderError(family, f"{key}: more than {MAX_MAP_LABELS} fields; rest dropped"))
                break
            name = sanitize_label_name(key[:-1] + str(field))
            if not LABEL_NAME.fullmatch(name) or name.startswith("__"):
                errors.append(RenderError(family, f"{key}: {name!r} is not a usable label name"))
                continue
            out[name] = label_value(item, name, family, errors)


def label_value(value: Any, key: str, family: str, errors: list[RenderError]) -> str:
    """A label value as KSM writes it (Go's %v), cut to MAX_LABEL_VALUE, escaped."""
    text = go_text(value, MAX_LABEL_VALUE + 1)
    if len(text) > MAX_LABEL_VALUE:
        errors.append(RenderError(family, f"label {key} cut to {MAX_LABEL_VALUE} characters"))
        text = text[:MAX_LABEL_VALUE]
    return escape_label_value(text)


Value = tuple[Labels, float]
"""One series of a generator before the family's labels: its element labels, its value."""


class Generator:
    """One `each`: its series for one object, with the family's labels."""

    __slots__ = (
        "element",
        "family",
        "get",
        "kind",
        "label_from_key",
        "name",
        "nil_is_zero",
        "single_key",
        "state_label",
        "states",
        "value_from",
    )

    def __init__(self, name: str, spec: EachSpec, *, path: Path, value_from: Path | None) -> None:
        self.name = name
        self.kind = spec.type
        self.get = path.getters[0]
        self.value_from = value_from.getters[0] if value_from is not None else None
        self.single_key = _single_key(value_from)
        self.nil_is_zero = spec.nil_is_zero
        self.label_from_key = spec.label_from_key or ""
        self.state_label = spec.label_name or ""
        self.states = spec.states
        self.element = LabelSet((), ())
        self.family = LabelSet((), ())

    def values(self, v: Any, errors: list[RenderError]) -> list[Value]:
        """The element series for `v`, the value at `each.path` (None if missing)."""
        if self.kind == "Gauge":
            return self.gauges(v, errors)
        if self.kind == "Info":
            return self.infos(v, errors)
        out: list[Value] = []
        for item in _bounded(v, self.name, errors) if type(v) is list else (v,):
            out.extend(self.state_set(item, errors))
            if len(out) > MAX_SERIES_PER_METRIC:
                errors.append(
                    RenderError(self.name, f"more than {MAX_SERIES_PER_METRIC} series; rest dropped")
                )
                del out[MAX_SERIES_PER_METRIC:]
                break
        return out

    def gauges(self, v: Any, errors: list[RenderError]) -> list[Value]:
        out: list[Value] = []
        if type(v) is dict:
            for key, item in _bounded(v.items(), self.name, errors):
                if self.single_key is not None and key == self.single_key:
                    # KSM reads a one-segment valueFrom naming this very field from the field.
                    try:
                        value: Value | None = ({}, ksm_number(item, nil_is_zero=self.nil_is_zero))
                    except EvaluationError as e:
                        errors.append(RenderError(self.name, f"[{key}]: {e}"))
                        continue
                else:
                    value = self.gauge(item, errors)
                if value is None:
                    continue
                labels = value[0]
                if key and self.label_from_key:
                    labels[self.label_from_key] = label_value(key, self.label_from_key, self.name, errors)
                self.element.write(item, labels, self.name, errors)
                # KSM resolves the element's labels on the object too (its parent context).
                self.element.write(v, labels, self.name, errors)
                out.append(value)
        elif type(v) is list:
            for item in _bounded(v, self.name, errors):
                value = self.gauge(item, errors)
                if value is not None:
                    self.element.write(item, value[0], self.name, errors)
                    out.append(value)
        else:
            value = self.gauge(v, errors)
            if value is not None:
                self.element.write(v, value[0], self.name, errors)
                out.append(value)
        return out

    def gauge(self, item: Any, errors: list[RenderError]) -> Value | None:
        """A Gauge's value for one element: None when it is missing or bad (counted)."""
        raw = item if self.value_from is None else self.value_from(item)
        if raw is MISSING or raw is None:
            return ({}, 0.0) if self.nil_is_zero else None
        try:
            return ({}, ksm_number(raw))
        except EvaluationError as e:
            errors.append(RenderError(self.name, str(e)))
            return None

    def infos(self, v: Any, errors: list[RenderError]) -> list[Value]:
        out: list[Value] = []
        if type(v) is list:
            for item in _bounded(v, self.name, errors):
                self.info(item, out, {}, errors)
        elif type(v) is dict:
            for key, item in _bounded(v.items(), self.name, errors):
                labels: Labels = {}
                if key and self.label_from_key:
                    labels[self.label_from_key] = label_value(key, self.label_from_key, self.name, errors)
                self.info(item, out, labels, errors, keep_none=True)
            self.info(v, out, {}, errors)
        else:
            self.info(v, out, {}, errors)
        return out

    def info(
        self,
        item: Any,
        out: list[Value],
        labels: Labels,
        errors: list[RenderError],
        *,
        keep_none: bool = False,
    ) -> None:
        """One Info series for `item`, if it gives any label."""
        if item is None and not keep_none:
            return
        self.element.write(item, labels, self.name, errors)
        if labels:
            out.append((labels, 1.0))

    def state_set(self, item: Any, errors: list[RenderError]) -> list[Value]:
        raw = item if self.value_from is None else self.value_from(item)
        if raw is MISSING or raw is None:
            return []  # not resolved (yet): no series, no error
        if type(raw) is not str:
            errors.append(RenderError(self.name, f"expected the value to be a string, got {_go_type(raw)}"))
            return []
        out: list[Value] = []
        for state in self.states:
            labels = {self.state_label: escape_label_value(state)}
            self.element.write(item, labels, self.name, errors)
            out.append((labels, 1.0 if raw == state else 0.0))
        return out


def _bounded(items: Iterable[Any], family: str, errors: list[RenderError]) -> Iterable[Any]:
    for count, item in enumerate(items):
        if count == MAX_SERIES_PER_METRIC:
            errors.append(RenderError(family, f"more than {MAX_SERIES_PER_METRIC} elements; rest dropped"))
            return
        yield item


def _go_type(value: Any) -> str:
    return {bool: "bool", int: "float64", float: "float64", dict: "map", list: "slice"}.get(
        type(value), type(value).__name__
    )


def _single_key(path: Path | None) -> str | None:
    """KSM matches a one-segment `valueFrom` against an object's field names."""
    if path is None or len(path.segments) != 1 or len(path.segments[0]) != 1:
        return None
    step = path.segments[0][0]
    return f"{step.name}={step.text}" if isinstance(step, KeyEquals) else str(step)


class EachMetric(Metric):
    """The series of one or more generators sharing a family (KSM allows one name
    twice in a resource; the family is served once)."""

    __slots__ = ("generators", "reserved")

    def __init__(self, header: FamilyHeader, generators: list[Generator], reserved: frozenset[str]) -> None:
        super().__init__(header)
        self.generators = tuple(generators)
        self.reserved = reserved

    def render(self, obj: Any, base: str, env: Env, errors: list[RenderError]) -> str:
        lines: list[str] = []
        seen: set[str] = set()
        head = f"{self.open}{base[1:]}," if base else self.open
        for generator in self.generators:
            v = generator.get(obj)
            values = generator.values(None if v is MISSING else v, errors)
            if not values:
                continue
            family: Labels = {}
            generator.family.write(obj, family, self.name, errors)
            values.sort(key=lambda value: sorted(value[0].items()))
            for labels, number in values:
                for key, text in family.items():
                    labels.setdefault(key, text)
                for key in self.reserved.intersection(labels):
                    del labels[key]
                    errors.append(
                        RenderError(self.name, f"label {key} is reserved for the object's own label")
                    )
                text = ",".join(f'{key}="{labels[key]}"' for key in sorted(labels))
                if text in seen:
                    errors.append(RenderError(self.name, "duplicate series dropped (same labels twice)"))
                    continue
                seen.add(text)
                if text:
                    lines.append(f"{head}{text}}} {sample_value(number)}\n")
                elif base:
                    lines.append(f"{head[:-1]}}} {sample_value(number)}\n")
                else:
                    lines.append(f"{self.name} {sample_value(number)}\n")
        return "".join(lines)
