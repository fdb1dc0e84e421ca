"""URL → request target (README.md, "URL routing"), as a pure function of the path and the registry.

Paths outside any served group version raise the plain-text `404 page not found`;
unknown resources inside a served group version raise the JSON NotFound Status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kubesim import errors
from kubesim.resources import NAMESPACE_TYPE, Registry, ResourceType

Target = Literal[
    "api",
    "apis",
    "group",
    "resources",
    "object",
    "collection",
    "version",
    "health",
    "openapi_root",
    "openapi_gv",
]


@dataclass(frozen=True, slots=True)
class Route:
    target: Target
    group: str = ""
    version: str = ""
    rtype: ResourceType | None = None
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    legacy_watch: bool = False


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def route(path: str, registry: Registry) -> Route:
    """Resolve `path`; raises ApiError 404 (plain or Status) when nothing is there."""
    parts = _split(path)
    if not parts:
        raise errors.page_not_found()
    head = parts[0]
    if head in ("healthz", "livez", "readyz") and len(parts) <= 2:
        return Route("health")
    if parts == ["version"]:
        return Route("version")
    if head == "openapi":
        return _openapi(parts, registry)
    if head == "api":
        if len(parts) == 1:
            return Route("api")
        group, version, rest = "", parts[1], parts[2:]
    elif head == "apis":
        if len(parts) == 1:
            return Route("apis")
        if len(parts) == 2:
            if not registry.group_versions().get(parts[1]):
                raise errors.page_not_found()
            return Route("group", group=parts[1])
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise errors.page_not_found()
    if not registry.serves(group, version):
        raise errors.page_not_found()
    if not rest:
        return Route("resources", group=group, version=version)
    legacy_watch = rest[0] == "watch"
    if legacy_watch:
        rest = rest[1:]
        if not rest:
            raise errors.resource_not_found()
    return _resource(group, version, rest, registry, legacy_watch)


def _resource(group: str, version: str, rest: list[str], registry: Registry, legacy_watch: bool) -> Route:
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        inner = registry.resolve(group, version, rest[2])
        if inner is not None and inner.namespaced:
            namespace, rest = rest[1], rest[2:]
        elif group == "" and len(rest) == 3 and rest[2] in NAMESPACE_TYPE.subresources:
            rest = ["namespaces", rest[1], rest[2]]
        else:
            raise errors.resource_not_found()
    if len(rest) > 3:
        raise errors.resource_not_found()
    rtype = registry.resolve(group, version, rest[0])
    if rtype is None:
        raise errors.resource_not_found()
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if sub and sub not in rtype.subresources:
        raise errors.resource_not_found()
    if name and rtype.namespaced and not namespace:
        raise errors.resource_not_found()
    target: Target = "object" if name else "collection"
    return Route(target, group, version, rtype, namespace, name, sub, legacy_watch)


def _openapi(parts: list[str], registry: Registry) -> Route:
    if parts == ["openapi", "v3"]:
        return Route("openapi_root")
    if len(parts) >= 4 and parts[1] == "v3":
        if parts[2] == "api" and len(parts) == 4:
            return Route("openapi_gv", group="", version=parts[3])
        if parts[2] == "apis" and len(parts) == 5:
            return Route("openapi_gv", group=parts[3], version=parts[4])
    raise errors.page_not_found()


def verb_of(method: str, target: Route, *, watch: bool) -> str:
    """The Kubernetes verb of a resource request (what the authorizer and 403s say)."""
    if method in ("GET", "HEAD"):
        if target.target == "collection" or (target.legacy_watch and not target.subresource):
            return "watch" if watch or target.legacy_watch else "list"
        return "get"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if target.target == "object" else "deletecollection"
    return method.lower()
