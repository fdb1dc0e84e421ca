"""The API server's label selector for a kind, when every config of the kind agrees.

`spec.selector` is applied to each object in the shard (panopticon.render.scope), which
still receives every object of the kind. When all configs of a kind carry the same
non-empty selector, no object outside it can give a series, so the watch can ask the
API server for the selected objects only (`labelSelector`): less to list, decode and
hold. Relabelling stays correct: a watch with a label selector reports an object
relabelled out of it as DELETED and one relabelled into it as ADDED (the API server's
`cache_watcher` rules), so the shard deletes and writes series as it does for the
in-shard filter. Configs that disagree, or one without a selector, keep the filter in
the shard (every object listed).
"""

from __future__ import annotations

from collections.abc import Iterable

from panopticon.config.scopespec import Requirement
from panopticon.render.program import Program


def server_selector(programs: Iterable[Program]) -> str:
    """The `labelSelector` that all `programs` agree on; "" when they do not (or select all)."""
    selections = {
        frozenset(p.selector.requirements) if p.selector is not None else frozenset() for p in programs
    }
    if len(selections) != 1:
        return ""
    (requirements,) = selections
    return ",".join(sorted(_text(r) for r in requirements))


def _text(r: Requirement) -> str:
    values = sorted(r.values)
    if r.operator == "In":
        return f"{r.key}={values[0]}" if len(values) == 1 else f"{r.key} in ({','.join(values)})"
    if r.operator == "NotIn":
        return f"{r.key} notin ({','.join(values)})"
    return r.key if r.operator == "Exists" else f"!{r.key}"
