"""Kubernetes quantities: exact values, rejected inputs, bounds, caching."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from panopticon.errors import QuantityError
from panopticon.render.quantity import (
    CACHE_SIZE,
    MAX_EXPONENT,
    MAX_TEXT,
    cpu_cores,
    milli_text,
    milli_value,
    parse_quantity,
    to_bytes,
)

KI, MI, GI = 2**10, 2**20, 2**30


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Fraction(1, 2)),
        ("1.5", Fraction(3, 2)),
        ("128Mi", Fraction(128 * MI)),
        ("2Gi", Fraction(2 * GI)),
        ("0.5Ki", Fraction(512)),
        ("1e3", Fraction(1000)),
        ("1E3", Fraction(1000)),
        ("25e-2", Fraction(1, 4)),
        ("1k", Fraction(1000)),
        ("100M", Fraction(10**8)),
        ("1G", Fraction(10**9)),
        ("1T", Fraction(10**12)),
        ("1P", Fraction(10**15)),
        ("1E", Fraction(10**18)),
        ("1Ti", Fraction(2**40)),
        ("1Pi", Fraction(2**50)),
        ("1Ei", Fraction(2**60)),
        ("250n", Fraction(250, 10**9)),
        ("3u", Fraction(3, 10**6)),
        ("-1.5", Fraction(-3, 2)),
        ("+2", Fraction(2)),
        (".5", Fraction(1, 2)),
        ("5.", Fraction(5)),
        ("0", Fraction(0)),
        ("007", Fraction(7)),
        (" 64Mi\n", Fraction(64 * MI)),
    ],
)
def test_a_quantity_string_parses_to_its_exact_value(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    ("number", "value"),
    [
        (3, Fraction(3)),
        (0, Fraction(0)),
        (-2, Fraction(-2)),
        (0.1, Fraction(1, 10)),
        (1.5, Fraction(3, 2)),
        (1e16, Fraction(10**16)),
    ],
)
def test_a_json_number_is_read_as_its_decimal_text(number: float, value: Fraction) -> None:
    assert parse_quantity(number) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "abc",
        "Mi",
        "1.5.5",
        "1 Mi",
        "1e3m",
        "1KiB",
        "1ki",
        "1mi",
        "1e",
        "1e+",
        "--1",
        "0x10",
        "1_000",
        "١",
        "1e3.5",
        "∞",
    ],
)
def test_a_malformed_quantity_is_rejected_naming_the_text(text: str) -> None:
    with pytest.raises(QuantityError) as caught:
        parse_quantity(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize(
    "value", [None, True, False, [], {}, ["1"], float("nan"), float("inf"), -float("inf")]
)
def test_a_value_that_is_not_a_string_or_a_finite_number_is_rejected(value: object) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(value)


def test_exponents_beyond_the_bound_are_rejected_before_any_big_number_is_built() -> None:
    assert parse_quantity(f"1e{MAX_EXPONENT}") == 10**MAX_EXPONENT
    assert parse_quantity(f"1e-{MAX_EXPONENT}") == Fraction(1, 10**MAX_EXPONENT)
    for text in (f"1e{MAX_EXPONENT + 1}", f"1e-{MAX_EXPONENT + 1}", "1e999999999", "1e-999999999"):
        with pytest.raises(QuantityError, match="exponent"):
            parse_quantity(text)
    with pytest.raises(QuantityError):
        parse_quantity(1e300)  # a float reads through its text, 1e+300


def test_over_long_text_and_huge_integers_are_rejected_without_echoing_them_whole() -> None:
    with pytest.raises(QuantityError, match="longer than") as caught:
        parse_quantity("1" * (MAX_TEXT + 1))
    assert len(str(caught.value)) < 3 * MAX_TEXT
    with pytest.raises(QuantityError, match="digits"):
        parse_quantity(10**100_000)  # str() of this would itself fail
    assert parse_quantity("9" * MAX_TEXT) == 10**MAX_TEXT - 1


def test_cpu_cores_converts_to_cores_exactly() -> None:
    assert cpu_cores("9700m") == 9.7
    assert cpu_cores("250m") == 0.25
    assert cpu_cores(2) == 2.0
    assert cpu_cores("100n") == 1e-7


def test_summed_millicores_come_out_exact_not_binary_rounded() -> None:
    assert sum(0.1 for _ in range(97)) != 9.7  # the float trap the parser avoids
    assert float(sum((parse_quantity("100m") for _ in range(97)), Fraction(0))) == 9.7
    assert sum(milli_value("100m") for _ in range(97)) / 1000 == 9.7


def test_to_bytes_is_exact_for_integral_byte_counts() -> None:
    assert to_bytes("1Gi") == 1073741824.0
    assert to_bytes("0.5Ki") == 512.0
    assert to_bytes("1.5Gi") == 1610612736.0
    assert to_bytes("100M") == 100_000_000.0
    assert to_bytes(str(2**53 - 1)) == float(2**53 - 1)
    assert to_bytes("8Ei") == float(2**63)


def test_milli_value_rounds_away_from_zero_like_kubernetes() -> None:
    assert milli_value("1n") == 1
    assert milli_value("-1n") == -1
    assert milli_value("1.5") == 1500
    assert milli_value("500m") == 500
    assert milli_value(3) == 3000
    assert milli_value(0.1) == 100
    assert milli_value("1Ki") == 1024_000


def test_parsed_strings_are_cached_in_a_bounded_cache() -> None:
    info = milli_text.cache_info()
    assert info.maxsize == CACHE_SIZE
    milli_text("123m")
    hits = milli_text.cache_info().hits
    assert milli_value("123m") == 123
    assert milli_text.cache_info().hits == hits + 1


@given(st.text(max_size=80))
def test_any_text_parses_or_raises_quantity_error(text: str) -> None:
    try:
        value = parse_quantity(text)
    except QuantityError:
        return
    assert isinstance(value, Fraction)
    assert math.isfinite(cpu_cores(text))


@given(st.one_of(st.integers(), st.floats(), st.booleans(), st.none(), st.lists(st.integers(), max_size=2)))
def test_any_json_scalar_parses_or_raises_quantity_error(value: object) -> None:
    try:
        parsed = parse_quantity(value)
    except QuantityError:
        return
    assert isinstance(parsed, Fraction)
    away_from_zero = math.ceil(parsed * 1000) if parsed >= 0 else math.floor(parsed * 1000)
    assert milli_value(value) == away_from_zero


@given(
    st.integers(min_value=0, max_value=10**12),
    st.integers(min_value=0, max_value=6),
    st.sampled_from(["", "m", "k", "M", "G", "Ki", "Mi", "Gi"]),
)
def test_a_decimal_with_a_suffix_scales_exactly(digits: int, decimals: int, suffix: str) -> None:
    text = str(digits)
    if decimals:
        text = text.rjust(decimals + 1, "0")
        text = f"{text[:-decimals]}.{text[-decimals:]}"
    scale: dict[str, Fraction | int] = {
        "": 1, "m": Fraction(1, 1000), "k": 10**3, "M": 10**6, "G": 10**9, "Ki": KI, "Mi": MI, "Gi": GI,
    }  # fmt: skip
    assert parse_quantity(text + suffix) == Fraction(digits, 10**decimals) * scale[suffix]
