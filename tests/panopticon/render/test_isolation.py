"""The isolation boundary's parts: a compile that raises becomes the config's finding,
a render that raises costs one metric's series, and the error log's counting,
rate limit and merging across shards."""

from __future__ import annotations

from typing import Any

import pytest

from panopticon.render.expr.functions import FUNCTIONS, Env, Function
from panopticon.render.isolation import MAX_FAULT_TEXT, ErrorLog, ErrorTally, fault_text, merge_tallies
from panopticon.render.program import compile_config


def _raise(env: Env, args: list[Any]) -> Any:
    raise RuntimeError("render bug")


def _bind_raises(key: str, constants: tuple[Any, ...]) -> Any:
    raise TypeError("compile bug")


def config(expression: str, *, second: bool = True) -> dict[str, Any]:
    metrics = [{"name": "first", "help": "h", "type": "gauge",
                "params": [{"key": "x", "valuePath": ".spec.x"}],
                "metricValue": {"valueFromExpression": expression}}]  # fmt: skip
    if second:
        metrics.append(
            {"name": "second", "help": "h", "type": "gauge", "metricValue": {"valueFromPath": ".spec.x"}}
        )
    return {
        "apiVersion": "metrics.appscode.com/v1alpha1",
        "kind": "MetricsConfiguration",
        "metadata": {"name": "c"},
        "spec": {"targetRef": {"apiVersion": "v1", "kind": "Pod"}, "metrics": metrics},
    }


POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"}, "spec": {"x": 4}}


def test_a_compile_that_raises_makes_the_config_invalid_with_the_error_as_its_finding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(FUNCTIONS, "boom", Function("boom", 1, 1, _raise, pure=False, bind=_bind_raises))
    compiled = compile_config(config("boom(x)"))
    assert compiled.program is None
    assert compiled.fault == "unexpected TypeError while compiling the config: compile bug"
    assert [str(f) for f in compiled.findings] == [f"spec: {compiled.fault}"]


def test_a_render_that_raises_costs_that_metrics_series_only_and_is_marked_a_fault(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(FUNCTIONS, "boom", Function("boom", 1, 1, _raise, pure=False))
    program = compile_config(config("boom(x)")).program
    assert program is not None
    out = program.render(POD)
    assert out.families == {"kube_pod_second": 'kube_pod_second{pod="p",namespace="n"} 4\n'}
    assert [(e.family, e.message, e.fault) for e in out.errors] == [
        ("kube_pod_first", "unexpected RuntimeError while rendering: render bug", True)
    ]


def test_fault_text_is_one_line_and_bounded() -> None:
    text = fault_text("rendering", ValueError("a\nb " + "x" * 1000))
    assert "\n" not in text and len(text) == MAX_FAULT_TEXT and text.endswith("…")
    assert fault_text("rendering", KeyError()) == "unexpected KeyError while rendering"


def test_the_error_log_counts_every_error_and_logs_a_configs_faults_once_per_interval() -> None:
    now = [0.0]
    errors = ErrorLog(clock=lambda: now[0], interval=60)
    assert errors.record("c", "f of p: not a number", fault=False) is None
    assert errors.record("c", "f of p: unexpected X", fault=True) == "config c: f of p: unexpected X"
    assert errors.record("c", "f of q: unexpected X", fault=True) is None
    assert errors.record("d", "g of p: unexpected Y", fault=True) is not None  # per config
    now[0] = 61
    assert errors.record("c", "f of r: unexpected X", fault=True) == (
        "config c: f of r: unexpected X (1 more since the last report)"
    )
    assert errors.snapshot()["c"] == [4, 3, "f of p: not a number"]
    errors.forget("c")  # a new version: counts restart, the rate limit does not
    assert "c" not in errors.snapshot()
    assert errors.record("c", "f of s: unexpected X", fault=True) is None


def test_tallies_from_every_shard_add_up_and_malformed_ones_are_ignored() -> None:
    merged = merge_tallies(
        [
            {"c": [2, 1, "first"]},
            {"c": [3, 0, "other"], "d": [1, 1, "x"]},
            None,
            "junk",
            {"c": [1, "2", "bad"], "e": [1, 1], 5: [1, 1, "k"], "f": [True, 0, "bool"]},
        ]
    )
    assert merged == {"c": ErrorTally(5, 1, "first"), "d": ErrorTally(1, 1, "x")}
