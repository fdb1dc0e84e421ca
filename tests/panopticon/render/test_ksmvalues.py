"""Table tests for kube-state-metrics' value semantics (panopticon.render.ksmvalues)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from panopticon.errors import EvaluationError
from panopticon.render.ksmvalues import (
    go_float_text,
    go_parse_float,
    go_text,
    ksm_number,
    sanitize_label_name,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3.0),
        (43.21, 43.21),
        (True, 1.0),
        (False, 0.0),
        ("True", 1.0),
        ("YES", 1.0),
        ("false", 0.0),
        ("No", 0.0),
        ("Unknown", 0.0),
        ("2022-06-28T00:00:00Z", 1656374400.0),
        ("2022-06-28T02:00:00.75+02:00", 1656374400.0),  # Unix() rounds the fraction down
        ("250m", 0.25),
        ("5Gi", 5368709120.0),
        ("1e3", 1000.0),
        ("28%", 0.28),
        ("0x1p4", 16.0),
        ("-Inf", -math.inf),
    ],
)
def test_ksm_reads_numbers_booleans_times_quantities_and_percentages(value: Any, expected: float) -> None:
    assert ksm_number(value) == expected


@pytest.mark.parametrize("value", ["abc", "28.5%", " 5", "1e400", "2022-06-28t00:00:00z", "x" * 100, {}, []])
def test_anything_else_is_not_a_number(value: Any) -> None:
    with pytest.raises(EvaluationError):
        ksm_number(value)


def test_nil_is_an_error_unless_nil_is_zero() -> None:
    with pytest.raises(EvaluationError, match="nil"):
        ksm_number(None)
    assert ksm_number(None, nil_is_zero=True) == 0.0


def test_nan_text_reads_as_nan() -> None:
    assert math.isnan(ksm_number("NaN"))
    assert go_parse_float("nan") is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (43.21, "43.21"),
        (1656374400.0, "1.6563744e+09"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5, "-2.5"),
        (100.0, "100"),
        (0.0, "0"),
        (-0.0, "-0"),
        (math.inf, "+Inf"),
    ],
)
def test_floats_are_written_as_go_writes_them(value: float, expected: str) -> None:
    assert go_float_text(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text", "text"),
        (80, "80"),
        (True, "true"),
        (None, "<nil>"),
        ({"b": [1, 2.5, None], "a": {"x": False}}, "map[a:map[x:false] b:[1 2.5 <nil>]]"),
    ],
)
def test_values_are_written_as_gos_percent_v(value: Any, expected: str) -> None:
    assert go_text(value) == expected


def test_label_names_are_sanitized_character_by_character() -> None:
    assert sanitize_label_name("app.kubernetes.io/name") == "app_kubernetes_io_name"
    assert sanitize_label_name("ünï") == "_n_"


def test_writing_a_huge_or_shared_structure_is_bounded() -> None:
    shared: dict[str, Any] = {"leaf": 1}
    for _ in range(200):
        shared = {"a": shared, "b": [shared, shared]}  # 3^200 paths, if walked in full
    text = go_text(shared, 1000)
    assert 900 < len(text) < 1100
    assert go_text([shared] * 10**5, 100).startswith("[map[a:map[a:")
