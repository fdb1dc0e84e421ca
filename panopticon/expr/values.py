"""Values and conversions shared by expressions and rendering.

Expression values are Python `int`, `float`, `str`, `bool`, `None` (nil), `list`
and `dict` (objects passed through params, such as `valuePath: .`). Parameters reach
expressions as strings, as upstream passes them (`int(paused == 'true')`), so the
operators convert where a user would expect it:

- arithmetic and ordering accept numbers and numeric strings (`'3' > 2`);
- `==`/`!=` compare numerically when one side is a number and the other numeric,
  else by text (two strings compare as text: `'1.0' != '1'`), where
  nil reads as `'nil'` (upstream configs write `int(topology != 'nil')`) and
  booleans as `'true'`/`'false'`;
- logical operators accept booleans and the strings `'true'`/`'false'`.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

from panopticon.errors import EvaluationError, MissingValueError
from panopticon.expr.floats import to_float

_NUMERIC = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SPECIAL = {"nan": math.nan, "+inf": math.inf, "inf": math.inf, "-inf": -math.inf}
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})")

MAX_NUMERIC_TEXT = 64
"""Longest string considered for numeric conversion; longer ones are not numbers."""


def describe(value: Any) -> str:
    """Short, safe rendering of a value for error messages."""
    if isinstance(value, str):
        return repr(value[:40] + "…") if len(value) > 40 else repr(value)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nil"
    return repr(value)


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


def to_number(value: Any, what: str = "value") -> float:
    """The float `value` denotes. Arithmetic is float64, as in govaluate and Prometheus,
    so no input can build huge integers."""
    n = numeric_or_none(value)
    if n is None:
        if value is None:
            raise MissingValueError(f"{what} is nil")
        raise EvaluationError(f"{what} {describe(value)} is not a number")
    return to_float(n)


def to_bool(value: Any, what: str = "value") -> bool:
    if value is True or value is False:
        return bool(value)
    if type(value) is str:
        low = value.lower()
        if low == "true":
            return True
        if low == "false":
            return False
    if value is None:
        raise MissingValueError(f"{what} is nil")
    raise EvaluationError(f"{what} {describe(value)} is not a boolean")


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


def equals(a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    if ta is str and tb is str:
        return a == b  # type: ignore[no-any-return]
    if (ta is int or ta is float) and (tb is int or tb is float):
        return a == b  # type: ignore[no-any-return]
    if ta is int or ta is float or tb is int or tb is float:
        na, nb = numeric_or_none(a), numeric_or_none(b)
        if na is not None and nb is not None:
            return na == nb
    if ta in (dict, list) or tb in (dict, list):
        return ta is tb and bool(a == b)
    return to_text(a) == to_text(b)


def parse_time(value: Any) -> int | float:
    """RFC 3339 text (Kubernetes' time format) to Unix seconds; numbers pass through."""
    t = type(value)
    if t is int or t is float:
        return value  # type: ignore[no-any-return]
    if value is None:
        raise MissingValueError("time is nil")
    if t is not str:
        raise EvaluationError(f"{describe(value)} is not an RFC 3339 time")
    return _parse_time_text(value)


@lru_cache(maxsize=4096)
def _parse_time_text(text: str) -> int | float:
    if len(text) > 40 or not _RFC3339.fullmatch(text):
        raise EvaluationError(f"{describe(text)} is not an RFC 3339 time")
    try:
        stamp = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError as e:
        raise EvaluationError(f"{describe(text)} is not a valid time: {e}") from e
    seconds = stamp.timestamp()
    return int(seconds) if seconds.is_integer() else seconds
