"""Property tests: hostile objects never break rendering; hostile expressions never hang.

Invariant 1 and 6 of the architecture: whatever an object contains, every example
config renders it into valid exposition (checked by a strict line grammar and by
Prometheus' Python parser) plus counted errors, and never raises.
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from panopticon.config.documents import read_documents
from panopticon.errors import EvaluationError, ExpressionError
from panopticon.render.exposition import encode
from panopticon.render.expr.compiler import compile_expression
from panopticon.render.program import Program
from tests.panopticon.examples import OBJECT_FILES, VALID_CONFIGS, compiled

PROGRAMS: list[Program] = [p for p in (compiled(c).program for c in VALID_CONFIGS) if p is not None]

LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
LINE = re.compile(
    rf"[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{{[a-zA-Z_][a-zA-Z0-9_]*={LABEL_VALUE}(?:,[a-zA-Z_][a-zA-Z0-9_]*={LABEL_VALUE})*\}})?"
    r" (?:NaN|[+-]Inf|-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)"
)

# Strings that have broken exporters: quotes, backslashes, newlines, NUL, lone
# surrogates (valid in JSON decoded by Python, invalid in UTF-8), and a megabyte.
NASTY = st.sampled_from(
    ['"', "\\", "\n", "\\n", '\\"', "\x00", "\ud800", "\udfff", "a\ud83d", "\r\n", "}", "{", ",", "=", "ä€😀"]
)
TEXT = st.one_of(
    st.text(max_size=30),
    st.lists(NASTY, max_size=8).map("".join),
    st.just("x" * (1 << 20)),
    st.sampled_from(
        ["Ready", "true", "false", "25%", "1Gi", "500m", "2021-08-23T10:00:00Z", "nil", "1e308", "NaN"]
    ),
)
SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), TEXT
)
KEYS = st.one_of(
    st.sampled_from(
        ["metadata", "spec", "status", "name", "namespace", "labels", "replicas", "containers", "conditions",
         "phase", "type", "resources", "requests", "limits", "cpu", "memory", "storage", "podTemplate",
         "shardTopology", "shard", "shards", "topology", "tls", "storageType", "version", "creationTimestamp"]
    ),
    st.text(max_size=10),
)  # fmt: skip
JSON = st.recursive(
    SCALAR,
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(KEYS, children, max_size=6)),
    max_leaves=40,
)


def _base_objects() -> list[dict[str, Any]]:
    return [doc.body for path in OBJECT_FILES for doc in read_documents(str(path))]


BASES = _base_objects()


@st.composite
def hostile_objects(draw: st.DrawFn) -> Any:
    """A real example object with random parts replaced, or a random JSON value."""
    if draw(st.booleans()):
        return draw(JSON)
    obj = _mutate(draw, draw(st.sampled_from(BASES)), depth=0)
    return obj


def _mutate(draw: st.DrawFn, value: Any, depth: int) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    if isinstance(value, dict):
        return {k: _mutate(draw, v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_mutate(draw, v, depth + 1) for v in value]
    return value


def deeply_nested(depth: int) -> dict[str, Any]:
    obj: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        obj = {"spec": obj, "status": [obj]}
    return obj


def assert_valid_exposition(text: str) -> None:
    data = encode(text)
    decoded = data.decode("utf-8")  # strict: must be valid UTF-8
    # Only "\n" ends a line in the exposition formats (str.splitlines would also split
    # at "\r", U+2028 and others, which may legitimately sit inside label values).
    assert decoded.endswith("\n")
    for line in decoded[:-1].split("\n"):
        assert LINE.fullmatch(line), line[:200]
    list(text_string_to_metric_families(decoded))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(obj=hostile_objects(), kind_from=st.sampled_from(PROGRAMS))
def test_any_object_through_any_example_config_gives_valid_exposition_and_counted_errors(
    obj: Any, kind_from: Program
) -> None:
    if isinstance(obj, dict):
        # Make the object of the program's target kind half of the time.
        obj = dict(obj, apiVersion=kind_from.target.api_version, kind=kind_from.target.kind)
    for program in PROGRAMS:
        out = program.render(obj)
        for family, text in out.families.items():
            assert text.startswith(family)
            assert_valid_exposition(text)
        assert all(e.family and e.message for e in out.errors)


def test_a_deeply_nested_object_renders_without_exception() -> None:
    obj = {"apiVersion": "kubedb.com/v1", "kind": "MongoDB", "metadata": {"name": "x", "namespace": "y"}}
    obj["spec"] = deeply_nested(5000)
    for program in PROGRAMS:
        for text in program.render(obj).families.values():
            assert_valid_exposition(text)


EXPRESSION_PARTS = st.sampled_from(
    ["a", "b", "(", ")", "'x'", "1", "2.5", "==", "!=", "<", ">=", "&&", "||", "!", "-", "+", "*", "/",
     "%", "**", "?", ":", "??", "=~", "'(a+)+$'", "in", ",", "int", "percentage", "unix", "bytes", "len",
     "true", "nil", "[a]"]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(parts=st.lists(EXPRESSION_PARTS, max_size=30), raw=st.text(max_size=60), a=SCALAR, b=JSON)
def test_any_expression_compiles_or_fails_cleanly_and_evaluates_or_fails_cleanly(
    parts: list[str], raw: str, a: Any, b: Any
) -> None:
    for text in (" ".join(parts), raw):
        start = time.perf_counter()
        try:
            expr = compile_expression(text, {"a", "b"})
        except ExpressionError:
            continue
        finally:
            assert time.perf_counter() - start < 0.5
        with contextlib.suppress(EvaluationError):
            expr.evaluate({"a": a, "b": b})
        assert time.perf_counter() - start < 0.5


def test_huge_expressions_are_refused_quickly() -> None:
    for text in (
        "(" * 10_000,
        "a+" * 10_000 + "a",
        "'" + "x" * 100_000 + "'",
        "!" * 5000 + "a",
        "-" * 5000 + "1",
    ):
        start = time.perf_counter()
        with contextlib.suppress(ExpressionError):
            compile_expression(text, {"a"})
        assert time.perf_counter() - start < 0.5


def test_examples_dir_is_populated() -> None:
    assert len(BASES) > 50 and len(PROGRAMS) == len(VALID_CONFIGS)
    assert all(isinstance(p, Path) for p in OBJECT_FILES)
