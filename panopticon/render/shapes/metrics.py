"""Compiled metrics: how one metric renders its series for one object.

This is the hot path of the exporter: every metric of every object is rendered on
every change. `panopticon.render.program` validates a config and compiles each metric into
one of the shapes below, picked once per config change, so that rendering does no
work that depends only on the config:

- `Plain`: no fan-out; one series, or one per state;
- `PathSample`: no fan-out, one series whose value is read from the same path as
  the field that gates it (`.spec.replicas`, `.metadata.creationTimestamp`): the
  path is resolved once, not once for the gate and once for the value;
- `StateTable`: no fan-out, and every state's value is `int(<param> == '<text>')`
  (how upstream configs write phases and reasons): the param's text picks all the
  lines with one dict lookup, instead of evaluating one expression per state;
- `Elements` (in `panopticon.render.shapes.elements`): an Array fan-out: the series of each element
  of the field's array.

The specialised shapes give exactly the lines and errors of the general rules in
`panopticon.render.program`. They exist because in CPython the cost of rendering is the
number of Python calls and bytecodes per series, not the work itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from panopticon.errors import EvaluationError, MissingValueError
from panopticon.render.exposition import FamilyHeader, escape_label_value, sample_value
from panopticon.render.expr.compiler import Expression, Indicator
from panopticon.render.expr.functions import SUMMARY_CACHE, summary_of
from panopticon.render.expr.resources import ResourceSummary
from panopticon.render.expr.values import parse_time
from panopticon.render.paths import MISSING, Getter
from panopticon.render.shapes.values import Env, ValueFn, result_text, sample_from
from panopticon.text import format_number, to_text

MAX_SERIES_PER_METRIC: Final = 10_000
"""Most series one metric may produce for one object (Array fan-out, states)."""
MAX_LABEL_VALUE: Final = 16_384
"""Longest label value taken from an object; longer ones are cut and counted as an
error, so one hostile annotation cannot bloat the store and every scrape."""

_INT_TEXT: Final = 10**17
"""Integers below this in magnitude are written as `str` writes them (see format_number)."""
_EXACT_MILLI: Final = 2**53
"""Non-negative milli-unit sums below this convert to a float figure exactly."""

Value = ValueFn | str
"""A series' value: its sample text when constant, else a value source."""

LabelSource = tuple[str, str, Getter, int]
"""A label read from the object: `(key, ',key="', getter, level)`; `getter` resolves
the path's last segment on the root object (level -1) or on the element of fan-out
level `level`."""
LabelChunk = str | LabelSource
"""A metric's labels as chunks, each starting with a comma: constant text (adjacent
constant labels merged) or a `LabelSource`."""
ParamSource = tuple[str, Getter, int]
"""A param read from the object: `(key, getter, level)`, levels as for labels."""


@dataclass(frozen=True, slots=True)
class RenderError:
    family: str
    message: str
    fault: bool = False
    """An unexpected exception caught by the isolation boundary (`panopticon.render.isolation`),
    not an ordinary bad value."""


def label_text(value: Any, family: str, key: str, errors: list[RenderError]) -> str:
    """A label value as exposition text: converted, cut to MAX_LABEL_VALUE, escaped."""
    text = to_text(value)
    if len(text) > MAX_LABEL_VALUE:
        errors.append(RenderError(family, f"label {key} cut to {MAX_LABEL_VALUE} characters"))
        text = text[:MAX_LABEL_VALUE]
    return escape_label_value(text)


def add_labels(
    labels: str, chunks: Sequence[LabelChunk], obj: Any, family: str, errors: list[RenderError]
) -> str:
    """`labels` followed by the root-level `chunks` resolved on `obj`."""
    for chunk in chunks:
        if isinstance(chunk, str):
            labels += chunk
            continue
        key, prefix, getter, _ = chunk
        v = getter(obj)
        if v is not MISSING:
            # Inlined fast path of label_text: most values are short plain strings.
            if type(v) is not str or len(v) > MAX_LABEL_VALUE or "\\" in v or '"' in v or "\n" in v:
                v = label_text(v, family, key, errors)
            labels = f'{labels}{prefix}{v}"'
    return labels


