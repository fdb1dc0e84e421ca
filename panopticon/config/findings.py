"""Validation findings, and the reader that collects them from untrusted input.

Split out of `panopticon.config.model`: the model says what a MetricsConfiguration holds; this
module is how a field of untrusted input is read (an object, a bounded list, a scalar as
text) with every problem recorded as a `Finding` naming the field. `panopticon.config.model`
re-exports `Finding`, which most callers import from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from panopticon.text import format_number

MAX_TEXT = 4096
"""The longest scalar field accepted, in characters."""

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One validation result about one field."""

    field: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class FieldReader:
    """Collects findings while reading fields of untrusted input."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def error(self, where: str, message: str) -> None:
        self.findings.append(Finding(where, message, "error"))

    def warn(self, where: str, message: str) -> None:
        self.findings.append(Finding(where, message, "warning"))

    def mapping(self, obj: Any, where: str, *, required: bool = False) -> dict[str, Any]:
        if obj is None:
            if required:
                self.error(where, "is required")
            return {}
        if not isinstance(obj, dict):
            self.error(where, f"must be an object, not {type_name(obj)}")
            return {}
        return obj

    def sequence(self, obj: Any, where: str, *, limit: int) -> list[Any]:
        if obj is None:
            return []
        if not isinstance(obj, list):
            self.error(where, f"must be a list, not {type_name(obj)}")
            return []
        if len(obj) > limit:
            self.error(where, f"has {len(obj)} entries; at most {limit} are allowed")
            return obj[:limit]
        return obj

    def text(self, obj: dict[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
        """A scalar field as text: strings as they are, numbers and booleans as their text."""
        value = obj.get(key)
        path = f"{where}.{key}"
        if value is None:
            if required:
                self.error(path, "is required")
            return None
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = format_number(value)
        elif not isinstance(value, str):
            self.error(path, f"must be a string, not {type_name(value)}")
            return None
        if len(value) > MAX_TEXT:
            self.error(path, f"is longer than {MAX_TEXT} characters")
            return None
        if required and not value.strip():
            self.error(path, "must not be empty")
            return None
        return value


def type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )
