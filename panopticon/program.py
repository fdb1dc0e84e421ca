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
namespaced objects), `spec.commonLabels`, the metric's labels, the state label.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from panopticon.errors import EvaluationError, ExpressionError, MissingValueError, PathError, QuantityError
from panopticon.exposition import FamilyHeader, escape_label_value, label_pair, sample_value
from panopticon.expr.compiler import Expression, compile_expression
from panopticon.expr.functions import SUMMARY_CACHE, numeric_result
from panopticon.expr.values import describe, numeric_or_none, parse_time, to_text
from panopticon.model import (
    METRIC_NAME,
    ConfigSpec,
    Finding,
    LabelSpec,
    MetricSpec,
    TargetRef,
    ValueSpec,
    parse_config,
)
from panopticon.paths import MISSING, FanOut, Path, compile_path
from panopticon.quantity import parse_quantity
from panopticon.schema import SchemaIndex, check_path

NAME_PREFIX_ANNOTATION = "metrics.panopticon.dev/name-prefix"
MAX_SERIES_PER_METRIC = 10_000
"""Most series one metric may produce for one object (Array fan-out, states)."""
MAX_LABEL_VALUE = 16_384
"""Longest label value taken from an object; longer ones are cut and counted as an
error, so one hostile annotation cannot bloat the store and every scrape."""

Env = dict[str, Any]
# A value source returns the sample text, or None when the series is to be skipped
# (its path resolves to nothing); it raises EvaluationError when the value is bad.
ValueFn = Callable[[Any, tuple[Any, ...], Env], str | None]


@dataclass(frozen=True, slots=True)
class RenderError:
    family: str
    message: str


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


LabelChunk = str | tuple[str, str, Callable[[Any], Any], int]
"""A metric's labels as chunks, each starting with a comma: constant text (adjacent
constant labels merged), or `(key, ',key="', getter, level)` for a label read from the
object: `getter` resolves the path's last segment on the root object (level -1) or on
the element of fan-out level `level`."""


def _source(path: Path) -> tuple[Callable[[Any], Any], int]:
    """How to resolve `path` inside a render: a getter and the level it applies to."""
    if not path.wildcards:
        return path.getters[0], -1
    return path.getters[-1], path.wildcards - 1


def label_chunks(parts: list[str | tuple[str, Path]]) -> list[LabelChunk]:
    chunks: list[LabelChunk] = []
    for part in parts:
        if isinstance(part, str):
            if chunks and isinstance(chunks[-1], str):
                chunks[-1] += "," + part
            else:
                chunks.append("," + part)
        else:
            key, path = part
            getter, level = _source(path)
            chunks.append((key, f',{key}="', getter, level))
    return chunks


