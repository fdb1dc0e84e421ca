"""Wildcard versions and kinds (`version: "*"`, `kind: "*"`), expanded against CRDs.

KSM resolves a wildcard against the CRDs installed in the cluster, and again as CRDs
come and go. A MetricsConfiguration names one kind, so the converter expands the
wildcard once, against the CRDs it is given (`--crds`, e.g. the output of
`kubectl get crd -o yaml`): one resource per matching kind. A kind that is added to
the cluster later needs another conversion.

For `version: "*"` KSM serves every object once per served version of its kind (the
API server returns each object in every version); Panopticon watches one version,
the CRD's storage version (or its first served one), and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from panopticon.config.findings import Finding
from panopticon.convert.crs import Resource

WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class ServedKind:
    group: str
    kind: str
    plural: str
    versions: tuple[str, ...]
    """Served versions, the storage version (or the first served) first."""


def served_kinds(crds: list[Any]) -> list[ServedKind]:
    """The kinds `crds` serve (CustomResourceDefinition objects; others are skipped)."""
    out: list[ServedKind] = []
    for crd in crds:
        spec = (
            crd.get("spec")
            if isinstance(crd, dict) and crd.get("kind") == "CustomResourceDefinition"
            else None
        )
        if not isinstance(spec, dict):
            continue
        raw_names = spec.get("names")
        names: dict[str, Any] = raw_names if isinstance(raw_names, dict) else {}
        group, kind = spec.get("group"), names.get("kind")
        if not isinstance(group, str) or not isinstance(kind, str):
            continue
        versions = [
            v for v in spec.get("versions") or [] if isinstance(v, dict) and isinstance(v.get("name"), str)
        ]
        served = [v for v in versions if v.get("served") is not False]
        served.sort(key=lambda v: v.get("storage") is not True)
        plural = names.get("plural")
        out.append(
            ServedKind(
                group, kind, plural if isinstance(plural, str) else "", tuple(v["name"] for v in served)
            )
        )
    return out


def is_wildcard(resource: Resource) -> bool:
    return WILDCARD in (resource.group, resource.version, resource.kind)


def expand(resource: Resource, kinds: list[ServedKind] | None, findings: list[Finding]) -> list[Resource]:
    """The concrete resources `resource` stands for; findings say what could not be."""
    where = f"{resource.where}.groupVersionKind"
    if not is_wildcard(resource):
        return [resource]
    if resource.group == WILDCARD:
        findings.append(
            Finding(f"{where}.group", "a wildcard group is not supported (KSM needs a group too)")
        )
        return []
    if kinds is None:
        findings.append(
            Finding(
                where,
                f"{resource.version}/{resource.kind} is a wildcard: give the installed CRDs with --crds "
                "(kubectl get crd -o yaml) to expand it",
            )
        )
        return []
    out: list[Resource] = []
    for served in kinds:
        if (
            served.group != resource.group
            or resource.kind not in (WILDCARD, served.kind)
            or not served.versions
        ):
            continue
        if resource.version == WILDCARD:
            version = served.versions[0]
            if len(served.versions) > 1:
                findings.append(
                    Finding(
                        f"{where}.version",
                        f"{served.kind}: KSM serves each object once per served version "
                        f"({', '.join(served.versions)}); converted for {version} only",
                        "warning",
                    )
                )
        elif resource.version in served.versions:
            version = resource.version
        else:
            continue
        out.append(replace(resource, version=version, kind=served.kind, plural=served.plural))
    if not out:
        findings.append(
            Finding(
                where, f"{resource.group}/{resource.version}/{resource.kind} matches none of the CRDs given"
            )
        )
    return out