def split_chunks(chunks: list[LabelChunk]) -> tuple[str, tuple[LabelChunk, ...]]:
    """`(text, ())` when every chunk is constant (they are merged: at most one), so
    that rendering appends `text` instead of looping; else `("", chunks)`."""
    if all(isinstance(chunk, str) for chunk in chunks):
        return "".join(chunk for chunk in chunks if isinstance(chunk, str)), ()
    return "", tuple(chunks)


def param_value(v: Any) -> Any:
    """A param as expressions see it: text, or the object or list itself; nil if absent."""
    if v is MISSING:
        return None
    return v if type(v) in (dict, list) else to_text(v)


class Metric:
    """One compiled metric: `render` gives its sample lines for one object ("" for none).

    `base` holds the object's own labels (name, namespace, common labels; each with
    a leading comma); `env` is the object's shared expression environment (it
    carries the per-object resource summaries); errors are appended to `errors`.
    """

    __slots__ = ("header", "name", "open")

    def __init__(self, header: FamilyHeader) -> None:
        self.header = header
        self.name = header.name
        self.open = header.name + "{"

    def render(self, obj: Any, base: str, env: Env, errors: list[RenderError]) -> str:
        raise NotImplementedError


class Plain(Metric):
    """No fan-out: the series of `series` (one, or one per state), with the labels of
    `chunks`; skipped entirely when the `gate` path resolves to nothing."""

    __slots__ = ("chunks", "gate", "params", "series")

    def __init__(
        self,
        header: FamilyHeader,
        *,
        gate: Getter | None,
        chunks: list[LabelChunk],
        params: list[ParamSource],
        series: list[tuple[str, Value]],
    ) -> None:
        super().__init__(header)
        self.gate = gate
        self.chunks = tuple(chunks)
        self.params = tuple((key, getter) for key, getter, _ in params)
        self.series = tuple(series)

    def render(self, obj: Any, base: str, env: Env, errors: list[RenderError]) -> str:
        if self.gate is not None and self.gate(obj) is MISSING:
            return ""
        labels = add_labels(base, self.chunks, obj, self.name, errors) if self.chunks else base
        if self.params:
            env = dict(env)
            for key, getter in self.params:
                env[key] = param_value(getter(obj))
        out = ""
        for state, value in self.series:
            if type(value) is str:
                text: str | None = value
            else:
                try:
                    text = value(obj, (), env)  # type: ignore[operator]
                except MissingValueError:
                    continue  # missing data, not bad data: no series, no error
                except EvaluationError as e:
                    errors.append(RenderError(self.name, str(e)))
                    continue
                if text is None:
                    continue
            full = labels + state
            out += f"{self.open}{full[1:]}}} {text}\n" if full else f"{self.name} {text}\n"
        return out


