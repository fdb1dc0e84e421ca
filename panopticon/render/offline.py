"""Render a set of objects through a set of configs into one exposition.

This is the offline path (`panopticon render`) and the reference the distributed
path is tested against: the shards render the same programs per object and the
aggregator concatenates the same per-family bytes. Families come out in name order,
each once, header first; families without any series are left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from panopticon.render.exposition import OPENMETRICS_EOF, Format, encode
from panopticon.render.families import Family, Resolution
from panopticon.render.program import Program, RenderError


@dataclass(frozen=True, slots=True)
class ObjectError:
    config: str
    object: str
    error: RenderError

    def __str__(self) -> str:
        return f"config {self.config}, object {self.object}, family {self.error.family}: {self.error.message}"


@dataclass(slots=True)
class Exposition:
    families: dict[str, Family]
    lines: dict[str, list[str]] = field(default_factory=dict)
    errors: list[ObjectError] = field(default_factory=list)
    objects: int = 0
    """How many (object, matching config) pairs were rendered."""
    duplicates: list[str] = field(default_factory=list)
    """Objects skipped because an earlier one had the same kind, namespace and name
    (impossible in a cluster; rendering both would duplicate series)."""

    def series_count(self) -> int:
        return sum(chunk.count("\n") for chunks in self.lines.values() for chunk in chunks)

    def to_bytes(self, fmt: Format = Format.TEXT) -> bytes:
        out: list[bytes] = []
        for name in sorted(self.lines):
            chunks = self.lines[name]
            if not chunks:
                continue
            out.append(self.families[name].header.render(fmt))
            out.append(encode("".join(chunks)))
        if fmt is Format.OPENMETRICS:
            out.append(OPENMETRICS_EOF)
        return b"".join(out)


def object_ref(obj: Any) -> str:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    kind = obj.get("kind", "?") if isinstance(obj, dict) else "?"
    ns, name = meta.get("namespace"), meta.get("name")
    return f"{kind} {ns}/{name}" if ns else f"{kind} {name}"


def render_exposition(resolution: Resolution, objects: Iterable[Any]) -> Exposition:
    """Render every object through every program whose target it matches."""
    expo = Exposition(resolution.families)
    # Programs by (API group, kind), in resolution order: one lookup per object
    # finds those whose target it is (as Program.matches decides).
    targets: dict[tuple[str, str], list[Program]] = {}
    for program in resolution.programs.values():
        targets.setdefault((program.target.group, program.target.kind), []).append(program)
    seen: set[tuple[str, str]] = set()
    lines, errors = expo.lines, expo.errors
    rendered = 0
    for obj in objects:
        if not isinstance(obj, dict):
            continue
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if not isinstance(kind, str) or not isinstance(api_version, str):
            continue
        group = api_version.rpartition("/")[0]
        matching = targets.get((group, kind))
        if matching is None:
            continue
        ref = object_ref(obj)
        identity = (group, ref)
        if identity in seen:
            expo.duplicates.append(ref)
            continue
        seen.add(identity)
        for program in matching:
            rendered += 1
            output = program.render(obj)
            for family, text in output.families.items():
                chunks = lines.get(family)
                if chunks is None:
                    lines[family] = [text]
                else:
                    chunks.append(text)
            if output.errors:
                errors.extend(ObjectError(program.config_name, ref, e) for e in output.errors)
    expo.objects = rendered
    return expo