class _Metric:
    """One compiled metric: renders one family's series for one object.

    The hot path of the exporter: everything that does not depend on the object is
    prepared here, and `render` only resolves paths, evaluates and joins strings.
    """

    __slots__ = ("chunks", "fanout", "gate", "header", "name", "open", "path_params", "series")

    def __init__(
        self,
        header: FamilyHeader,
        *,
        gate: Path | None,
        fanout: FanOut | None,
        label_parts: list[str | tuple[str, Path]],
        params: list[tuple[str, str | Path]],
        series: list[tuple[str | None, ValueFn | str]],
    ) -> None:
        self.header = header
        self.name = header.name
        self.open = header.name + "{"
        self.gate = gate.getters[0] if gate is not None else None
        self.fanout = fanout
        self.chunks = label_chunks(label_parts)
        # Constant params are folded into the expressions at compile time.
        self.path_params = [(key, *_source(src)) for key, src in params if not isinstance(src, str)]
        # (state label chunk, constant sample text or value source)
        self.series = [("," + state if state else "", value) for state, value in series]

    def render(self, obj: Any, base: str, shared_env: Env, errors: list[RenderError]) -> str:
        """Render this metric's series for `obj`; `base` holds the object's own labels
        (each with a leading comma); `shared_env` carries the per-object caches."""
        if self.fanout is None:
            if self.gate is not None and self.gate(obj) is MISSING:
                return ""
            return "".join(self._series(obj, (), base, shared_env, errors))
        contexts = self.fanout.contexts(obj, MAX_SERIES_PER_METRIC + 1)
        if len(contexts) > MAX_SERIES_PER_METRIC:
            errors.append(RenderError(self.name, f"more than {MAX_SERIES_PER_METRIC} elements; rest dropped"))
            del contexts[MAX_SERIES_PER_METRIC:]
        out: list[str] = []
        seen: set[str] = set()
        for ctx in contexts:
            for line in self._series(obj, ctx, base, shared_env, errors):
                if line in seen:
                    errors.append(RenderError(self.name, "duplicate series dropped (same labels twice)"))
                    continue
                seen.add(line)
                out.append(line)
        return "".join(out)

    def _series(
        self, obj: Any, ctx: tuple[Any, ...], base: str, shared_env: Env, errors: list[RenderError]
    ) -> list[str]:
        """The lines of one fan-out context (the whole object when not fanning out)."""
        labels = base
        for chunk in self.chunks:
            if isinstance(chunk, str):
                labels += chunk
            else:
                key, prefix, getter, level = chunk
                v = getter(obj if level < 0 else ctx[level])
                if v is not MISSING:
                    labels += prefix + _label_text(v, self.name, key, errors) + '"'
        env = shared_env
        if self.path_params:
            env = dict(shared_env)
            for key, getter, level in self.path_params:
                v = getter(obj if level < 0 else ctx[level])
                env[key] = None if v is MISSING else (v if type(v) in (dict, list) else to_text(v))
        lines: list[str] = []
        for state, value in self.series:
            if type(value) is str:
                text: str | None = value
            else:
                try:
                    text = value(obj, ctx, env)  # type: ignore[operator]
                except MissingValueError:
                    continue  # missing data, not bad data: no series, no error
                except EvaluationError as e:
                    errors.append(RenderError(self.name, str(e)))
                    continue
                if text is None:
                    continue
            full = labels + state
            lines.append(f"{self.open}{full[1:]}}} {text}\n" if full else f"{self.name} {text}\n")
        return lines


@dataclass(frozen=True, slots=True)
class Program:
    """The compiled form of one MetricsConfiguration."""

    config_name: str
    target: TargetRef
    kind_label: str
    families: tuple[FamilyHeader, ...]
    common: tuple[LabelChunk, ...]
    metrics: tuple[_Metric, ...] = field(repr=False)

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
        """Render every metric for one object. Never raises for any object content."""
        result = RenderOutput()
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        base = ""
        name = meta.get("name")
        if isinstance(name, str) and name:
            base = "," + label_pair(self.kind_label, name)
        ns = meta.get("namespace")
        if (namespaced is None or namespaced) and isinstance(ns, str) and ns:
            base += "," + label_pair("namespace", ns)
        for chunk in self.common:
            if isinstance(chunk, str):
                base += chunk
            else:
                key, prefix, getter, _ = chunk
                v = getter(obj)
                if v is not MISSING:
                    base += prefix + _label_text(v, "commonLabels", key, result.errors) + '"'
        shared_env: Env = {SUMMARY_CACHE: {}}
        for metric in self.metrics:
            try:
                text = metric.render(obj, base, shared_env, result.errors)
            except RecursionError:
                result.errors.append(RenderError(metric.name, "object nested too deeply"))
                continue
            if text:
                result.families[metric.name] = text
        return result


