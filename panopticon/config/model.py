"""The MetricsConfiguration model: parse a raw object into typed, validated specs.

`parse_config(body)` reads a `metrics.appscode.com/v1alpha1` MetricsConfiguration
(as a dict from JSON or YAML) into frozen dataclasses and reports every structural
problem as a `Finding` whose `field` points at the offending field
(`spec.metrics[3].states.values[1].metricValue`). Compiling paths and expressions
happens in `panopticon.render.program`, which adds its own findings.

Upstream types every scalar as a string (`value: "1"`), while configs in the field
also write plain numbers (`value: 1`) and booleans: scalars are accepted and turned
into their text. Precedence rules follow upstream: `states` beats `metricValue`;
within a metric value, `value` > `valueFromPath` > `valueFromExpression`; in a label
or param, `value` > `valuePath`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from panopticon.config.aggregatespec import AggregateSpec, read_metric_aggregate
from panopticon.config.eachspec import EachSpec, read_each, read_flag
from panopticon.config.findings import FieldReader, Finding, type_name
from panopticon.config.limitspec import read_limits
from panopticon.config.scopespec import FilterSpec, SelectorSpec, read_filter, read_selector
from panopticon.config.valuemapspec import read_value_map

API_GROUP = "metrics.appscode.com"
API_VERSION = f"{API_GROUP}/v1alpha1"
KIND = "MetricsConfiguration"

FIELD_TYPES = ("Integer", "DateTime", "Array", "String")
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
MAP_LABEL = re.compile(r"(?:[a-zA-Z_][a-zA-Z0-9_]*)?\*")
"""A map label's key: an optional prefix and `*` (see `LabelSpec.is_map`)."""
PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_METRICS = 500
MAX_LABELS = 64
MAX_STATES = 1000


@dataclass(frozen=True, slots=True)
class LabelSpec:
    key: str
    value: str | None
    value_path: str | None
    where: str

    @property
    def is_map(self) -> bool:
        """A map label (`key: "prefix_*"`, an extension for `each` metrics): every field
        of the object at `value_path` becomes a label named prefix + field name."""
        return self.key.endswith("*")


@dataclass(frozen=True, slots=True)
class ParamSpec:
    key: str
    value: str | None
    value_path: str | None
    where: str


@dataclass(frozen=True, slots=True)
class ValueSpec:
    value: str | None
    value_from_path: str | None
    value_from_expression: str | None
    where: str
    value_map: tuple[tuple[str, int | float], ...] | None = None
    """`valueMap` (a Panopticon extension): the path's value, as text, to a number."""
    default: int | float | None = None
    """The number for a value `valueMap` does not list; None: no series."""


@dataclass(frozen=True, slots=True)
class StateSpec:
    label_value: str
    metric_value: ValueSpec
    where: str


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    help: str
    type: str
    field_path: str | None
    field_type: str | None
    labels: tuple[LabelSpec, ...]
    params: tuple[ParamSpec, ...]
    state_label: str | None
    states: tuple[StateSpec, ...]
    value: ValueSpec | None
    where: str
    each: EachSpec | None = None
    """kube-state-metrics' generator form (an extension; see panopticon.config.eachspec)."""
    aggregate: AggregateSpec | None = None
    """`aggregate` (an extension): one series per group of label values (panopticon.render.aggregate)."""


@dataclass(frozen=True, slots=True)
class TargetRef:
    """A target kind's identity (`spec.targetRef`): the one key shards, statuses and
    discovery use for a kind."""

    api_version: str
    kind: str

    def __str__(self) -> str:
        return f"{self.api_version}/{self.kind}"

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


