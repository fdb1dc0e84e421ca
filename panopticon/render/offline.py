"""Render a set of objects through a set of configs into one exposition.

This is the offline path (`panopticon render`) and the reference the distributed
path is tested against: the shards render the same programs per object and the
aggregator concatenates the same per-family bytes. Families come out in name order,
each once, header first; families without any series are left out. An aggregate
family's lines are per-object partials, kept as such in `Exposition.lines` (what the
shards store) and combined into the served groups by `served` (`panopticon.render.combine`,
as the aggregator does).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from panopticon.render.combine import combine
from panopticon.render.exposition import OPENMETRICS_EOF, Format, encode
from panopticon.render.families import Family, Resolution
from panopticon.render.limits import LimitCount, OrderKey, effective_cap, keep_objects
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
    limits: dict[str, LimitCount] = field(default_factory=dict)
    """Per capped config (`spec.limits.series` or the global cap): series kept and
    not written (`panopticon.render.limits`)."""

    def series_count(self) -> int:
        return sum(
            self.served(name).count(b"\n")
            if self.families[name].header.aggregate
            else sum(chunk.count("\n") for chunk in chunks)
            for name, chunks in self.lines.items()
        )

    def served(self, name: str) -> bytes:
        """Family `name`'s lines as served: its objects' lines, or for an aggregate
        family its groups (the objects' partials combined)."""
        text = encode("".join(self.lines.get(name, ())))
        aggregation = self.families[name].header.aggregate
        return combine(aggregation.function, [text]) if aggregation and text else text

    def to_bytes(self, fmt: Format = Format.TEXT) -> bytes:
        out: list[bytes] = []
        for name in sorted(self.lines):
            text = self.served(name)
            if not text:
                continue
            out.append(self.families[name].header.render(fmt))
            out.append(text)
        if fmt is Format.OPENMETRICS:
            out.append(OPENMETRICS_EOF)
        return b"".join(out)


def object_ref(obj: Any) -> str:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    kind = obj.get("kind", "?") if isinstance(obj, dict) else "?"
    ns, name = meta.get("namespace"), meta.get("name")
    return f"{kind} {ns}/{name}" if ns else f"{kind} {name}"


def render_exposition(
    resolution: Resolution,
    objects: Iterable[Any],
    *,
    max_series_per_config: int | None = None,
    order: OrderKey | None = None,
) -> Exposition:
    """Render every object through every program whose target it matches; a config
    over its cap keeps the series `panopticon.render.limits` says, in `order`
    (`panopticon.sharding.limits.order_key`; needed only when a config is capped)."""
    expo = Exposition(resolution.families)
    caps = {
        name: cap
        for name, program in resolution.programs.items()
        if (cap := effective_cap(program.series_limit, max_series_per_config)) is not None
    }
    capped: dict[str, _Capped] = {name: _Capped() for name in caps}
    if caps and order is None:
        raise ValueError("render_exposition: capped configs need the keep order (order=...)")
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
            held = capped.get(program.config_name)
            if held is not None and output.families:
                held.note(obj, ref, output.families, lines)
            for family, text in output.families.items():
                chunks = lines.get(family)
                if chunks is None:
                    lines[family] = [text]
                else:
                    chunks.append(text)
            if output.errors:
                errors.extend(ObjectError(program.config_name, ref, e) for e in output.errors)
    expo.objects = rendered
    blanked: set[str] = set()
    for name, held in capped.items():
        expo.limits[name] = held.apply(caps[name], lines, blanked, order)  # type: ignore[arg-type]
    for family in blanked:  # only now: several configs may share a family
        lines[family] = [chunk for chunk in lines[family] if chunk]
    return expo


class _Capped:
    """A capped config's objects as rendered: their series counts and where their
    chunks went, to blank the dropped ones once every object is known."""

    def __init__(self) -> None:
        self.series: dict[str, int] = {}
        self.chunks: dict[str, list[tuple[str, int]]] = {}

    def note(
        self, obj: dict[str, Any], ref: str, families: dict[str, str], lines: dict[str, list[str]]
    ) -> None:
        meta = obj.get("metadata")
        uid = meta.get("uid") if isinstance(meta, dict) else None
        key = uid if isinstance(uid, str) and uid else ref  # files may lack uids
        while key in self.series:
            key += "\0"
        self.series[key] = sum(text.count("\n") for text in families.values())
        self.chunks[key] = [(family, len(lines.get(family, ()))) for family in families]

    def apply(self, cap: int, lines: dict[str, list[str]], blanked: set[str], order: OrderKey) -> LimitCount:
        """Blank the chunks of the objects past the cap (noted in `blanked`)."""
        kept = keep_objects(self.series, cap, order)
        count = LimitCount(cap)
        for key, n in self.series.items():
            if key in kept:
                count.kept += n
                continue
            count.dropped += n
            for family, position in self.chunks[key]:
                lines[family][position] = ""
                blanked.add(family)
        return count
