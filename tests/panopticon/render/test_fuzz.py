"""Fuzzing the engines with inputs drawn from their grammars (tests/panopticon/strategies.py).

Properties (issue 13):
- compiling an expression, a path or a config raises nothing but the project's typed
  errors (`ExpressionError`, `PathError`; a config's problems are findings), and no
  config compile reaches the isolation boundary (a fault there is a bug to fix);
- evaluating an expression raises nothing but `EvaluationError`, and arithmetic on
  numbers (edges included) raises nothing at all, as in Go;
- rendering never raises, and never reports a fault: every failed series is an
  ordinary, explained render error;
- the exposition passes the strict line grammar and Prometheus' own parser.

The budget is the settings profile's: modest in CI, `--fuzz-examples N` for a long
run, without the per-test timeout
(`pytest -m fuzz --fuzz-examples 10000 --timeout 0 tests/panopticon/render/test_fuzz.py`).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panopticon.config.findings import Finding
from panopticon.errors import EvaluationError, ExpressionError, PathError
from panopticon.render.expr.compiler import compile_expression
from panopticon.render.paths import MISSING, compile_path
from panopticon.render.program import compile_config
from tests.panopticon import strategies as s
from tests.panopticon.render.test_properties import assert_valid_exposition

pytestmark = pytest.mark.fuzz
SLOW_DATA = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
RESULT_TYPES = (int, float, str, bool, type(None), list, dict)


@SLOW_DATA
@given(text=s.expressions(), env=st.fixed_dictionaries({"a": s.SCALARS, "b": s.JSON, "obj": s.JSON}))
def test_expressions_from_the_grammar_fail_only_with_typed_errors(text: str, env: dict[str, Any]) -> None:
    try:
        expression = compile_expression(text, set(s.PARAMS))
    except ExpressionError:
        return
    try:
        result = expression.evaluate(dict(env))
    except EvaluationError:
        return
    assert isinstance(result, RESULT_TYPES), (text, result)


@SLOW_DATA
@given(text=s.arithmetic(), a=s.NUMBERS, b=s.NUMBERS)
def test_arithmetic_on_edge_numbers_never_fails_as_in_go(text: str, a: Any, b: Any) -> None:
    expression = compile_expression(text, {"a", "b"})
    result = expression.evaluate({"a": a, "b": b})
    assert type(result) in (int, float, str), (text, a, b, result)  # a bare leaf is itself


@SLOW_DATA
@given(text=s.paths(), obj=s.JSON)
def test_paths_from_the_grammar_compile_or_fail_with_a_path_error_and_never_fail_to_resolve(
    text: str, obj: Any
) -> None:
    try:
        path = compile_path(text)
    except PathError:
        return
    if path.wildcards:
        return
    value = path.get(obj)
    assert value is MISSING or isinstance(value, RESULT_TYPES)


@SLOW_DATA
@given(body=s.configs(), data=st.data())
def test_any_config_compiles_to_findings_and_renders_any_object_to_valid_exposition(
    body: Any, data: st.DataObject
) -> None:
    compiled = compile_config(body)
    assert compiled.fault is None, compiled.fault
    assert all(isinstance(f, Finding) and f.message for f in compiled.findings)
    program = compiled.program
    if program is None:
        return
    for _ in range(3):
        obj = data.draw(s.objects(program.target.api_version, program.target.kind))
        for namespaced in (None, False):
            out = program.render(obj, namespaced=namespaced)
            faults = [e for e in out.errors if e.fault]
            assert not faults, faults
            for family, text in out.families.items():
                assert text.startswith(family)
                assert_valid_exposition(text)
