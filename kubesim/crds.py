"""CustomResourceDefinition lifecycle (README.md, "CustomResourceDefinitions").

Creating a CRD validates its names, marks it Established and registers its type,
so discovery lists it and its resources are served at once. Deleting one emits
DELETED for every custom resource (the `customresourcecleanup` finalizer), closes
their watches, removes the type from discovery, then deletes the CRD: later
requests get 404. The CRD manifests the simulator ships live in
`panopticon/data/crds/`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources as importlib_resources
from typing import Any

from kubesim import errors
from kubesim.objects import Objects
from kubesim.objmeta import rfc3339
from kubesim.resources import CRD_TYPE, NAMESPACE_TYPE, ResourceType, type_from_crd
from kubesim.storage import ObjVersion
from panopticon.config.documents import parse_documents

CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


def validate_crd(obj: dict[str, Any]) -> None:
    """The checks clients trip over: names, group, scope, versions (422 otherwise)."""
    problems: list[errors.FieldError] = []
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    names = spec.get("names") if isinstance(spec.get("names"), dict) else {}
    assert isinstance(names, dict)
    group, plural = spec.get("group"), names.get("plural")
    name = obj.get("metadata", {}).get("name", "")
    for path, value in (
        ("spec.group", group),
        ("spec.names.plural", plural),
        ("spec.names.kind", names.get("kind")),
    ):
        if not value:
            problems.append(errors.FieldError("Required", path))
    if group and plural and name != f"{plural}.{group}":
        problems.append(
            errors.FieldError(
                "Invalid", "metadata.name", 'must be spec.names.plural+"."+spec.group', value=name
            )
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        problems.append(
            errors.FieldError(
                "NotSupported",
                "spec.scope",
                value=str(spec.get("scope")),
                supported=("Cluster", "Namespaced"),
            )
        )
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        problems.append(errors.FieldError("Required", "spec.versions", "must have at least one version"))
    elif sum(1 for v in versions if isinstance(v, dict) and v.get("storage")) != 1:
        problems.append(
            errors.FieldError(
                "Invalid",
                "spec.versions",
                "must have exactly one version marked as storage version",
                value="...",
            )
        )
    if problems:
        raise errors.invalid(
            problems, kind="CustomResourceDefinition", group="apiextensions.k8s.io", name=name
        )


def crd_status(obj: dict[str, Any], now: float) -> dict[str, Any]:
    """What the apiextensions controllers report once a CRD is being served."""
    spec = obj["spec"]
    names = dict(spec["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", names["kind"] + "List")
    stamp = rfc3339(now)
    storage = next(v["name"] for v in spec["versions"] if v.get("storage"))
    conditions = [
        {
            "type": "NamesAccepted",
            "status": "True",
            "lastTransitionTime": stamp,
            "reason": "NoConflicts",
            "message": "no conflicts found",
        },
        {
            "type": "Established",
            "status": "True",
            "lastTransitionTime": stamp,
            "reason": "InitialNamesAccepted",
            "message": "the initial names have been accepted",
        },
    ]
    stored = list((obj.get("status") or {}).get("storedVersions") or [])
    if storage not in stored:
        stored.append(storage)
    return {"acceptedNames": names, "conditions": conditions, "storedVersions": stored}


class CrdController:
    """Keeps the registry in step with CRD objects; owns the cleanup on delete."""

    def __init__(self, objects: Objects, *, close_watches: Callable[[tuple[str, str]], None]) -> None:
        self.objects = objects
        self.close_watches = close_watches
        objects.hooks.prepare[CRD_TYPE.key] = self._prepare
        objects.hooks.committed.append(self._committed)
        objects.hooks.deleting[CRD_TYPE.key] = self._deleting
        objects.hooks.deleting[NAMESPACE_TYPE.key] = self._deleting_namespace

    def _prepare(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        validate_crd(obj)
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            return
        finalizers = list(meta.get("finalizers") or [])
        if CLEANUP_FINALIZER not in finalizers:
            meta["finalizers"] = [*finalizers, CLEANUP_FINALIZER]
        obj["status"] = crd_status(obj, self.objects.clock())

    def _committed(self, rtype: ResourceType, version: ObjVersion) -> None:
        if rtype.key != CRD_TYPE.key:
            return
        registry = self.objects.registry
        crd = version.obj()
        try:
            new_type = type_from_crd(crd)
        except (KeyError, ValueError, StopIteration):
            return
        if version.deleted:
            registry.remove(new_type.key)
            self.objects.storage.drop_store(new_type.key)
            return
        if crd["metadata"].get("deletionTimestamp"):
            return
        registry.add(new_type)
        self.objects.storage.open_store(new_type)

    def _deleting(self, rtype: ResourceType, version: ObjVersion) -> None:
        crd = version.obj()
        cr_type = type_from_crd(crd)
        st = self.objects.storage.stores.get(cr_type.key)
        if st is not None:
            for v in list(st.current.values()):
                self.objects.storage.delete(cr_type, v.key)
            self.close_watches(cr_type.key)
        self.objects.registry.remove(cr_type.key)
        self.objects.finish_delete(rtype, version, CLEANUP_FINALIZER)

    def _deleting_namespace(self, rtype: ResourceType, version: ObjVersion) -> None:
        """The namespace controller: delete everything inside, then the namespace."""
        for st in list(self.objects.storage.stores.values()):
            if not st.rtype.namespaced:
                continue
            for v in [v for v in st.current.values() if v.namespace == version.name]:
                self.objects.storage.delete(st.rtype, v.key)
        self.objects.finish_delete(rtype, version, "")


def builtin_crds() -> list[dict[str, Any]]:
    """The CRD manifests shipped in `panopticon/data/crds/` (sorted by file name)."""
    root = importlib_resources.files("panopticon") / "data" / "crds"
    out: list[dict[str, Any]] = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.endswith((".yaml", ".yml", ".json")):
            out.extend(d.body for d in parse_documents(entry.read_bytes(), source=entry.name))
    return out
