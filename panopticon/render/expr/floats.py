"""Go's float64 arithmetic, as govaluate evaluates AppsCode Panopticon's expressions.

govaluate turns every number into a Go `float64` and evaluates `/` as Go's float
division, `**` as `math.Pow` and `%` as `math.Mod`. None of them fails: they give
NaN or ±Inf where Python raises (`ZeroDivisionError`, `OverflowError`,
`ValueError`) or, for `**`, returns a complex number (`(-8) ** (1/3)`). The
functions here give Go's answer for every pair of floats and never raise, so the
compiler's constant folding and rendering share one set of rules (documented in
docs/configuration.md, "Numbers").
"""

from __future__ import annotations

import math

__all__ = ["go_div", "go_mod", "go_pow", "to_float"]


def to_float(n: int | float) -> float:
    """`n` as a float64: an integer too large for one is ±Inf (Go's conversion of an
    out-of-range constant would not compile; a value read at run time saturates)."""
    try:
        return float(n)
    except OverflowError:
        return math.inf if n > 0 else -math.inf


def go_div(x: float, y: float) -> float:
    """`x / y` in IEEE 754: x/±0 is ±Inf (the sign of x times that of the zero), 0/0 NaN."""
    if y == 0:
        if x == 0 or math.isnan(x):
            return math.nan
        return math.copysign(math.inf, x) * math.copysign(1.0, y)
    return x / y


def go_mod(x: float, y: float) -> float:
    """Go's `math.Mod(x, y)`: the remainder with the sign of x. Mod(±Inf, y), Mod(NaN, y),
    Mod(x, 0) and Mod(x, NaN) are NaN; Mod(x, ±Inf) is x."""
    if y == 0 or math.isinf(x) or math.isnan(x) or math.isnan(y):
        return math.nan
    if math.isinf(y):
        return x
    return math.fmod(x, y)


def _odd_integer(y: float) -> bool:
    return math.isfinite(y) and y.is_integer() and abs(y) < 2**53 and int(y) % 2 == 1


def go_pow(x: float, y: float) -> float:
    """Go's `math.Pow(x, y)`. Python's `math.pow` agrees with it (both follow C99's
    `pow`) except where it raises; those cases, per Go's documentation:

    - Pow(±0, y) = ±Inf for y an odd integer < 0, +Inf for any other y < 0;
    - Pow(x, y) = NaN for finite x < 0 and finite non-integer y;
    - a result too large is ±Inf (-Inf for a negative base and an odd exponent)."""
    try:
        return math.pow(x, y)
    except ValueError:
        if x == 0:  # y < 0: a pole
            return math.copysign(math.inf, x) if _odd_integer(y) else math.inf
        return math.nan  # a negative base and a fractional exponent
    except OverflowError:
        return -math.inf if x < 0 and _odd_integer(y) else math.inf
