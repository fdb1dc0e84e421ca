"""Joined labels at render time: a label whose path is read on a related object.

A program whose labels use `from` (panopticon.config.joinspec) carries a `JoinPlan`: the
related objects it reads (one slot each) and, per slot, the paths it reads on them.
Before rendering an object, `JoinPlan.view` looks its related objects up in a
`Related` source (panopticon.render.related) and hands the metrics a shallow copy of the
object with the records under `JOINS_KEY`; a joined label's getter reads its value
from there. Paths, shapes and fan-outs are untouched: a joined label is a root-level
label chunk like any other, so every render shape handles it.

The records hold only the values of the joined paths (projected when the related
object is cached), not the related objects: that is what keeps a shard's memory per
joined object small (benchmarks/join_bench.py). A related object that is missing
(not cached, not synced yet, no nodeName) gives a missing value: the label is left
out, like a missing path, and the series stays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from panopticon.config.joinspec import JoinSource
from panopticon.errors import PathError
from panopticon.render.paths import MISSING, Getter, Path, compile_path

if TYPE_CHECKING:
    from panopticon.config.model import LabelSpec, TargetRef

JOINS_KEY = "\x00panopticon.render.joins"
"""Where a view keeps the related records: a key no API object has (NUL is not allowed
in JSON field names the API server accepts), so it never shadows a field."""

Record = dict[str, Any]
"""A related object as cached: joined path text -> value (missing values left out)."""


class Related(Protocol):
    """Where related objects are looked up (`panopticon.render.related.RelatedIndex`)."""

    def records(self, sources: Sequence[JoinSource], obj: Any) -> list[Record | None]: ...


def joined_getter(slot: int, text: str) -> Getter:
    """The getter of a joined label: the value of path `text` in related record `slot`."""

    def get(obj: Any) -> Any:
        if type(obj) is dict:
            records = obj.get(JOINS_KEY)
            if records is not None:
                record = records[slot]
                if record is not None:
                    return record.get(text, MISSING)
        return MISSING

    return get


@dataclass(slots=True)
class JoinPlan:
    """The related objects a program reads and, per source, its paths (text -> getter)."""

    sources: list[JoinSource] = field(default_factory=list)
    paths: list[dict[str, Getter]] = field(default_factory=list)

    def joined_path(self, source: JoinSource, path: Path) -> Path:
        """`path` read on `source`: a Path whose root getter reads the joined record."""
        if source in self.sources:
            slot = self.sources.index(source)
        else:
            slot = len(self.sources)
            self.sources.append(source)
            self.paths.append({})
        self.paths[slot][path.text] = path.getters[0]
        return Path(path.text, path.segments, (joined_getter(slot, path.text),))

    def view(self, obj: Any, related: Related | None) -> Any:
        """`obj` with its related records attached (a shallow copy; `obj` is not changed)."""
        if type(obj) is not dict:
            return obj
        view = dict(obj)
        if related is None:
            view[JOINS_KEY] = [None] * len(self.sources)
        else:
            view[JOINS_KEY] = related.records(self.sources, obj)
        return view


def joined_label_path(
    label: LabelSpec, target: TargetRef, plan: JoinPlan, error: Callable[[str, str], None]
) -> Path | None:
    """Compile a label with `from` into `plan`: its Path (reading the joined record), or
    None with the error reported. Its path is not checked against the target's schema:
    it is read on the related object."""
    source, where = label.source, f"{label.where}.valuePath"
    assert source is not None
    if source.relation == "node" and (target.group, target.kind) != ("", "Pod"):
        error(f"{label.where}.from", f"node joins a Pod's spec.nodeName; the target is {target.kind}")
        return None
    try:
        path = compile_path(label.value_path or "")
    except PathError as e:
        error(where, str(e))
        return None
    if path.wildcards:
        error(where, f"{path.text!r}: [*] has no meaning on a related object (one value per label)")
        return None
    return plan.joined_path(source, path)
