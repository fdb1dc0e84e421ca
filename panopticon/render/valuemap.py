"""`metricValue.valueMap`: a string field (an enum such as a phase) as a number.

A Panopticon extension of MetricsConfiguration: kube-state-metrics' custom resource
state and AppsCode Panopticon can only emit one series per state (StateSet/`states`)
for a field such as `.status.phase`; a value map gives one series whose value codes the
state, which is what dashboards that plot a state over time want:

    metricValue: {valueFromPath: .status.phase, valueMap: {Running: 1, Pending: 2}, default: 0}

Keys are matched against the value's text as labels see it (`true`, `1`, `Running`),
so YAML keys written as booleans or numbers match the same values in objects. Values
the map does not list take `default`; without one they give no series. A missing or
null path gives no series, as for any `valueFromPath`.
"""

from __future__ import annotations

from typing import Any

from panopticon.config.valuemapspec import Entries
from panopticon.render.exposition import sample_value
from panopticon.render.paths import MISSING, Getter
from panopticon.render.shapes.values import Env, ValueFn
from panopticon.text import to_text


def mapped_value(getter: Getter, level: int, entries: Entries, default: int | float | None) -> ValueFn:
    """The series value: the path's value looked up in the map (see the module's docstring)."""
    samples = {key: sample_value(number) for key, number in entries}
    fallback = None if default is None else sample_value(default)

    def fn(obj: Any, ctx: tuple[Any, ...], env: Env) -> str | None:
        raw = getter(obj if level < 0 else ctx[level])
        if raw is MISSING or raw is None:
            return None
        if type(raw) is str:
            return samples.get(raw, fallback)
        if isinstance(raw, (dict, list)):
            return fallback
        return samples.get(to_text(raw), fallback)

    return fn