@dataclass(frozen=True, slots=True)
class CompiledConfig:
    spec: ConfigSpec | None
    program: Program | None
    findings: tuple[Finding, ...]

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
    when the index knows it (see `panopticon.schema`)."""
    spec, findings = parse_config(body)
    if spec is None or spec.target is None:
        return CompiledConfig(spec, None, tuple(findings))
    compiler = _ConfigCompiler(spec, spec.target, findings, schemas)
    program = compiler.compile()
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

    def compile(self) -> Program:
        reserved = {self.kind_label: "the object name label", "namespace": "the namespace label"}
        common = self.labels(self.spec.common_labels, None, dict(reserved))
        taken = dict(reserved)
        taken.update({lbl.key: f"{lbl.where}.key" for lbl in self.spec.common_labels})
        metrics: list[_Metric] = []
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
        )

    def labels(
        self, specs: tuple[LabelSpec, ...], fanout: FanOut | None, taken: dict[str, str]
    ) -> list[str | tuple[str, Path]]:
        parts: list[str | tuple[str, Path]] = []
        for lbl in specs:
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

    def metric(self, m: MetricSpec, name: str, taken: dict[str, str]) -> _Metric | None:
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
        series: list[tuple[str | None, ValueFn | str]] = []
        if m.states:
            for state in m.states:
                fn = self.value(state.metric_value, param_names, constants, fanout, date_time)
                if fn is not None and m.state_label:
                    series.append((label_pair(m.state_label, state.label_value), fn))
        elif m.value is not None:
            fn = self.value(m.value, param_names, constants, fanout, date_time)
            if fn is not None:
                series.append((None, fn))
        if any(f.severity == "error" for f in self.findings[start:]):
            return None
        return _Metric(
            FamilyHeader(name, m.help),
            gate=gate,
            fanout=fanout,
            label_parts=label_parts,
            params=params,
            series=series,
        )

    def value(
        self,
        v: ValueSpec,
        params: frozenset[str],
        constants: dict[str, Any],
        fanout: FanOut | None,
        date_time: bool,
    ) -> ValueFn | str | None:
        """The value source of a series: its sample text when constant, else a closure."""
        if v.value is not None:
            number = numeric_or_none(v.value)
            if number is None:
                self.error(f"{v.where}.value", f"{v.value!r} is not a number")
                return None
            return sample_value(number)
        if v.value_from_path is not None:
            path = self.scoped_path(v.value_from_path, f"{v.where}.valueFromPath", fanout)
            if path is None:
                return None
            return _path_value(path, date_time)
        assert v.value_from_expression is not None
        try:
            expression = compile_expression(v.value_from_expression, params, constants=constants)
        except ExpressionError as e:
            self.error(f"{v.where}.valueFromExpression", str(e))
            return None
        for warning in expression.warnings:
            self.findings.append(Finding(f"{v.where}.valueFromExpression", warning, "warning"))
        return _expression_value(expression)


def _label_text(value: Any, family: str, key: str, errors: list[RenderError]) -> str:
    text = to_text(value)
    if len(text) > MAX_LABEL_VALUE:
        errors.append(RenderError(family, f"label {key} cut to {MAX_LABEL_VALUE} characters"))
        text = text[:MAX_LABEL_VALUE]
    return escape_label_value(text)


def _path_value(path: Path, date_time: bool) -> ValueFn:
    getter, level = _source(path)

    def fn(obj: Any, ctx: tuple[Any, ...], env: Env) -> str | None:
        raw = getter(obj if level < 0 else ctx[level])
        if raw is MISSING:
            return None
        return sample_value(parse_time(raw) if date_time else _sample_from(raw, path.text))

    return fn


def _sample_from(raw: Any, where: str) -> int | float:
    """A value read from an object as a sample: numbers, booleans (1/0), numeric
    strings, quantities (`500m`, `1Gi`) and RFC 3339 times."""
    if raw is True or raw is False:
        return int(raw)
    number = numeric_or_none(raw)
    if number is not None:
        return number
    if isinstance(raw, str):
        try:
            return float(parse_quantity(raw))
        except QuantityError:
            pass
        try:
            return parse_time(raw)
        except EvaluationError:
            pass
    raise EvaluationError(f"{where}: {describe(raw)} is not a number, quantity or time")


def _expression_value(expression: Expression) -> ValueFn:
    evaluate = expression.evaluate

    def fn(obj: Any, ctx: tuple[Any, ...], env: Env) -> str | None:
        result = evaluate(env)
        if type(result) is int and -1000 < result < 1000:
            return str(result)  # the common case: int(...) of a comparison
        number = numeric_result(result)
        if number is None:
            if result is None:
                return None
            raise EvaluationError(f"{expression.text!r} gave {describe(result)}, not a number")
        return sample_value(number)

    return fn