class Computed(Metric):
    """No fan-out, one series computed by `expression` from root-level params (the
    resource figures, `int(topology != 'nil')`): `Plain` without its loop over
    series and the value source's call."""

    __slots__ = ("chunks", "evaluate", "fixed", "gate", "params", "params_key", "text")

    def __init__(
        self,
        header: FamilyHeader,
        *,
        gate: Getter | None,
        chunks: list[LabelChunk],
        params: list[tuple[str, Getter | None]],
        params_key: str,
        expression: Expression,
    ) -> None:
        super().__init__(header)
        self.gate = gate
        self.fixed, self.chunks = split_chunks(chunks)
        # `getter` None: the param is the whole object (`valuePath: .`, as the
        # resource functions take it), read without a call.
        self.params = tuple(params)
        self.params_key = params_key
        self.evaluate = expression.evaluate
        self.text = expression.text

    def render(self, obj: Any, base: str, env: Env, errors: list[RenderError]) -> str:
        if self.gate is not None and self.gate(obj) is MISSING:
            return ""
        labels = add_labels(base, self.chunks, obj, self.name, errors) if self.chunks else base + self.fixed
        if self.params:
            # Metrics with the same params (the six resource figures of a KubeDB
            # config: `obj` = the object) share one environment per object, kept
            # in the shared one under `params_key` (see panopticon.render.program).
            shared = env.get(self.params_key)
            if shared is None:
                shared = env[self.params_key] = self.bind(obj, env)
            env = shared
        try:
            result = self.evaluate(env)
            if type(result) is float and result.is_integer() and -1e17 < result < 1e17:
                text = str(int(result))  # format_number's most common case, without its call
            elif type(result) is int and -1000 < result < 1000:
                text = str(result)
            else:
                maybe = result_text(result, self.text)
                if maybe is None:
                    return ""
                text = maybe
        except MissingValueError:
            return ""  # missing data, not bad data: no series, no error
        except EvaluationError as e:
            errors.append(RenderError(self.name, str(e)))
            return ""
        return f"{self.open}{labels[1:]}}} {text}\n" if labels else f"{self.name} {text}\n"

    def bind(self, obj: Any, shared: Env) -> Env:
        """The expression environment: `shared` plus the params read from `obj`."""
        env = {SUMMARY_CACHE: shared[SUMMARY_CACHE]}
        for key, getter in self.params:
            v = obj if getter is None else getter(obj)
            if type(v) is dict or type(v) is str:
                env[key] = v
            else:
                env[key] = param_value(MISSING if v is None else v)
        return env


