"""Discovery documents (README.md, "Discovery") and the minimal OpenAPI v3 kubectl probes.

Legacy discovery (`/api`, `/apis`, `/apis/{g}`, `/api/v1`, `/apis/{g}/{v}`) with the
apiserver's quirk that `/api`, `/apis` and `/api/v1` carry no `apiVersion`, and
aggregated discovery (`apidiscovery.k8s.io/v2`) when the client asks for it.
Documents are built from the registry and cached per registry generation, so CRDs
appear and disappear as they are created and deleted.

OpenAPI: kubectl's `--validate` checks, per kind, that the PATCH operation accepts
the `fieldValidation` query parameter. The documents served here hold exactly that
and no schemas, which makes kubectl validate on the server (where the simulator
accepts everything) and compute strategic patches from its built-in types.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson

from kubesim.resources import ALL_VERBS, SUBRESOURCE_VERBS, Registry, ResourceType

AGGREGATED_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> bool:
    """True if `accept` asks for `APIGroupDiscoveryList` v2 (v2beta1 is gone since 1.35)."""
    for part in accept.split(","):
        params = {p.strip() for p in part.split(";")}
        if {"g=apidiscovery.k8s.io", "v=v2", "as=APIGroupDiscoveryList"} <= params:
            return True
    return False


def _storage_hash(rtype: ResourceType) -> str:
    digest = hashlib.sha256(f"{rtype.group}/{rtype.storage_version}/{rtype.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def _sub_kind(rtype: ResourceType, sub: str, version: str) -> dict[str, str]:
    if sub == "scale":
        return {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    return {"group": rtype.group, "version": version, "kind": rtype.kind}


def api_resource(rtype: ResourceType) -> list[dict[str, Any]]:
    """`APIResource` entries: the resource, then each subresource."""
    main: dict[str, Any] = {
        "name": rtype.plural,
        "singularName": rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": list(ALL_VERBS),
    }
    if rtype.short_names:
        main["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        main["categories"] = list(rtype.categories)
    main["storageVersionHash"] = _storage_hash(rtype)
    out = [main]
    for sub in rtype.subresources:
        entry: dict[str, Any] = {
            "name": f"{rtype.plural}/{sub}",
            "singularName": "",
            "namespaced": rtype.namespaced,
        }
        if sub == "scale":
            entry.update(group="autoscaling", version="v1", kind="Scale")
        else:
            entry["kind"] = rtype.kind
        entry["verbs"] = ["update"] if sub == "finalize" else list(SUBRESOURCE_VERBS)
        out.append(entry)
    return out


def _group_entry(name: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}


class Discovery:
    """Serialised discovery documents, rebuilt when the registry changes."""

    def __init__(self, registry: Registry, *, server_address: str = "127.0.0.1:6443") -> None:
        self.registry = registry
        self.server_address = server_address
        self._cache: dict[tuple[str, ...], bytes] = {}
        self._generation = -1

    def _cached(self, key: tuple[str, ...], build: Any) -> bytes:
        if self._generation != self.registry.generation:
            self._cache.clear()
            self._generation = self.registry.generation
        body = self._cache.get(key)
        if body is None:
            body = self._cache[key] = orjson.dumps(build())
        return body

    def api_versions(self) -> bytes:
        return self._cached(
            ("api",),
            lambda: {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": self.server_address}
                ],
            },
        )

    def group_list(self) -> bytes:
        def build() -> dict[str, Any]:
            groups = [_group_entry(g, vs) for g, vs in self.registry.group_versions().items() if g]
            return {"kind": "APIGroupList", "groups": groups}

        return self._cached(("apis",), build)

    def group(self, group: str) -> bytes | None:
        versions = self.registry.group_versions().get(group)
        if not group or not versions:
            return None
        return self._cached(
            ("group", group),
            lambda: {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, versions)},
        )

    def resource_list(self, group: str, version: str) -> bytes | None:
        if not self.registry.serves(group, version):
            return None

        def build() -> dict[str, Any]:
            resources = [r for t in self.registry.in_group_version(group, version) for r in api_resource(t)]
            head: dict[str, Any] = {"kind": "APIResourceList"}
            if group:  # keepUnversioned: the core group's list has no apiVersion
                head["apiVersion"] = "v1"
            return {
                **head,
                "groupVersion": f"{group}/{version}" if group else version,
                "resources": resources,
            }

        return self._cached(("resources", group, version), build)

    def aggregated(self, *, core: bool) -> bytes:
        def build() -> dict[str, Any]:
            items = []
            for group, versions in self.registry.group_versions().items():
                if bool(group) == core:
                    continue
                meta: dict[str, Any] = {"creationTimestamp": None}
                if group:
                    meta = {"name": group, **meta}
                items.append(
                    {"metadata": meta, "versions": [self._aggregated_version(group, v) for v in versions]}
                )
            return {
                "kind": "APIGroupDiscoveryList",
                "apiVersion": "apidiscovery.k8s.io/v2",
                "metadata": {},
                "items": items,
            }

        return self._cached(("aggregated", str(core)), build)

    def _aggregated_version(self, group: str, version: str) -> dict[str, Any]:
        resources = []
        for t in self.registry.in_group_version(group, version):
            entry: dict[str, Any] = {
                "resource": t.plural,
                "responseKind": {"group": group, "version": version, "kind": t.kind},
                "scope": "Namespaced" if t.namespaced else "Cluster",
                "singularResource": t.singular,
                "verbs": list(ALL_VERBS),
            }
            if t.short_names:
                entry["shortNames"] = list(t.short_names)
            if t.categories:
                entry["categories"] = list(t.categories)
            if t.subresources:
                entry["subresources"] = [
                    {
                        "subresource": s,
                        "responseKind": _sub_kind(t, s, version),
                        "verbs": ["update"] if s == "finalize" else list(SUBRESOURCE_VERBS),
                    }
                    for s in t.subresources
                ]
            resources.append(entry)
        return {"version": version, "resources": resources, "freshness": "Current"}

    # --- OpenAPI v3 (just enough for kubectl's field validation probe) ---

    def openapi_root(self) -> bytes:
        def build() -> dict[str, Any]:
            paths = {}
            for group, versions in self.registry.group_versions().items():
                for v in versions:
                    rel = f"apis/{group}/{v}" if group else f"api/{v}"
                    digest = (
                        hashlib.sha512(self.openapi_group_version(group, v) or b"").hexdigest()[:64].upper()
                    )
                    paths[rel] = {"serverRelativeURL": f"/openapi/v3/{rel}?hash={digest}"}
            return {"paths": paths}

        return self._cached(("openapi",), build)

    def openapi_group_version(self, group: str, version: str) -> bytes | None:
        if not self.registry.serves(group, version):
            return None

        def build() -> dict[str, Any]:
            prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
            paths: dict[str, Any] = {}
            for t in self.registry.in_group_version(group, version):
                scope = "/namespaces/{namespace}" if t.namespaced else ""
                gvk = {"group": group, "version": version, "kind": t.kind}
                paths[f"{prefix}{scope}/{t.plural}/{{name}}"] = {
                    "patch": {
                        "operationId": f"patch{t.kind}",
                        "parameters": [
                            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}
                        ],
                        "responses": {"200": {"description": "OK"}},
                        "x-kubernetes-action": "patch",
                        "x-kubernetes-group-version-kind": gvk,
                    }
                }
            return {
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": "unversioned"},
                "paths": paths,
            }

        return self._cached(("openapi", group, version), build)
