"""Reading `metricValue.valueMap` and `default` (see panopticon.render.valuemap for what they do).

The config layer's half of the extension: field-path errors for untrusted input,
nothing of the render engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from panopticon.text import numeric_or_none, to_text

MAX_VALUE_MAP = 1000
"""Entries in one valueMap: more than any enum a status field has."""
MAX_KEY = 1024
"""Characters in one key: longer values are never worth mapping."""

Entries = tuple[tuple[str, int | float], ...]


def read_value_map(
    raw: Any, raw_default: Any, where: str, error: Callable[[str, str], None]
) -> tuple[Entries | None, int | float | None]:
    """`valueMap` and `default` of a metricValue at `where`, errors reported by field path."""
    default = None if raw_default is None else _number(raw_default, f"{where}.default", error)
    if raw is None:
        return None, default
    if not isinstance(raw, dict):
        error(f"{where}.valueMap", f"must be an object mapping values to numbers, not {type(raw).__name__}")
        return None, default
    if not raw:
        error(f"{where}.valueMap", "must list at least one value")
        return None, default
    if len(raw) > MAX_VALUE_MAP:
        error(f"{where}.valueMap", f"has {len(raw)} entries; at most {MAX_VALUE_MAP} are allowed")
        return None, default
    mapped: dict[str, int | float] = {}
    for key, number in raw.items():
        text = key if isinstance(key, str) else to_text(key)
        if len(text) > MAX_KEY:
            error(f"{where}.valueMap", f"a key is longer than {MAX_KEY} characters")
            continue
        value = _number(number, f"{where}.valueMap[{text!r}]", error)
        if value is not None:
            mapped[text] = value
    return tuple(mapped.items()), default


def _number(raw: Any, where: str, error: Callable[[str, str], None]) -> int | float | None:
    number = None if isinstance(raw, bool) else numeric_or_none(raw)
    if number is None:
        error(where, f"must be a number, not {type(raw).__name__} {str(raw)[:40]!r}")
    return number
