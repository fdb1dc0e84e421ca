"""Prometheus exposition formats: escaping, sample values and family headers.

Text format 0.0.4 and OpenMetrics 1.0 write gauge samples identically
(`name{label="value"} 1`), so a sample line is rendered once and served in both
formats; only the family header (HELP escaping) and the `# EOF` trailer differ.

- Label values escape `\\`, `"` and newline (both formats).
- HELP escapes `\\` and newline in text 0.0.4, and also `"` in OpenMetrics.
- Output is always valid UTF-8: lone surrogates (possible in strings decoded from
  hostile JSON) become U+FFFD.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from panopticon.config.aggregatespec import Aggregation
from panopticon.text import format_number

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
OPENMETRICS_EOF = b"# EOF\n"

_LABEL_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})
_HELP_ESCAPES_TEXT = str.maketrans({"\\": "\\\\", "\n": "\\n"})
_HELP_ESCAPES_OM = str.maketrans({"\\": "\\\\", "\n": "\\n", '"': '\\"'})


class Format(Enum):
    TEXT = "text"
    OPENMETRICS = "openmetrics"

    @property
    def content_type(self) -> str:
        return TEXT_CONTENT_TYPE if self is Format.TEXT else OPENMETRICS_CONTENT_TYPE


def escape_label_value(value: str) -> str:
    """Escape a label value for both formats (the quotes are not included)."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.translate(_LABEL_ESCAPES)
    return value


def label_pair(key: str, value: str) -> str:
    return f'{key}="{escape_label_value(value)}"'


def _replace_surrogates(text: str) -> str:
    return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)


def encode(text: str) -> bytes:
    """Encode exposition text to UTF-8, replacing lone surrogates with U+FFFD."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _replace_surrogates(text).encode("utf-8")


def sample_value(value: int | float) -> str:
    """A sample value as both formats accept it: `1`, `0.25`, `NaN`, `+Inf`, `-Inf`."""
    return format_number(value)


@dataclass(frozen=True, slots=True)
class FamilyHeader:
    """The HELP and TYPE lines of one metric family, in both formats."""

    name: str
    help: str
    type: str = "gauge"
    aggregate: Aggregation | None = None
    """Set for an aggregate family: its stored lines are partials to combine
    (`panopticon.render.aggregate`); part of the family's identity, as the type is."""

    def text(self) -> bytes:
        return encode(
            f"# HELP {self.name} {self.help.translate(_HELP_ESCAPES_TEXT)}\n# TYPE {self.name} {self.type}\n"
        )

    def openmetrics(self) -> bytes:
        return encode(
            f"# HELP {self.name} {self.help.translate(_HELP_ESCAPES_OM)}\n# TYPE {self.name} {self.type}\n"
        )

    def render(self, fmt: Format) -> bytes:
        return self.text() if fmt is Format.TEXT else self.openmetrics()
