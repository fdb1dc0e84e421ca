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

from panopticon.errors import EvaluationError, MissingValueError
from panopticon.render.expr.floats import to_float
from panopticon.text import numeric_or_none, to_text

_NUMERIC = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SPECIAL = {"nan": math.nan, "+inf": math.inf, "inf": math.inf, "-inf": -math.inf}
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})")


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