class Figure(Computed):
    """`Computed` for a resource total of the whole object (`total_resource_requests(obj,
    'cpu')` with `obj` at `.`), the six figures of every KubeDB config: the figure at
    `offset` is read from the object's summary, computed once per render as the
    resource functions do, without evaluating the expression. When there is no
    summary (an error), the expression runs as in `Computed` and reports why."""

    __slots__ = ("offset",)

    def __init__(
        self,
        header: FamilyHeader,
        *,
        chunks: list[LabelChunk],
        params: list[tuple[str, Getter | None]],
        params_key: str,
        expression: Expression,
        offset: int,
    ) -> None:
        super().__init__(
            header, gate=None, chunks=chunks, params=params, params_key=params_key, expression=expression
        )
        self.offset = offset

    def render(self, obj: Any, base: str, env: Env, errors: list[RenderError]) -> str:
        # The expression's param is `obj` itself only for a plain dict (see bind).
        summary = summary_of(env, obj) if type(obj) is dict else None
        if type(summary) is not ResourceSummary or summary.totals is None:
            return super().render(obj, base, env, errors)  # raises what the function would
        labels = add_labels(base, self.chunks, obj, self.name, errors) if self.chunks else base + self.fixed
        milli = summary.totals[self.offset]
        if milli % 1000 == 0 and milli < _EXACT_MILLI:
            text = str(milli // 1000)  # whole cores or bytes: format_number's text, without floats
        else:
            text = format_number(milli / 1000)  # the expression's figure
        return f"{self.open}{labels[1:]}}} {text}\n" if labels else f"{self.name} {text}\n"


class PathSample(Metric):
    """No fan-out, one series read from `getter`, gated by the same path: a value
    that resolves to nothing skips the metric before any label is read."""

    __slots__ = ("chunks", "date_time", "getter", "where")

    def __init__(
        self, header: FamilyHeader, *, getter: Getter, where: str, date_time: bool, chunks: list[LabelChunk]
    ) -> None:
        super().__init__(header)
        self.getter = getter
        self.where = where
        self.date_time = date_time
        self.chunks = tuple(chunks)

    def render(self, obj: Any, base: str, env: Env, errors: list[RenderError]) -> str:
        raw = self.getter(obj)
        if raw is MISSING:
            return ""
        labels = add_labels(base, self.chunks, obj, self.name, errors) if self.chunks else base
        try:
            if type(raw) is int and not self.date_time and -_INT_TEXT < raw < _INT_TEXT:
                text = str(raw)  # counts, the usual value: what sample_from and format_number give
            else:
                text = sample_value(parse_time(raw) if self.date_time else sample_from(raw, self.where))
        except MissingValueError:
            return ""
        except EvaluationError as e:
            errors.append(RenderError(self.name, str(e)))
            return ""
        return f"{self.open}{labels[1:]}}} {text}\n" if labels else f"{self.name} {text}\n"


def compared_text(v: Any) -> str | None:
    """The text `==` and `!=` compare a param as, given the value its path resolved
    to: the text itself, 'nil' when absent, None for an object or a list, which
    equal no text (see `param_value` and panopticon.render.expr.values.equals)."""
    if type(v) is str:
        return v
    if v is MISSING:
        return "nil"
    if type(v) is dict or type(v) is list:
        return None
    return to_text(v)


class StateTable(Metric):
    """No fan-out; every state's value is `int(<param> == '<text>')` (or `!=`) on one param.

    The param's text fixes every state's line: `table` maps each state's text to
    the lines' tails (`phase="Ready"} 1\n`), `others` holds them for any other
    value, or none. A line is the metric's head plus a tail.
    """

    __slots__ = ("chunks", "gate", "gated", "others", "param", "table")

    def __init__(
        self,
        header: FamilyHeader,
        *,
        gate: Getter | None,
        chunks: list[LabelChunk],
        param: Getter,
        states: list[tuple[str, Indicator]],
    ) -> None:
        super().__init__(header)
        # A gate on the param's own path (`phase` at `.status.phase`, the usual
        # case) is checked on the param's value rather than resolved twice.
        self.gated = gate is param
        self.gate = None if self.gated else gate
        self.chunks = tuple(chunks)
        self.param = param
        # `states`: (state label chunk, its indicator), in order.
        self.table = {
            text: tuple(f"{chunk[1:]}}} {int((text == i.text) == i.equal)}\n" for chunk, i in states)
            for text in {i.text for _, i in states}
        }
        self.others = tuple(f"{chunk[1:]}}} {int(not i.equal)}\n" for chunk, i in states)

    def render(self, obj: Any, base: str, env: Env, errors: list[RenderError]) -> str:
        if self.gate is not None and self.gate(obj) is MISSING:
            return ""
        v = self.param(obj)
        if v is MISSING and self.gated:
            return ""
        labels = add_labels(base, self.chunks, obj, self.name, errors) if self.chunks else base
        text = compared_text(v)
        tails = self.others if text is None else self.table.get(text, self.others)
        head = f"{self.open}{labels[1:]}," if labels else self.open
        return head + head.join(tails)


class Flag(Metric):
    """No fan-out, one stateless series `int(<param> == '<text>')` (or `!=`): 1 or 0
    by the param's text (`int(tls != 'nil')`, `int(paused == 'true')`)."""

    __slots__ = ("chunks", "fixed", "gate", "gated", "indicator", "param")

    def __init__(
        self,
        header: FamilyHeader,
        *,
        gate: Getter | None,
        chunks: list[LabelChunk],
        param: Getter,
        indicator: Indicator,
    ) -> None:
        super().__init__(header)
        self.gated = gate is param  # as in StateTable
        self.gate = None if self.gated else gate
        self.fixed, self.chunks = split_chunks(chunks)
        self.param = param
        self.indicator = indicator

    def render(self, obj: Any, base: str, env: Env, errors: list[RenderError]) -> str:
        if self.gate is not None and self.gate(obj) is MISSING:
            return ""
        v = self.param(obj)
        if v is MISSING and self.gated:
            return ""
        labels = add_labels(base, self.chunks, obj, self.name, errors) if self.chunks else base + self.fixed
        _, text, equal = self.indicator
        value = "1" if (compared_text(v) == text) == equal else "0"
        return f"{self.open}{labels[1:]}}} {value}\n" if labels else f"{self.name} {value}\n"
