"""How values read as numbers and as text, as Go and Prometheus read and write them.

The leaf under configs, expressions and the exposition: a config's `valueMap` keys,
an expression's operands and a sample's value all follow the same rules (integers
without `.0`, `NaN`, `+Inf`/`-Inf`, `-0` keeping its sign, numeric strings parsed as
Go's `strconv.ParseFloat` would). It imports nothing of Panopticon, so every layer
may use it.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

import orjson

_NUMERIC = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SPECIAL = {"nan": math.nan, "+inf": math.inf, "inf": math.inf, "-inf": -math.inf}

MAX_NUMERIC_TEXT = 64
"""Longest string considered for numeric conversion; longer ones are not numbers."""


def numeric_or_none(value: Any) -> int | float | None:
    """The number `value` denotes (numbers and numeric strings), else None."""
    t = type(value)
    if t is int or t is float:
        return value  # type: ignore[no-any-return]
    if t is str:
        return _parse_numeric(value)
    return None


@lru_cache(maxsize=4096)
def _parse_numeric(text: str) -> int | float | None:
    if len(text) > MAX_NUMERIC_TEXT:
        return None
    s = text.strip()
    if _NUMERIC.fullmatch(s):
        if any(c in s for c in ".eE"):
            return float(s)
        n = int(s)
        return -0.0 if n == 0 and s[0] == "-" else n  # Go's ParseFloat keeps the sign of -0
    return _SPECIAL.get(s.lower())


def format_number(value: int | float) -> str:
    """Compact text of a number: integers without `.0`, NaN, +Inf, -Inf."""
    if type(value) is float:
        # The hot case (resource figures, timestamps), tested in the order that
        # settles common values soonest; NaN and the infinities are not integers.
        if value.is_integer():
            return str(int(value)) if -1e17 < value < 1e17 else repr(value)
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return repr(value)
    if type(value) is int:
        if -(10**17) < value < 10**17:
            return str(value)
        try:
            value = float(value)
        except OverflowError:
            return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value in (math.inf, -math.inf):
        return "+Inf" if value > 0 else "-Inf"
    if abs(value) < 1e17 and float(value).is_integer():
        return str(int(value))  # repr would write 1e16 as '1e+16' but 1e15 as '1000000000000000.0
    return repr(value)


def to_text(value: Any) -> str:
    """Text of a value as labels and string comparisons see it."""
    t = type(value)
    if t is str:
        return value  # type: ignore[no-any-return]
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "nil"
    if t is int or t is float:
        return format_number(value)
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        # Nested deeper than orjson's limit, or holding lone surrogates: no text for it.
        return "<unrenderable>"
