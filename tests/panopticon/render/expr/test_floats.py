"""Go's float64 rules for `/`, `%` and `**`, case by case from Go's documentation of
`math.Pow` and `math.Mod` (govaluate evaluates with them), and through expressions:
constant ones fold at compile time, the others apply at render time."""

from __future__ import annotations

import math
from typing import Any

import pytest

from panopticon.render.expr.compiler import compile_expression
from panopticon.render.expr.floats import go_div, go_mod, go_pow

INF, NAN = math.inf, math.nan


def same(a: float, b: float) -> bool:
    """Equal as Go would print them: NaN matches NaN, and the sign of a zero counts."""
    if math.isnan(b):
        return math.isnan(a)
    return a == b and math.copysign(1, a) == math.copysign(1, b)


# (x, y, Pow(x, y)) from the special cases listed in Go's math.Pow documentation.
POW_CASES = [
    (5.0, 0.0, 1.0),  # Pow(x, ±0) = 1 for any x
    (NAN, -0.0, 1.0),
    (1.0, NAN, 1.0),  # Pow(1, y) = 1 for any y
    (7.5, 1.0, 7.5),  # Pow(x, 1) = x
    (NAN, 2.0, NAN),
    (2.0, NAN, NAN),
    (0.0, -3.0, INF),  # Pow(±0, y) = ±Inf for y an odd integer < 0
    (-0.0, -3.0, -INF),
    (0.0, -INF, INF),
    (-0.0, INF, 0.0),
    (0.0, -2.0, INF),  # +Inf for finite y < 0 and not an odd integer
    (-0.0, -0.5, INF),
    (-0.0, 3.0, -0.0),  # ±0 for y an odd integer > 0
    (-0.0, 2.0, 0.0),
    (-1.0, INF, 1.0),
    (-1.0, -INF, 1.0),
    (2.0, INF, INF),
    (2.0, -INF, 0.0),
    (0.5, INF, 0.0),
    (0.5, -INF, INF),
    (INF, 0.5, INF),
    (INF, -1.0, 0.0),
    (-INF, 3.0, -INF),  # Pow(-Inf, y) = Pow(-0, -y)
    (-INF, -3.0, -0.0),
    (-INF, 0.5, INF),
    (-8.0, 1 / 3, NAN),  # finite x < 0 and finite non-integer y
    (-3.0, 0.5, NAN),
    (-2.0, 3.0, -8.0),
    (10.0, 400.0, INF),  # overflow
    (-10.0, 401.0, -INF),
    (-10.0, 400.0, INF),
    (10.0, -400.0, 0.0),  # underflow
]


@pytest.mark.parametrize(("x", "y", "expected"), POW_CASES)
def test_pow_gives_what_go_math_pow_gives(x: float, y: float, expected: float) -> None:
    assert same(go_pow(x, y), expected), (x, y, go_pow(x, y))


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        (INF, 2.0, NAN),  # Mod(±Inf, y) = NaN
        (-INF, 2.0, NAN),
        (NAN, 2.0, NAN),
        (3.0, 0.0, NAN),  # Mod(x, 0) = NaN
        (3.0, INF, 3.0),  # Mod(x, ±Inf) = x
        (-3.0, -INF, -3.0),
        (3.0, NAN, NAN),
        (-7.0, 3.0, -1.0),  # the sign of x
        (7.0, -3.0, 1.0),
        (5.5, 2.0, 1.5),
    ],
)
def test_mod_gives_what_go_math_mod_gives(x: float, y: float, expected: float) -> None:
    assert same(go_mod(x, y), expected)


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        (1.0, 0.0, INF),
        (-1.0, 0.0, -INF),
        (1.0, -0.0, -INF),
        (0.0, 0.0, NAN),
        (NAN, 0.0, NAN),
        (INF, INF, NAN),
    ],
)
def test_division_is_ieee_754_float_division(x: float, y: float, expected: float) -> None:
    assert same(go_div(x, y), expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(0-8) ** (1/3)", NAN),
        ("0 ** (0-1)", INF),
        ("(0-10) ** 401", -INF),
        ("10 ** 400", INF),
        ("1e308 * 10", INF),
        ("1e308 * 10 - 1e308 * 10", NAN),
        ("(1e308 * 10) % 2", NAN),
        ("5 % 0", NAN),
        ("1 / 0 < 2", False),
        ("0 / 0 < 1", False),
        ("0 / 0 >= 1", False),
        ("0 / 0 == 0 / 0", False),
        ("0 / 0 != 0 / 0", True),
        ("100000000000000000000000000000000000000000000000000000000000 ** 6", INF),
    ],
)
def test_constant_expressions_fold_to_go_values_at_compile_time(text: str, expected: Any) -> None:
    expression = compile_expression(text, set())
    assert expression.constant
    value = expression.evaluate({})
    assert value is expected if isinstance(expected, bool) else same(value, expected)


@pytest.mark.parametrize(
    ("text", "r", "expected"),
    [
        ("-r ** 0.5", "3", NAN),
        ("r ** 0.5", "-4", NAN),
        ("r % 2", "+Inf", NAN),
        ("r % 2", "NaN", NAN),
        ("1 / r", "-0", -INF),
        ("r ** r", "1e308", INF),
        ("r * 1e308", "1e308", INF),
    ],
)
def test_expressions_of_object_values_follow_go_at_render_time(text: str, r: str, expected: float) -> None:
    expression = compile_expression(text, {"r"})
    assert not expression.constant
    assert same(expression.evaluate({"r": r}), expected)
