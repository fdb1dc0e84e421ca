"""The iteration an Array metric performs over a compiled path (`FanOut`).

Split out of `panopticon.render.paths`: that module parses and resolves one path; this one walks
the elements a `[*]` path fans out over and checks which other paths may be evaluated
inside that fan-out. It is pure, like `panopticon.render.paths`, and imports no I/O library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from panopticon.render.paths import Path


@dataclass(frozen=True, slots=True)
class FanOut:
    """The iteration an Array metric performs: over the elements at `path`.

    `path` may itself hold `[*]` (nested fan-out: `.spec.containers[*].ports` visits
    every port of every container). Each yielded context is a tuple of elements, one
    per level: `(container, port)`.
    """

    path: Path

    @property
    def levels(self) -> int:
        return self.path.wildcards + 1

    def contexts(self, obj: Any, limit: int) -> list[tuple[Any, ...]]:
        """Every element context, at most `limit` of them."""
        getters = self.path.getters
        if len(getters) == 1:
            # One level, the common case: no recursion, one comprehension.
            items = getters[0](obj)
            if type(items) is not list:
                return []
            if len(items) <= limit:
                return [(item,) for item in items if item is not None]
        out: list[tuple[Any, ...]] = []
        self._walk(obj, 0, (), out, limit)
        return out

    def _walk(
        self, node: Any, level: int, prefix: tuple[Any, ...], out: list[tuple[Any, ...]], limit: int
    ) -> None:
        getters = self.path.getters
        items = getters[level](node)
        if type(items) is not list:
            return
        for item in items:
            if len(out) >= limit:
                return
            if item is None:
                continue
            ctx = (*prefix, item)
            if level + 1 < len(getters):
                self._walk(item, level + 1, ctx, out, limit)
            else:
                out.append(ctx)

    def accepts(self, other: Path) -> str | None:
        """Why `other` cannot be evaluated inside this fan-out, or None if it can.

        Each `[*]` in `other` must sit where the fan-out iterates: its segments before
        the last must equal the fan-out path's segments (with the implicit trailing `[*]`).
        """
        if other.wildcards > self.levels:
            levels = f"{self.levels} level(s)"
            return f"it has {other.wildcards} [*] but the fan-out over {self.path.text!r} has {levels}"
        own = self.path.segments
        for k in range(other.wildcards):
            if other.segments[k] != own[k]:
                expected = Path("", own[: k + 1], ()).normalized()
                return f"its [*] number {k + 1} must follow {expected!r} (the array of field.path)"
        return None
