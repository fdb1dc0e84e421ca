"""Which config owns which metric family, when several configs are loaded together.

Several configs may emit one family name: e.g. a `kube_owner_info` from Pods and
from Deployments. The exposition must still list each family once, with one HELP
and one TYPE. Sharing is allowed when the definitions agree (same type and HELP) and
the configs target different kinds (so the kind label keeps their series apart), and,
for an aggregate family, they aggregate alike (same function, same `by` keys in the
same order): an aggregate family never mixes with per-object series of the same name,
whose sum would be served as if it were one more object's.
Anything else is a conflict: the family keeps its first definition and the later
config's metric is excluded and reported, never merged silently.

"First" is by config name, so every shard and every replica, seeing the same set
of configs, decides the same way without talking to each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from panopticon.config.findings import Finding
from panopticon.render.exposition import FamilyHeader
from panopticon.render.program import Program


@dataclass(frozen=True, slots=True)
class Family:
    """A family as served: its header and the configs that contribute series."""

    header: FamilyHeader
    configs: tuple[str, ...]


@dataclass(slots=True)
class Resolution:
    """The outcome of resolving families across configs."""

    families: dict[str, Family] = field(default_factory=dict)
    programs: dict[str, Program] = field(default_factory=dict)
    """Each config's program without its conflicting metrics."""
    conflicts: dict[str, list[Finding]] = field(default_factory=dict)
    """Per config name, one finding per excluded metric."""


def resolve_families(programs: Iterable[Program]) -> Resolution:
    result = Resolution()
    owners: dict[str, tuple[FamilyHeader, list[Program]]] = {}
    for program in sorted(programs, key=lambda p: p.config_name):
        excluded: set[str] = set()
        for header in program.families:
            known = owners.get(header.name)
            if known is None:
                owners[header.name] = (header, [program])
                continue
            first_header, contributors = known
            problem = _conflict(first_header, header, contributors, program)
            if problem:
                excluded.add(header.name)
                result.conflicts.setdefault(program.config_name, []).append(
                    Finding(f"family {header.name}", problem, "error")
                )
            else:
                contributors.append(program)
        result.programs[program.config_name] = program.without(excluded) if excluded else program
    for name, (header, contributors) in owners.items():
        result.families[name] = Family(header, tuple(p.config_name for p in contributors))
    return result


def _conflict(
    first: FamilyHeader, header: FamilyHeader, contributors: list[Program], program: Program
) -> str:
    owner = contributors[0].config_name
    if first.type != header.type:
        return f"conflicts with config {owner!r}: type {header.type} vs {first.type}; metric excluded"
    if first.help != header.help:
        return f"conflicts with config {owner!r}: different HELP text; metric excluded"
    if first.aggregate != header.aggregate:
        return _aggregate_conflict(owner, first, header)
    for other in contributors:
        if (other.target.group, other.target.kind) == (program.target.group, program.target.kind):
            return (
                f"config {other.config_name!r} already emits it for {program.target.kind}: "
                "the series would collide; metric excluded"
            )
    return ""


def _aggregate_conflict(owner: str, first: FamilyHeader, header: FamilyHeader) -> str:
    def what(h: FamilyHeader) -> str:
        return f"aggregate {h.aggregate.describe()}" if h.aggregate else "per-object series"

    return (
        f"conflicts with config {owner!r}: {what(header)} vs {what(first)} "
        "(configs sharing a family must aggregate it alike); metric excluded"
    )
