"""Compile a MetricsConfiguration into a render program, once per config change.

`compile_config(body)` validates the config (structure, paths, expressions, names)
and returns a `CompiledConfig` whose `program` renders objects of the target kind.
Rendering never re-parses a path or an expression: every label, param and value is
a prepared closure or a pre-escaped constant. A bad object yields the series it can
and one counted `RenderError` per failed series, never an exception.

Family names. Upstream's first configs (2021) wrote full names
(`kubedb_mongodb_status_phase`, `kube_pod_info`), while KubeDB's current configs write
names relative to the target (`status_phase`), which Panopticon exposes as
`kubedb_com_mongodb_status_phase`. So a name that already contains the lowercase kind
as one of its `_`-separated words is used as written; any other name gets the prefix
`<group>_<kind>_` (group dots and dashes as `_`, the core group as `kube`). The
annotation `metrics.panopticon.dev/name-prefix` overrides this: its value (possibly
empty) is the prefix of every metric of the config.

Series labels, in order: the object's name under the lowercase kind, `namespace` (for
namespaced objects), `spec.commonLabels`, the metric's labels, the state label. With
`spec.defaultLabels: false` the first two are left out. A config whose metrics use
`each` is compiled by `panopticon.render.eachcompile` (kube-state-metrics' rules).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from panopticon.config.aggregatespec import check_by
from panopticon.config.findings import Finding
from panopticon.config.model import (
    METRIC_NAME,
    ConfigSpec,
    LabelSpec,
    MetricSpec,
    TargetRef,
    ValueSpec,
    parse_config,
)
from panopticon.errors import ExpressionError, PathError
from panopticon.render.aggregate import Aggregated
from panopticon.render.eachcompile import compile_each_metrics
from panopticon.render.exposition import FamilyHeader, escape_label_value, label_pair, sample_value
from panopticon.render.expr.compiler import compile_expression
from panopticon.render.expr.functions import SUMMARY_CACHE
from panopticon.render.isolation import fault_text
from panopticon.render.paths import Path, compile_path
from panopticon.render.schema import SchemaIndex, check_path
from panopticon.render.scope import Gate, compile_filter, gate_of
from panopticon.render.shapes.fanout import FanOut
from panopticon.render.shapes.metrics import (
    MAX_LABEL_VALUE,
    MAX_SERIES_PER_METRIC,
    LabelChunk,
    Metric,
    RenderError,
    add_labels,
)
from panopticon.render.shapes.pick import CompiledValue, label_chunks, pick_shape, value_source
from panopticon.render.shapes.values import Env, expression_value, path_value
from panopticon.render.valuemap import mapped_value
from panopticon.text import numeric_or_none

__all__ = [
    "MAX_LABEL_VALUE",
    "MAX_SERIES_PER_METRIC",
    "NAME_PREFIX_ANNOTATION",
    "CompiledConfig",
    "Program",
    "RenderError",
    "RenderOutput",
    "compile_config",
    "family_name",
]

NAME_PREFIX_ANNOTATION = "metrics.panopticon.dev/name-prefix"


@dataclass(slots=True)
class RenderOutput:
    """One object rendered by one program: sample lines per family, and errors."""

    families: dict[str, str] = field(default_factory=dict)
    errors: list[RenderError] = field(default_factory=list)


def family_name(spec: ConfigSpec, target: TargetRef, name: str) -> str:
    prefix = spec.annotations.get(NAME_PREFIX_ANNOTATION)
    if prefix is not None:
        return f"{prefix}_{name}" if prefix else name
    kind = target.kind.lower()
    if kind in name.lower().split("_"):
        return name
    group = target.group.replace(".", "_").replace("-", "_") or "kube"
    return f"{group}_{kind}_{name}"


@dataclass(frozen=True, slots=True)
class Program:
    """The compiled form of one MetricsConfiguration."""

    config_name: str
    target: TargetRef
    kind_label: str
    families: tuple[FamilyHeader, ...]
    common: tuple[LabelChunk, ...]
    metrics: tuple[Metric, ...] = field(repr=False)
    default_labels: bool = True
    """Whether series carry the object's name and namespace (`spec.defaultLabels`)."""
    gate: Gate | None = field(default=None, repr=False, compare=False)
    """`spec.selector` and `spec.filter`: objects outside them render nothing."""
    series_limit: int | None = None
    """`spec.limits.series`: the most series of this config (enforced by the caller,
    over all objects: `panopticon.render.limits`); None: no cap of its own."""

    def matches(self, obj: Any) -> bool:
        """Whether `obj` is of the target kind (group and kind; any version)."""
        if not isinstance(obj, dict) or obj.get("kind") != self.target.kind:
            return False
        api_version = obj.get("apiVersion")
        return isinstance(api_version, str) and api_version.rpartition("/")[0] == self.target.group

    def without(self, families: set[str]) -> Program:
        """This program minus the metrics of `families` (excluded by a conflict)."""
        kept = tuple(m for m in self.metrics if m.name not in families)
        return replace(self, metrics=kept, families=tuple(m.header for m in kept))

    def render(self, obj: Any, *, namespaced: bool | None = None) -> RenderOutput:
        """Render every metric for one object. Never raises (the isolation boundary,
        `panopticon.render.isolation`): an unexpected exception costs the series of the metric
        it came from, and is reported as a `RenderError` marked as a fault."""
        errors: list[RenderError] = []
        base = ""
        try:  # A try costs nothing in CPython 3.11+ until something raises.
            if self.gate is not None and not self.gate(obj, errors):
                return RenderOutput({}, errors)
            meta = obj.get("metadata") if isinstance(obj, dict) and self.default_labels else None
            if isinstance(meta, dict):
                name = meta.get("name")
                if isinstance(name, str) and name:
                    if "\\" in name or '"' in name or "\n" in name:
                        name = escape_label_value(name)
                    base = f',{self.kind_label}="{name}"'
                ns = meta.get("namespace")
                if (namespaced is None or namespaced) and isinstance(ns, str) and ns:
                    if "\\" in ns or '"' in ns or "\n" in ns:
                        ns = escape_label_value(ns)
                    base += f',namespace="{ns}"'
            if self.common:
                base = add_labels(base, self.common, obj, "commonLabels", errors)
        except Exception as e:  # the boundary: anything, reported as a fault
            return RenderOutput({}, [RenderError("", fault_text("scoping or labelling the object", e), True)])
        families: dict[str, str] = {}
        env: Env = {SUMMARY_CACHE: {}}
        for metric in self.metrics:
            try:
                text = metric.render(obj, base, env, errors)
            except RecursionError:
                errors.append(RenderError(metric.name, "object nested too deeply"))
                continue
            except Exception as e:  # the boundary, as above
                errors.append(RenderError(metric.name, fault_text("rendering", e), True))
                continue
            if text:
                families[metric.name] = text
        return RenderOutput(families, errors)


