"""`aggregate: {function, by}` on a metric: one series per group of `by` values.

A Panopticon extension of MetricsConfiguration. What PromQL's `count by (phase)
(kube_pod_status_phase)` computes at query time from one series per object is served
directly, as one series per phase, so the per-object series need never be stored by
Prometheus:

    - name: phase_count
      type: gauge
      aggregate: {function: count, by: [phase]}
      labels: [{key: phase, valuePath: .status.phase}]
      metricValue: {value: 1}

The metric is rendered per object as any other (same labels, values, fan-out), then
reduced, still per object, to one *partial* line per group, carrying only the `by`
labels: `count` counts the object's series, `sum`/`min`/`max` combine their values.
Those partials are what is stored, under the object's uid like any family's lines, so
everything that keeps per-object series exact keeps the aggregates exact: a bucket's
partials move, are fenced and are collected with the bucket, whichever shard owns it
and however often it moves. Whoever serves the family combines every object's partial
lines into the groups' figures (`panopticon.render.combine`, the same rule on every path).

A series that lacks a `by` label, or has it empty, falls in the group without it,
as in PromQL, where an empty label is no label.
"""

from __future__ import annotations

import re
from typing import Any

from panopticon.config.aggregatespec import Aggregation
from panopticon.render.combine import Groups
from panopticon.render.shapes.metrics import Metric, RenderError
from panopticon.render.shapes.values import Env
from panopticon.text import format_number

_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')
"""One label of a rendered line (values are escaped: `\\\\`, `\\"`, `\\n`)."""


class Aggregated(Metric):
    """A metric whose lines are reduced, per object, to one partial line per group."""

    __slots__ = ("aggregation", "by", "inner")

    def __init__(self, inner: Metric, aggregation: Aggregation) -> None:
        super().__init__(inner.header)
        self.inner = inner
        self.aggregation = aggregation
        self.by = aggregation.by

    def render(self, obj: Any, base: str, env: Env, errors: list[RenderError]) -> str:
        text = self.inner.render(obj, base, env, errors)
        return partial_lines(self.name, self.aggregation, text) if text else ""


def partial_lines(name: str, aggregation: Aggregation, text: str) -> str:
    """`text` (one object's lines of the family) reduced to one line per group of
    `aggregation.by` values, in group order: the object's partial aggregate."""
    by = aggregation.by
    count = aggregation.function == "count"
    groups: Groups[str] = Groups("sum" if count else aggregation.function)
    head = len(name) + 1  # `name{`
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if not series:
            continue
        if by and len(series) > head:
            found = dict(_PAIR.findall(series, head, len(series) - 1))
            key = ",".join(f'{k}="{v}"' for k in by if (v := found.get(k)))
        else:
            key = ""
        groups.add(key, 1.0 if count else float(value))
    return "".join(
        f"{name}{{{key}}} {format_number(figure)}\n" if key else f"{name} {format_number(figure)}\n"
        for key, figure in groups.items()
    )
