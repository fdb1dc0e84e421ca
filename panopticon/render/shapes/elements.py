"""The Array fan-out shape of a compiled metric (`Elements`).

Split out of `panopticon.render.shapes.metrics`, which holds the metric shapes without fan-out and
the helpers they share: an Array metric renders the series of every element context
of its field's array and drops (and counts) repeated lines. Hot path, like the rest
of `panopticon.render.shapes.metrics`; pure, imports no I/O library.
"""

from __future__ import annotations

from typing import Any, Final

from panopticon.errors import EvaluationError, MissingValueError
from panopticon.render.exposition import FamilyHeader
from panopticon.render.paths import MISSING
from panopticon.render.shapes.fanout import FanOut
from panopticon.render.shapes.metrics import (
    MAX_LABEL_VALUE,
    MAX_SERIES_PER_METRIC,
    LabelChunk,
    Metric,
    ParamSource,
    RenderError,
    Value,
    label_text,
    param_value,
)
from panopticon.render.shapes.values import Env

_DUPLICATE: Final = "duplicate series dropped (same labels twice)"


class Elements(Metric):
    """An Array fan-out: the series of every element context of `fanout`, each with
    the labels of `chunks`; repeated lines are dropped and counted."""

    __slots__ = ("chunks", "constant", "fanout", "params", "series")

    def __init__(
        self,
        header: FamilyHeader,
        *,
        fanout: FanOut,
        chunks: list[LabelChunk],
        params: list[ParamSource],
        series: list[tuple[str, Value]],
    ) -> None:
        super().__init__(header)
        self.fanout = fanout
        self.chunks = tuple(chunks)
        self.params = tuple(params)
        self.series = tuple(series)
        # The one series' text when it is constant and stateless (`value: 1`, the
        # usual info-style fan-out): no params to read, no loop over series.
        only = series[0] if len(series) == 1 else None
        self.constant = only[1] if only is not None and not only[0] and isinstance(only[1], str) else None

    def render(self, obj: Any, base: str, env: Env, errors: list[RenderError]) -> str:
        contexts = self.fanout.contexts(obj, MAX_SERIES_PER_METRIC + 1)
        if not contexts:
            return ""
        if len(contexts) > MAX_SERIES_PER_METRIC:
            errors.append(RenderError(self.name, f"more than {MAX_SERIES_PER_METRIC} elements; rest dropped"))
            del contexts[MAX_SERIES_PER_METRIC:]
        mark = len(errors)
        lines = self.lines(obj, contexts, base, env, errors, checked=False)
        if len(lines) > 1 and len(set(lines)) < len(lines):
            # Elements with the same labels (rare): rendered again, each repeat
            # dropped and counted where it occurs, so errors keep their order.
            del errors[mark:]
            lines = self.lines(obj, contexts, base, env, errors, checked=True)
        return "".join(lines)

    def lines(
        self,
        obj: Any,
        contexts: list[tuple[Any, ...]],
        base: str,
        env: Env,
        errors: list[RenderError],
        *,
        checked: bool,
    ) -> list[str]:
        """Every context's lines; with `checked`, repeated lines dropped and counted."""
        name, head, constant = self.name, self.open, self.constant
        chunks, params, series = self.chunks, self.params, self.series
        out: list[str] = []
        seen: set[str] | None = set() if checked else None
        shared = env
        for ctx in contexts:
            labels = base
            for chunk in chunks:
                if isinstance(chunk, str):
                    labels += chunk
                    continue
                key, prefix, getter, level = chunk
                v = getter(obj if level < 0 else ctx[level])
                if v is not MISSING:
                    if type(v) is not str or len(v) > MAX_LABEL_VALUE or "\\" in v or '"' in v or "\n" in v:
                        v = label_text(v, name, key, errors)
                    labels = f'{labels}{prefix}{v}"'
            if constant is not None:
                line = f"{head}{labels[1:]}}} {constant}\n" if labels else f"{name} {constant}\n"
                if seen is not None:
                    if line in seen:
                        errors.append(RenderError(name, _DUPLICATE))
                        continue
                    seen.add(line)
                out.append(line)
                continue
            if params:
                env = dict(shared)
                for key, getter, level in params:
                    env[key] = param_value(getter(obj if level < 0 else ctx[level]))
            for state, value in series:
                if type(value) is str:
                    text: str | None = value
                else:
                    try:
                        text = value(obj, ctx, env)  # type: ignore[operator]
                    except MissingValueError:
                        continue
                    except EvaluationError as e:
                        errors.append(RenderError(name, str(e)))
                        continue
                    if text is None:
                        continue
                full = labels + state
                line = f"{head}{full[1:]}}} {text}\n" if full else f"{name} {text}\n"
                if seen is not None:
                    if line in seen:
                        errors.append(RenderError(name, _DUPLICATE))
                        continue
                    seen.add(line)
                out.append(line)
        return out
