"""Reading `spec.limits`: a MetricsConfiguration's cap on the series it may have.

A Panopticon extension (issue 17). Only `series` is defined: a non-negative integer,
the most series the config's objects may have in all (every family of the config,
summed over every object). The config layer's half: structure and field-path errors
for untrusted input. Which series are kept when the cap is reached is
`panopticon.render.limits`; the shard's enforcement is `shard/limiting.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from panopticon.config.findings import type_name

Report = Callable[[str, str], None]

MAX_SERIES_LIMIT = 1 << 62
"""Larger caps are refused: the count is exchanged as JSON between processes."""


def read_limits(raw: Any, where: str, error: Report) -> int | None:
    """The series cap from `spec.limits` (None: absent, or no usable cap; each problem
    is reported at its field path)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        error(where, f"must be an object ({{series: N}}), not {type_name(raw)}")
        return None
    for key in raw:
        if key != "series":
            error(f"{where}.{key}", "unknown field: limits has only series")
    if "series" not in raw:
        error(f"{where}.series", "is required")
        return None
    return read_series_limit(raw["series"], f"{where}.series", error)


def read_series_limit(value: Any, where: str, error: Report) -> int | None:
    """A series cap: an integer from 0 (no series at all) up; YAML floats such as
    `1e3` are accepted when whole, booleans and text are not."""
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int:
        shown = repr(value) if type(value) in (int, float) else type_name(value)
        error(where, f"must be a non-negative integer, not {shown}")
        return None
    if value < 0:
        error(where, f"must be a non-negative integer, not {value}")
        return None
    if value > MAX_SERIES_LIMIT:
        error(where, f"must be at most {MAX_SERIES_LIMIT}")
        return None
    return value
