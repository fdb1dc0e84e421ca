"""Value sources: how a compiled metric computes one series' sample text.

Split out of `panopticon.render.shapes.metrics`, which holds the metric shapes that call these: a
value is read from a path (numbers, booleans, quantities, times) or computed by an
expression from the params. Pure; imports no I/O library.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from panopticon.errors import EvaluationError, QuantityError
from panopticon.render.exposition import sample_value
from panopticon.render.expr.compiler import Expression
from panopticon.render.expr.functions import numeric_result
from panopticon.render.expr.values import describe, parse_time
from panopticon.render.paths import MISSING, Getter
from panopticon.render.quantity import parse_quantity
from panopticon.text import numeric_or_none

Env = dict[str, Any]
# A value source returns the sample text, or None when the series is to be skipped
# (its path resolves to nothing); it raises EvaluationError when the value is bad.
ValueFn = Callable[[Any, tuple[Any, ...], Env], str | None]


def path_value(getter: Getter, level: int, where: str, date_time: bool) -> ValueFn:
    """The value read from a path (on the root, or on the element of `level`)."""

    def fn(obj: Any, ctx: tuple[Any, ...], env: Env) -> str | None:
        raw = getter(obj if level < 0 else ctx[level])
        if raw is MISSING:
            return None
        return sample_value(parse_time(raw) if date_time else sample_from(raw, where))

    return fn


def sample_from(raw: Any, where: str) -> int | float:
    """A value read from an object as a sample: numbers, booleans (1/0), numeric
    strings, quantities (`500m`, `1Gi`) and RFC 3339 times."""
    if raw is True or raw is False:
        return int(raw)
    number = numeric_or_none(raw)
    if number is not None:
        return number
    if isinstance(raw, str):
        try:
            return float(parse_quantity(raw))
        except QuantityError:
            pass
        try:
            return parse_time(raw)
        except EvaluationError:
            pass
    raise EvaluationError(f"{where}: {describe(raw)} is not a number, quantity or time")


def expression_value(expression: Expression) -> ValueFn:
    """The value an expression computes from the params."""
    evaluate, where = expression.evaluate, expression.text

    def fn(obj: Any, ctx: tuple[Any, ...], env: Env) -> str | None:
        result = evaluate(env)
        if type(result) is int and -1000 < result < 1000:
            return str(result)  # the common case: int(...) of a comparison
        return result_text(result, where)

    return fn


def result_text(result: Any, where: str) -> str | None:
    """The sample text of an expression's result; None for nil (no series)."""
    number = numeric_result(result)
    if number is None:
        if result is None:
            return None
        raise EvaluationError(f"{where!r} gave {describe(result)}, not a number")
    return sample_value(number)
