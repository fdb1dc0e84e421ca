"""Reading a label's `from`: which related object its `valuePath` is read on.

A Panopticon extension of MetricsConfiguration (issue 17, kube-state-metrics#2238 and
#2070 ask for it; in PromQL it is a `group_left` join against a second family). The
config layer's half: the syntax and its field-path errors. What a join does at render
time is `panopticon.render.joins` (the label's getter) and `panopticon.render.related` (the cache of
related objects).

- `from: namespace`: the target object's Namespace (`metadata.namespace`);
- `from: node`: a Pod's Node (`spec.nodeName`);
- `from: owner:<apiVersion>/<Kind>` (`owner:apps/v1/Deployment`): up the chain of
  controller ownerReferences (Pod -> ReplicaSet -> Deployment) to the first owner of
  that kind (group and kind compared; any version).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

RELATIONS = ("namespace", "node", "owner")
KIND = re.compile(r"[A-Z][A-Za-z0-9]*")
VERSION = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
MAX_FROM = 256


@dataclass(frozen=True, slots=True)
class JoinSource:
    """A related object: `relation` is namespace, node or owner; owners name their kind."""

    relation: str
    api_version: str = ""
    kind: str = ""

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def related_kind(self) -> tuple[str, str]:
        """(API group, kind) of the related objects (the core group is "")."""
        if self.relation == "namespace":
            return ("", "Namespace")
        if self.relation == "node":
            return ("", "Node")
        return (self.group, self.kind)

    def __str__(self) -> str:
        return f"owner:{self.api_version}/{self.kind}" if self.relation == "owner" else self.relation


NAMESPACE = JoinSource("namespace")
NODE = JoinSource("node")


def read_source(raw: Any, where: str, error: Callable[[str, str], None]) -> JoinSource | None:
    """The `from` at `where` (None: invalid, error reported; callers check presence)."""
    if not isinstance(raw, str):
        error(where, f"must be namespace, node or owner:<apiVersion>/<Kind>, not {type(raw).__name__}")
        return None
    text = raw.strip()
    if text == "namespace":
        return NAMESPACE
    if text == "node":
        return NODE
    if not text.startswith("owner:"):
        error(where, f"{text[:80]!r} is not one of namespace, node, owner:<apiVersion>/<Kind>")
        return None
    ref = text[len("owner:") :]
    api_version, _, kind = ref.rpartition("/")
    group, _, version = api_version.rpartition("/")
    if (
        len(ref) > MAX_FROM
        or not KIND.fullmatch(kind)
        or not VERSION.fullmatch(version)
        or (group and not VERSION.fullmatch(group))
    ):
        error(
            where,
            f"{text[:80]!r}: an owner is owner:<apiVersion>/<Kind> (owner:apps/v1/Deployment, owner:v1/Node)",
        )
        return None
    return JoinSource("owner", api_version, kind)
