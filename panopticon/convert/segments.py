"""kube-state-metrics path segments as Panopticon paths.

KSM writes a path as a list of segments (`[status, conditions, "[type=Ready]", status]`);
Panopticon as text (`.status.conditions[type=Ready].status`). Segment by segment:

| KSM segment | Panopticon | reads |
|---|---|---|
| `name` | `.name`, or `['na.me']` when it is not a plain name | the field |
| `"0"`, `"-1"` | `[0]`, `[-1]` | a list element (negative from the end) |
| `"[key=value]"` | `[key=value]` | the first list element whose `key` is `value` |
| `"key=value"` | `.key=value` | the field `key` if it is `value` (else the field `key=value`) |
| `[]` (no segment) | `.` | the value itself |

Every converted path is compiled back and compared step by step with the segments,
so a segment that the text form cannot carry is reported, never mangled.
"""

from __future__ import annotations

import re
from typing import Final

from panopticon.errors import PathError
from panopticon.render.paths import KeyEquals, Match, Step, compile_path

_INDEX: Final = re.compile(r"-?(?:0|[1-9][0-9]*)")
_NUMBER: Final = re.compile(r"[+-]?[0-9]+")
_PLAIN: Final = re.compile(r"[A-Za-z0-9_\-/$@]+")


class SegmentError(ValueError):
    """A segment that cannot be converted; the message says why."""


def to_path(segments: list[str]) -> str:
    """The Panopticon path for KSM `segments`; SegmentError names a bad segment."""
    if not segments:
        return "."
    text: list[str] = []
    wanted: list[Step] = []
    for i, segment in enumerate(segments):
        part, step = _convert(segment, i)
        text.append(part)
        wanted.append(step)
    path = "".join(text)
    try:
        compiled = compile_path(path)
    except PathError as e:
        raise SegmentError(f"{segments!r} has no Panopticon form: {e}") from e
    if compiled.segments != (tuple(wanted),):
        raise SegmentError(f"{segments!r} has no exact Panopticon form (it would read as {path!r})")
    return path


def _convert(segment: str, index: int) -> tuple[str, Step]:
    if segment.startswith("[") and segment.endswith("]") and len(segment) >= 2:
        inner = segment[1:-1]
        if "=" not in inner:
            raise SegmentError(
                f"segment {index} ({segment!r}) is not a list lookup [key=value]; KSM refuses it too"
            )
        name, _, value = inner.partition("=")
        return segment, Match.of(name, value)
    if _INDEX.fullmatch(segment):
        return f"[{segment}]", int(segment)
    if _NUMBER.fullmatch(segment):
        raise SegmentError(
            f"segment {index} ({segment!r}) is list index {int(segment)} to KSM, but a field name on "
            f"objects; write it as {int(segment)} or as a field name"
        )
    if segment.count("=") == 1:
        name, _, value = segment.partition("=")
        step = KeyEquals(name, value)
        return str(step), step
    if _PLAIN.fullmatch(segment) and "=" not in segment:
        return f".{segment}", segment
    escaped = segment.replace("\\", "\\\\").replace("'", "\\'")
    return f"['{escaped}']", segment