@dataclass(frozen=True, slots=True)
class CompiledConfig:
    spec: ConfigSpec | None
    program: Program | None
    findings: tuple[Finding, ...]
    fault: str | None = None
    """Set when compiling raised unexpectedly (the isolation boundary caught it): the
    config is invalid, with this as its one finding."""

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]


def compile_config(body: Any, *, schemas: SchemaIndex | None = None) -> CompiledConfig:
    """Validate and compile a MetricsConfiguration. The program is None when any
    error was found (an invalid config is reported and skipped as a whole).

    With `schemas`, every path is also checked against the target kind's schema
    when the index knows it (see `panopticon.render.schema`)."""
    try:
        spec, findings = parse_config(body)
        if spec is None or spec.target is None:
            return CompiledConfig(spec, None, tuple(findings))
        compiler = _ConfigCompiler(spec, spec.target, findings, schemas)
        program = compiler.compile()
    except Exception as e:  # the isolation boundary (panopticon.render.isolation)
        fault = Finding("spec", fault_text("compiling the config", e), "error")
        return CompiledConfig(None, None, (fault,), fault=fault.message)
    ok = not any(f.severity == "error" for f in findings)
    return CompiledConfig(spec, program if ok else None, tuple(findings))


class _ConfigCompiler:
    def __init__(
        self, spec: ConfigSpec, target: TargetRef, findings: list[Finding], schemas: SchemaIndex | None
    ) -> None:
        self.spec = spec
        self.target = target
        self.findings = findings
        self.kind_label = target.kind.lower()
        self.schemas = schemas
        self.schema_root = schemas.lookup(target.api_version, target.kind) if schemas else None

    def error(self, where: str, message: str) -> None:
        self.findings.append(Finding(where, message, "error"))

    def path(self, text: str, where: str) -> Path | None:
        try:
            path = compile_path(text)
        except PathError as e:
            self.error(where, str(e))
            return None
        if self.schemas is not None and self.schema_root is not None:
            finding = check_path(self.schemas, self.schema_root, path, where)
            if finding is not None:
                self.findings.append(finding)
        return path

    def gate(self) -> Gate | None:
        """The config's scope (selector and filter) as one test; None when it has none."""
        keep = None
        if self.spec.filter is not None:
            keep = compile_filter(self.spec.filter, self.path, self.error)
        return gate_of(self.spec.selector, keep)

    def compile(self) -> Program:
        reserved = {self.kind_label: "the object name label", "namespace": "the namespace label"}
        if not self.spec.default_labels:
            reserved = {}
        if any(m.each is not None for m in self.spec.metrics):
            return self.compile_each(frozenset(reserved))
        common = self.labels(self.spec.common_labels, None, dict(reserved))
        taken = dict(reserved)
        taken.update({lbl.key: f"{lbl.where}.key" for lbl in self.spec.common_labels})
        metrics: list[Metric] = []
        families: dict[str, str] = {}
        for m in self.spec.metrics:
            name = family_name(self.spec, self.target, m.name)
            if not METRIC_NAME.fullmatch(name):
                self.error(f"{m.where}.name", f"{name!r} is not a valid Prometheus metric name")
                continue
            if name in families:
                self.error(f"{m.where}.name", f"family {name!r} is already defined by {families[name]}")
                continue
            families[name] = m.where
            metric = self.metric(m, name, dict(taken))
            if metric is not None:
                metrics.append(metric)
        return Program(
            config_name=self.spec.name,
            target=self.target,
            kind_label=self.kind_label,
            families=tuple(m.header for m in metrics),
            common=tuple(label_chunks(common)),
            metrics=tuple(metrics),
            default_labels=self.spec.default_labels,
            gate=self.gate(),
            series_limit=self.spec.series_limit,
        )

    def compile_each(self, reserved: frozenset[str]) -> Program:
        """A config whose metrics use `each` (kube-state-metrics' rules, panopticon.render.each)."""
        names = []
        for m in self.spec.metrics:
            if m.aggregate is not None:
                self.error(m.aggregate.where, "is not supported in a config whose metrics use each")
            name = family_name(self.spec, self.target, m.name)
            if not METRIC_NAME.fullmatch(name):
                self.error(f"{m.where}.name", f"{name!r} is not a valid Prometheus metric name")
            names.append(name)
        metrics = compile_each_metrics(
            self.spec, names, reserved=reserved, path=self.path, findings=self.findings
        )
        return Program(
            config_name=self.spec.name,
            target=self.target,
            kind_label=self.kind_label,
            families=tuple(m.header for m in metrics),
            common=(),
            metrics=tuple(metrics),
            default_labels=self.spec.default_labels,
            gate=self.gate(),
            series_limit=self.spec.series_limit,
        )

    def labels(
        self, specs: tuple[LabelSpec, ...], fanout: FanOut | None, taken: dict[str, str]
    ) -> list[str | tuple[str, Path]]:
        parts: list[str | tuple[str, Path]] = []
        for lbl in specs:
            if lbl.is_map:
                self.error(f"{lbl.where}.key", f"{lbl.key!r}: map labels are for metrics with each only")
                continue
            if lbl.key in taken:
                self.error(f"{lbl.where}.key", f"label {lbl.key!r} is already {taken[lbl.key]}")
                continue
            taken[lbl.key] = f"set by {lbl.where}"
            if lbl.value is not None:
                parts.append(label_pair(lbl.key, lbl.value))
                continue
            path = self.scoped_path(lbl.value_path or "", f"{lbl.where}.valuePath", fanout)
            if path is not None:
                parts.append((lbl.key, path))
        return parts

    def scoped_path(self, text: str, where: str, fanout: FanOut | None) -> Path | None:
        """Compile a path used inside a metric; its `[*]` must match the fan-out."""
        path = self.path(text, where)
        if path is None or not path.wildcards:
            return path
        if fanout is None:
            self.error(
                where, f"{text!r} uses [*], which needs field.type: Array and field.path set to the array"
            )
            return None
        problem = fanout.accepts(path)
        if problem:
            self.error(where, f"{text!r}: {problem}")
            return None
        return path

    def metric(self, m: MetricSpec, name: str, taken: dict[str, str]) -> Metric | None:
        start = len(self.findings)
        gate: Path | None = None
        fanout: FanOut | None = None
        if m.field_path:
            field_path = self.path(m.field_path, f"{m.where}.field.path")
            if field_path is not None and m.field_type == "Array":
                fanout = FanOut(field_path)
            elif field_path is not None and field_path.wildcards:
                self.error(f"{m.where}.field.path", "[*] needs field.type: Array")
            elif field_path is not None and not field_path.is_root:
                gate = field_path
        label_parts = self.labels(m.labels, fanout, taken)
        if m.state_label is not None and m.state_label in taken:
            self.error(
                f"{m.where}.states.labelKey", f"label {m.state_label!r} is already {taken[m.state_label]}"
            )
        params: list[tuple[str, str | Path]] = []
        for p in m.params:
            if p.value is not None:
                params.append((p.key, p.value))
            else:
                ppath = self.scoped_path(p.value_path or "", f"{p.where}.valuePath", fanout)
                if ppath is not None:
                    params.append((p.key, ppath))
        param_names = frozenset(p.key for p in m.params if p.value is None)
        constants = {p.key: p.value for p in m.params if p.value is not None}
        date_time = m.field_type == "DateTime"
        values: list[tuple[str, CompiledValue]] = []
        if m.states:
            for state in m.states:
                value = self.value(state.metric_value, param_names, constants, fanout, date_time)
                if value is not None and m.state_label:
                    values.append(("," + label_pair(m.state_label, state.label_value), value))
        elif m.value is not None:
            value = self.value(m.value, param_names, constants, fanout, date_time)
            if value is not None:
                values.append(("", value))
        if m.aggregate is not None:
            check_by(m.aggregate, taken, self.error)
        if any(f.severity == "error" for f in self.findings[start:]):
            return None
        aggregation = m.aggregate.aggregation if m.aggregate is not None else None
        metric = pick_shape(
            FamilyHeader(name, m.help, aggregate=aggregation),
            gate=gate,
            fanout=fanout,
            chunks=label_chunks(label_parts),
            params=params,
            values=values,
            date_time=date_time,
        )
        return metric if aggregation is None else Aggregated(metric, aggregation)

    def value(
        self,
        v: ValueSpec,
        params: frozenset[str],
        constants: dict[str, Any],
        fanout: FanOut | None,
        date_time: bool,
    ) -> CompiledValue | None:
        """The value of a series: its sample text when constant, else a value source."""
        if v.value is not None:
            number = numeric_or_none(v.value)
            if number is None:
                self.error(f"{v.where}.value", f"{v.value!r} is not a number")
                return None
            return CompiledValue(sample_value(number))
        if v.value_from_path is not None:
            path = self.scoped_path(v.value_from_path, f"{v.where}.valueFromPath", fanout)
            if path is None:
                return None
            if v.value_map is not None:
                return CompiledValue(mapped_value(*value_source(path), v.value_map, v.default))
            return CompiledValue(path_value(*value_source(path), path.text, date_time), path=path)
        assert v.value_from_expression is not None
        try:
            expression = compile_expression(v.value_from_expression, params, constants=constants)
        except ExpressionError as e:
            self.error(f"{v.where}.valueFromExpression", str(e))
            return None
        for warning in expression.warnings:
            self.findings.append(Finding(f"{v.where}.valueFromExpression", warning, "warning"))
        return CompiledValue(
            expression_value(expression), expression=expression, indicator=expression.indicator
        )
