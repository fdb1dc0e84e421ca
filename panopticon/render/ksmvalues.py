"""kube-state-metrics' value semantics, for `each` metrics and `[key=value]` paths.

A MetricsConfiguration metric with `each` (panopticon.render.each) behaves as
kube-state-metrics' custom resource state (CRS) generators do, so that configs
converted from CRS (`panopticon convert --from ksm-crs`) serve the same series.
These are the conversions KSM applies (its `toFloat64`, Go's `fmt` `%v` and its
label name sanitizing), written down once:

- `ksm_number`: a sample value from an object's value: numbers; booleans as 1/0;
  the strings "true"/"yes" (1) and "false"/"no"/"unknown" (0), any case; RFC 3339
  times as Unix seconds; Kubernetes quantities ("250m", "5Gi"); percentages
  ("28%" is 0.28); then Go's float syntax. Anything else raises EvaluationError.
- `go_text`: a label value as KSM writes it (`fmt.Sprintf("%v", v)`): strings as
  they are, integers in decimal, floats in Go's shortest `%g` form (1e+06),
  booleans as true/false, objects as `map[k:v ...]`, lists as `[a b]`.
- `sanitize_label_name`: every character outside `[a-zA-Z0-9_]` becomes `_`.

Objects decoded from JSON keep integers as `int` (as Kubernetes' unstructured
decoding keeps int64), so `80` is written `80`, as KSM writes it.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

from panopticon.errors import EvaluationError, QuantityError
from panopticon.render.expr.values import describe
from panopticon.render.quantity import parse_quantity

_TRUE: Final = frozenset({"true", "yes"})
_FALSE: Final = frozenset({"false", "no", "unknown"})
_RFC3339: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]+))?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})"
)
_PERCENT: Final = re.compile(r"[0-9]+%")
_DECIMAL: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_HEX: Final = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+")
_SPECIAL: Final = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf}
_INVALID_LABEL_CHARS: Final = re.compile(r"[^a-zA-Z0-9_]")
MAX_TEXT: Final = 64
"""Longest string read as a number; longer strings are not numbers (bounded work)."""
MAX_DEPTH: Final = 32
"""Deepest nesting `go_text` writes out; deeper parts are written as `...`."""


def ksm_number(value: Any, *, nil_is_zero: bool = False) -> float:
    """The sample value KSM reads from `value` (its `toFloat64`)."""
    t = type(value)
    if t is int or t is float:
        return float(value)
    if value is True or value is False:
        return 1.0 if value else 0.0
    if value is None:
        if nil_is_zero:
            return 0.0
        raise EvaluationError("expected a number but found nil")
    if t is str:
        if len(value) > MAX_TEXT:  # checked before the cache, which must not keep huge strings
            raise EvaluationError(f"{describe(value)} is not a number")
        return _string_number(value)
    raise EvaluationError(f"expected a number but found {describe(value)}")


@lru_cache(maxsize=4096)
def _string_number(text: str) -> float:
    lowered = text.lower()
    if lowered in _TRUE:
        return 1.0
    if lowered in _FALSE:
        return 0.0
    seconds = rfc3339_seconds(text)
    if seconds is not None:
        return float(seconds)
    if text == text.strip():
        try:
            return float(parse_quantity(text))
        except QuantityError:
            pass
    if _PERCENT.fullmatch(text):
        return float(text[:-1]) / 100
    number = go_parse_float(text)
    if number is None:
        raise EvaluationError(f"{describe(text)} is not a number, boolean, time, quantity or percentage")
    return number


def rfc3339_seconds(text: str) -> int | None:
    """Unix seconds (rounded down) of an RFC 3339 time as Go's time.Parse reads it; else None."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, _, zone = match.groups()
    try:
        if zone == "Z":
            tz = UTC
        else:
            sign = 1 if zone[0] == "+" else -1
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if hours > 23 or minutes > 59:
                return None
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        stamp = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tz)
    except ValueError:
        return None
    return int(stamp.timestamp())


def go_parse_float(text: str) -> float | None:
    """Go's strconv.ParseFloat(text, 64), or None where Go reports an error."""
    if _DECIMAL.fullmatch(text):
        value = float(text)
        return None if math.isinf(value) else value  # out of range: an error in Go
    if _HEX.fullmatch(text):
        value = float.fromhex(text)
        return None if math.isinf(value) else value
    lowered = text.lower()
    if lowered in _SPECIAL:
        return _SPECIAL[lowered]
    if lowered.lstrip("+-") == "infinity":
        return -math.inf if lowered[0] == "-" else math.inf
    if lowered == "nan":
        return math.nan
    return None


def go_text(value: Any, limit: int = 1 << 20) -> str:
    """`value` as Go's fmt writes it with %v (decoded JSON: maps, slices, scalars).

    Objects and lists are written out to at most about `limit` characters (and
    MAX_DEPTH levels): a label value is cut well before that anyway, and the cost
    of writing a huge or deeply shared structure stays bounded."""
    t = type(value)
    if t is str:
        return value  # type: ignore[no-any-return]
    if value is True:
        return "true"
    if value is False:
        return "false"
    if t is int:
        return str(value)
    if t is float:
        return go_float_text(value)
    if value is None:
        return "<nil>"
    out: list[str] = []
    _write(value, out, [limit], 0)
    return "".join(out)


def _write(value: Any, out: list[str], budget: list[int], depth: int) -> None:
    """Append the %v text of `value` to `out` while `budget[0]` characters remain."""
    if budget[0] <= 0:
        return
    t = type(value)
    if depth >= MAX_DEPTH and (t is dict or t is list):
        text = "..."
    elif t is dict:
        out.append("map[")
        budget[0] -= 4
        for i, (key, item) in enumerate(sorted(((str(k), v) for k, v in value.items()), key=_first)):
            if budget[0] <= 0:
                return
            out.append(f"{' ' if i else ''}{key}:")
            budget[0] -= len(key) + 2
            _write(item, out, budget, depth + 1)
        text = "]"
    elif t is list:
        out.append("[")
        budget[0] -= 1
        for i, item in enumerate(value):
            if budget[0] <= 0:
                return
            if i:
                out.append(" ")
            _write(item, out, budget, depth + 1)
        text = "]"
    else:
        text = go_text(value)
    out.append(text)
    budget[0] -= len(text)


def _first(pair: tuple[str, Any]) -> str:
    return pair[0]


def go_float_text(value: float) -> str:
    """Go's strconv.FormatFloat(value, 'g', -1, 64): shortest digits, an exponent
    when it is below -4 or at least 6 (`1e+06`, `43.21`, `1.6563744e+09`)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    assert isinstance(exponent, int)
    point = len(digits) + exponent  # digits before the decimal point
    prefix = "-" if sign else ""
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        power = point - 1
        return f"{prefix}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return prefix + digits + "0" * (point - len(digits))
    return f"{prefix}{digits[:point]}.{digits[point:]}"


def sanitize_label_name(name: str) -> str:
    """KSM's label name sanitizing: characters outside [a-zA-Z0-9_] become `_`."""
    return _INVALID_LABEL_CHARS.sub("_", name)
