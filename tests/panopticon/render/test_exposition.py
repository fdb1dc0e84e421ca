"""Exact bytes of escaping, number formatting and family headers."""

from __future__ import annotations

import math

import pytest

from panopticon.render.exposition import FamilyHeader, encode, escape_label_value, label_pair, sample_value


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ('say "hi"', 'say \\"hi\\"'),
        ("back\\slash", "back\\\\slash"),
        ("line\nbreak", "line\\nbreak"),
        ('\\"\n', '\\\\\\"\\n'),
        ("tab\tcr\r", "tab\tcr\r"),
        ("ünïcödé €", "ünïcödé €"),
        ("", ""),
    ],
)
def test_label_values_escape_backslash_quote_and_newline_only(raw: str, escaped: str) -> None:
    assert escape_label_value(raw) == escaped


def test_a_label_pair_is_key_equals_quoted_escaped_value() -> None:
    assert label_pair("phase", 'a"b') == 'phase="a\\"b"'


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1, "1"),
        (0, "0"),
        (-7, "-7"),
        (1.0, "1"),
        (2.5, "2.5"),
        (0.1, "0.1"),
        (9.7, "9.7"),
        (1572864000.0, "1572864000"),
        (1e15, "1000000000000000"),
        (1e17, "1e+17"),
        (1e21, "1e+21"),
        (1.5e-7, "1.5e-07"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (10**30, "1e+30"),
        (10**400, "+Inf"),
        (-(10**400), "-Inf"),
        (True, "1"),
    ],
)
def test_sample_values_are_compact_and_parsable(value: float, text: str) -> None:
    assert sample_value(value) == text
    parsed = float(text.replace("+Inf", "inf").replace("-Inf", "-inf"))
    if isinstance(value, int) and abs(value) > 1e308:
        assert math.isinf(parsed)
    elif text != "NaN":
        assert parsed == pytest.approx(float(value))


def test_help_escapes_differ_between_text_and_openmetrics() -> None:
    header = FamilyHeader("x", 'a "quoted" \\ help\nline')
    assert header.text() == b'# HELP x a "quoted" \\\\ help\\nline\n# TYPE x gauge\n'
    assert header.openmetrics() == b'# HELP x a \\"quoted\\" \\\\ help\\nline\n# TYPE x gauge\n'


def test_lone_surrogates_become_the_replacement_character() -> None:
    assert encode("a\ud800b") == "a\ufffdb".encode()
    assert encode("ok é") == "ok é".encode()
