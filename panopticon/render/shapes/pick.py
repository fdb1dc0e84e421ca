"""Picking a compiled metric's render shape from its compiled parts.

Split out of `panopticon.render.program`, which validates a config and compiles its labels,
params and values: this module takes those compiled parts and returns the cheapest
shape in `panopticon.render.shapes.metrics` (or `panopticon.render.shapes.elements`)
that renders the same series and errors. Pure; imports no I/O library.
"""

from __future__ import annotations

from typing import NamedTuple

from panopticon.render.exposition import FamilyHeader
from panopticon.render.expr.compiler import Expression, Indicator
from panopticon.render.expr.functions import figure_offset
from panopticon.render.paths import Getter, Path
from panopticon.render.shapes.elements import Elements
from panopticon.render.shapes.fanout import FanOut
from panopticon.render.shapes.metrics import (
    Computed,
    Figure,
    Flag,
    LabelChunk,
    Metric,
    PathSample,
    Plain,
    StateTable,
    Value,
)


class CompiledValue(NamedTuple):
    """A compiled series value, and what its shape allows (see `pick_shape`)."""

    source: Value
    path: Path | None = None
    """The path the value is read from, if it is."""
    expression: Expression | None = None
    """The expression that computes the value, if one does."""
    indicator: Indicator | None = None
    """Set if the value is `int(param == 'text')` or `!=`."""


def value_source(path: Path) -> tuple[Getter, int]:
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
            getter, level = value_source(path)
            chunks.append((key, f',{key}="', getter, level))
    return chunks


def pick_shape(
    header: FamilyHeader,
    *,
    gate: Path | None,
    fanout: FanOut | None,
    chunks: list[LabelChunk],
    params: list[tuple[str, str | Path]],
    values: list[tuple[str, CompiledValue]],
    date_time: bool,
) -> Metric:
    """The cheapest render shape that gives this metric's series (see panopticon.render.shapes.metrics)."""
    # Constant params were folded into the expressions at compile time.
    sources = {key: src for key, src in params if not isinstance(src, str)}
    series = [(state, value.source) for state, value in values]
    path_params = [(key, *value_source(src)) for key, src in sources.items()]
    if fanout is not None:
        return Elements(header, fanout=fanout, chunks=chunks, params=path_params, series=series)
    if len(values) == 1 and not values[0][0] and gate is not None:
        path = values[0][1].path
        if path is not None and path.segments == gate.segments:
            getter = gate.getters[0]
            return PathSample(header, getter=getter, where=path.text, date_time=date_time, chunks=chunks)
    gate_getter = gate.getters[0] if gate is not None else None
    indicated = _indicated(header, gate, chunks, sources, values)
    if indicated is not None:
        return indicated
    if len(values) == 1 and not values[0][0] and values[0][1].expression is not None:
        return _computed(header, gate, chunks, sources, values[0][1].expression)
    return Plain(header, gate=gate_getter, chunks=chunks, params=path_params, series=series)


def _indicated(
    header: FamilyHeader,
    gate: Path | None,
    chunks: list[LabelChunk],
    sources: dict[str, Path],
    values: list[tuple[str, CompiledValue]],
) -> Metric | None:
    """A StateTable or a Flag, if every value is an indicator of the same param."""
    indicators = [value.indicator for _, value in values if value.indicator is not None]
    keys = {indicator.param for indicator in indicators}
    param = sources.get(keys.pop()) if len(keys) == 1 and len(indicators) == len(values) else None
    if param is None:
        return None
    getter = param.getters[0]
    # A gate on the param's own path is passed as the param's getter: read once.
    gate_getter = None if gate is None else getter if gate.segments == param.segments else gate.getters[0]
    if all(state for state, _ in values):
        states = list(zip((state for state, _ in values), indicators, strict=True))
        return StateTable(header, gate=gate_getter, chunks=chunks, param=getter, states=states)
    if len(values) == 1:
        return Flag(header, gate=gate_getter, chunks=chunks, param=getter, indicator=indicators[0])
    return None


def _computed(
    header: FamilyHeader,
    gate: Path | None,
    chunks: list[LabelChunk],
    sources: dict[str, Path],
    expression: Expression,
) -> Metric:
    """A Figure, or else a Computed, for a single series computed by `expression`."""
    whole = [(key, None if src.is_root else src.getters[0]) for key, src in sources.items()]
    # Param names are identifiers: this key cannot be one (see Computed.render).
    params_key = " ".join(f"{key}={src.normalized()}" for key, src in sources.items())
    call = expression.call
    if call is not None and gate is None:
        param = sources.get(call.param)
        offset = figure_offset(call.function, call.constants)
        if param is not None and param.is_root and offset is not None:
            return Figure(
                header,
                chunks=chunks,
                params=whole,
                params_key=params_key,
                expression=expression,
                offset=offset,
            )
    gate_getter = gate.getters[0] if gate is not None else None
    return Computed(
        header, gate=gate_getter, chunks=chunks, params=whole, params_key=params_key, expression=expression
    )