@dataclass(frozen=True, slots=True)
class ConfigSpec:
    """A parsed MetricsConfiguration (structure only; see `panopticon.render.program`)."""

    name: str
    uid: str
    generation: int
    annotations: dict[str, str] = field(compare=False)
    target: TargetRef | None
    common_labels: tuple[LabelSpec, ...]
    metrics: tuple[MetricSpec, ...]
    default_labels: bool = True
    """Whether series carry the object's name and namespace (`spec.defaultLabels`, an
    extension: false for configs converted from kube-state-metrics)."""
    selector: SelectorSpec | None = None
    """`spec.selector` (an extension): a LabelSelector on the target objects."""
    filter: FilterSpec | None = None
    """`spec.filter` (an extension): an expression an object must make true."""
    series_limit: int | None = None
    """`spec.limits.series` (an extension): the most series the config may have."""


def parse_config(body: Any) -> tuple[ConfigSpec | None, list[Finding]]:
    """Read a MetricsConfiguration; return its spec (None if unusable) and all findings."""
    r = FieldReader()
    if not isinstance(body, dict):
        r.error("", f"a MetricsConfiguration must be an object, not {type_name(body)}")
        return None, r.findings
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if kind != KIND or not isinstance(api_version, str) or api_version.split("/")[0] != API_GROUP:
        r.error("", f"not a MetricsConfiguration (apiVersion {api_version!r}, kind {kind!r})")
        return None, r.findings
    if api_version != API_VERSION:
        r.warn("apiVersion", f"{api_version} is not {API_VERSION}; read as {API_VERSION}")
    meta = r.mapping(body.get("metadata"), "metadata")
    name = r.text(meta, "name", "metadata", required=True) or ""
    uid = meta.get("uid") if isinstance(meta.get("uid"), str) else ""
    generation = meta.get("generation") if type(meta.get("generation")) is int else 0
    raw_annotations = meta.get("annotations")
    annotations = (
        {k: v for k, v in raw_annotations.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(raw_annotations, dict)
        else {}
    )
    spec = r.mapping(body.get("spec"), "spec", required=True)
    target = _target(r, spec)
    common = tuple(
        _label(r, item, f"spec.commonLabels[{i}]")
        for i, item in enumerate(r.sequence(spec.get("commonLabels"), "spec.commonLabels", limit=MAX_LABELS))
    )
    raw_metrics = r.sequence(spec.get("metrics"), "spec.metrics", limit=MAX_METRICS)
    if not raw_metrics and "metrics" not in spec:
        r.error("spec.metrics", "is required")
    metrics = tuple(_metric(r, item, f"spec.metrics[{i}]") for i, item in enumerate(raw_metrics))
    default_labels = read_flag(r, spec, "defaultLabels", "spec", default=True)
    selector = read_selector(spec.get("selector"), "spec.selector", r.error)
    object_filter = read_filter(
        spec.get("filter"), "spec.filter", r.error, lambda raw, at: _param(r, raw, at)
    )
    series_limit = read_limits(spec.get("limits"), "spec.limits", r.error)
    for planned in ("namespaceSelector",):
        if planned in spec:
            r.error(f"spec.{planned}", "is not supported by this version of Panopticon")
    config = ConfigSpec(
        name=name,
        uid=uid,  # type: ignore[arg-type]
        generation=generation,  # type: ignore[arg-type]
        annotations=annotations,
        target=target,
        common_labels=tuple(label for label in common if label is not None),
        metrics=tuple(m for m in metrics if m is not None),
        default_labels=default_labels,
        selector=selector,
        filter=object_filter,
        series_limit=series_limit,
    )
    return config, r.findings


def _target(r: FieldReader, spec: dict[str, Any]) -> TargetRef | None:
    ref = r.mapping(spec.get("targetRef"), "spec.targetRef", required=True)
    if not ref:
        return None
    api_version = r.text(ref, "apiVersion", "spec.targetRef", required=True)
    kind = r.text(ref, "kind", "spec.targetRef", required=True)
    if "group" in ref or "resource" in ref:
        r.warn("spec.targetRef", "group/resource are the pre-2021 form; use apiVersion and kind")
    if api_version is None or kind is None:
        return None
    if api_version.count("/") > 1 or api_version.startswith("/") or api_version.endswith("/"):
        r.error("spec.targetRef.apiVersion", f"{api_version!r} is not of the form [group/]version")
        return None
    if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", kind):
        r.error("spec.targetRef.kind", f"{kind!r} is not a Kubernetes kind (CamelCase, e.g. Deployment)")
        return None
    return TargetRef(api_version, kind)


def _label(r: FieldReader, raw: Any, where: str) -> LabelSpec | None:
    item = r.mapping(raw, where, required=True)
    if not item:
        return None
    key = r.text(item, "key", where, required=True)
    value = r.text(item, "value", where)
    path = r.text(item, "valuePath", where)
    if key is not None and MAP_LABEL.fullmatch(key) and value is not None:
        r.error(f"{where}.value", f"{key!r} is a map label: its labels come from valuePath")
        key = None
    elif key is not None and not LABEL_NAME.fullmatch(key) and not MAP_LABEL.fullmatch(key):
        r.error(f"{where}.key", f"{key!r} is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)")
        key = None
    elif key is not None and key.startswith("__"):
        r.error(f"{where}.key", f"{key!r}: label names starting with __ are reserved by Prometheus")
        key = None
    if value is None and not path:
        r.error(where, "needs value or valuePath")
        return None
    if value is not None and path:
        r.warn(f"{where}.valuePath", "ignored: value takes precedence")
        path = None
    return LabelSpec(key, value, path, where) if key is not None else None


def _param(r: FieldReader, raw: Any, where: str) -> ParamSpec | None:
    item = r.mapping(raw, where, required=True)
    if not item:
        return None
    key = r.text(item, "key", where, required=True)
    value = r.text(item, "value", where)
    path = r.text(item, "valuePath", where)
    if key is not None and not PARAM_NAME.fullmatch(key):
        r.error(
            f"{where}.key", f"{key!r} is not usable in expressions (letters, digits, _; not first a digit)"
        )
        return None
    if value is None and not path:
        r.error(where, "needs value or valuePath")
        return None
    if value is not None and path:
        r.warn(f"{where}.valuePath", "ignored: value takes precedence")
        path = None
    return ParamSpec(key, value, path, where) if key is not None else None


def _value(r: FieldReader, raw: Any, where: str) -> ValueSpec | None:
    item = r.mapping(raw, where)
    value = r.text(item, "value", where)
    path = r.text(item, "valueFromPath", where)
    expression = r.text(item, "valueFromExpression", where)
    if value is None and not path and not expression:
        return None
    if value is not None and (path or expression):
        r.warn(where, "valueFromPath/valueFromExpression ignored: value takes precedence")
        path = expression = None
    elif path and expression:
        r.warn(f"{where}.valueFromExpression", "ignored: valueFromPath takes precedence")
        expression = None
    value_map, default = read_value_map(item.get("valueMap"), item.get("default"), where, r.error)
    if value_map is not None and not path:
        r.error(f"{where}.valueMap", "needs valueFromPath: it maps the value read from the path")
        value_map = default = None
    elif default is not None and value_map is None:
        r.error(f"{where}.default", "needs valueMap: it is the number for values the map does not list")
        default = None
    return ValueSpec(value, path or None, expression or None, where, value_map, default)


def _metric(r: FieldReader, raw: Any, where: str) -> MetricSpec | None:
    item = r.mapping(raw, where, required=True)
    if not item:
        return None
    name = r.text(item, "name", where, required=True)
    help_text = r.text(item, "help", where, required=True)
    mtype = r.text(item, "type", where, required=True)
    if mtype is not None and mtype.lower() != "gauge":
        r.error(f"{where}.type", f"{mtype!r} is not supported: MetricsConfiguration metrics are gauges")
    if name is not None and not METRIC_NAME.fullmatch(name):
        r.error(f"{where}.name", f"{name!r} is not a valid Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
        name = None
    field_raw = r.mapping(item.get("field"), f"{where}.field")
    field_path = r.text(field_raw, "path", f"{where}.field") or None
    field_type = r.text(field_raw, "type", f"{where}.field")
    if field_type is not None and field_type not in FIELD_TYPES:
        r.error(f"{where}.field.type", f"{field_type!r} is not one of {', '.join(FIELD_TYPES)}")
        field_type = None
    if field_type == "Array" and not field_path:
        r.error(f"{where}.field.path", "is required when field.type is Array")
    labels = [
        _label(r, x, f"{where}.labels[{i}]")
        for i, x in enumerate(r.sequence(item.get("labels"), f"{where}.labels", limit=MAX_LABELS))
    ]
    params = [
        _param(r, x, f"{where}.params[{i}]")
        for i, x in enumerate(r.sequence(item.get("params"), f"{where}.params", limit=MAX_LABELS))
    ]
    seen_params: set[str] = set()
    for p in params:
        if p is not None and p.key in seen_params:
            r.error(f"{p.where}.key", f"duplicate param {p.key!r}")
        elif p is not None:
            seen_params.add(p.key)
    state_label, states = _states(r, item.get("states"), f"{where}.states")
    value = _value(r, item.get("metricValue"), f"{where}.metricValue")
    each = None
    if "each" in item:
        each = read_each(
            r, item["each"], f"{where}.each", label=lambda x, at: _label(r, x, at), label_name=_is_label_name
        )
        for key in ("field", "params", "states", "metricValue"):
            if item.get(key):
                r.error(f"{where}.{key}", "is not used with each (each gives the series and their values)")
    if states and value is not None:
        r.warn(f"{where}.metricValue", "ignored: states take precedence")
        value = None
    if not states and value is None and "each" not in item:
        r.error(where, "needs metricValue (value, valueFromPath or valueFromExpression) or states")
    aggregate = read_metric_aggregate(item, where, r.error)
    if name is None or help_text is None or mtype is None or ("each" in item and each is None):
        return None
    return MetricSpec(
        name=name,
        help=help_text,
        type="gauge",
        field_path=field_path,
        field_type=field_type,
        labels=tuple(x for x in labels if x is not None),
        params=tuple(x for x in params if x is not None),
        state_label=state_label,
        states=states,
        value=value,
        where=where,
        each=each,
        aggregate=aggregate,
    )


def _is_label_name(text: str) -> bool:
    return LABEL_NAME.fullmatch(text) is not None


def _states(r: FieldReader, raw: Any, where: str) -> tuple[str | None, tuple[StateSpec, ...]]:
    item = r.mapping(raw, where)
    if not item or (not item.get("labelKey") and not item.get("values")):
        return None, ()
    key = r.text(item, "labelKey", where, required=True)
    if key is not None and (not LABEL_NAME.fullmatch(key) or key.startswith("__")):
        r.error(f"{where}.labelKey", f"{key!r} is not a valid Prometheus label name")
        key = None
    values: list[StateSpec] = []
    seen: set[str] = set()
    raw_values = r.sequence(item.get("values"), f"{where}.values", limit=MAX_STATES)
    if not raw_values:
        r.error(f"{where}.values", "must list at least one state")
    for i, raw_state in enumerate(raw_values):
        at = f"{where}.values[{i}]"
        state = r.mapping(raw_state, at, required=True)
        if not state:
            continue
        label_value = r.text(state, "labelValue", at, required=True)
        value = _value(r, state.get("metricValue"), f"{at}.metricValue")
        if value is None:
            r.error(f"{at}.metricValue", "is required (value, valueFromPath or valueFromExpression)")
        if label_value is not None and label_value in seen:
            r.error(f"{at}.labelValue", f"duplicate state {label_value!r}")
        elif label_value is not None and value is not None:
            seen.add(label_value)
            values.append(StateSpec(label_value, value, at))
    return key, tuple(values)
