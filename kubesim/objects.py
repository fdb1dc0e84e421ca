"""Object write semantics over the MVCC storage: create, update, patch, delete.

What the generic registry store does, as far as kubectl and test fixtures need
(README.md, "Resource versions and storage"): metadata filled on create (uid, creationTimestamp, generation,
managedFields), optimistic concurrency on resourceVersion, no-op updates that
write nothing, generation bumped on spec changes, status kept apart when a type
has a status subresource, and deletion through finalizers (MODIFIED with a
deletionTimestamp first; DELETED once the last finalizer is gone).
"""

from __future__ import annotations

import random
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubesim import errors
from kubesim.objmeta import managed_entry, ordered_object, rfc3339, same_object, spec_of
from kubesim.patch import APPLY, JSON_PATCH, MERGE, STRATEGIC, patched_object
from kubesim.resources import NAMESPACE_TYPE, Registry, ResourceType
from kubesim.storage import ObjVersion, Storage, object_key
from panopticon.config.documents import parse_documents
from panopticon.errors import DocumentError

PrepareHook = Callable[[dict[str, Any], dict[str, Any] | None], None]
CommitHook = Callable[[ResourceType, ObjVersion], None]
DeleteHook = Callable[[ResourceType, ObjVersion], None]

_SERVER_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")


@dataclass(slots=True)
class WriteOptions:
    """Who writes and how: the field manager, and whether metadata the caller set
    (uid, creationTimestamp, managedFields…) is kept, as loaders want."""

    manager: str = ""
    preserve: bool = False
    auto_namespace: bool = False
    subresource: str = ""


@dataclass(slots=True)
class Hooks:
    prepare: dict[tuple[str, str], PrepareHook] = field(default_factory=dict)
    committed: list[CommitHook] = field(default_factory=list)
    deleting: dict[tuple[str, str], DeleteHook] = field(default_factory=dict)


class Objects:
    """API verbs on objects; the single writer of `storage`."""

    def __init__(
        self,
        storage: Storage,
        registry: Registry,
        *,
        rng: random.Random,
        clock: Callable[[], float] = time.time,
        default_namespace: str = "demo",
    ) -> None:
        self.storage = storage
        self.registry = registry
        self.rng = rng
        self.clock = clock
        self.default_namespace = default_namespace
        self.hooks = Hooks()

    def new_uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def get(self, rtype: ResourceType, namespace: str, name: str) -> ObjVersion | None:
        st = self.storage.stores.get(rtype.key)
        if st is None:
            return None
        return st.current.get(object_key(namespace if rtype.namespaced else "", name))

    def require(self, rtype: ResourceType, namespace: str, name: str) -> ObjVersion:
        v = self.get(rtype, namespace, name)
        if v is None:
            raise errors.not_found(rtype.plural, name, group=rtype.group)
        return v

    # --- create ---

    def create(
        self, rtype: ResourceType, obj: dict[str, Any], *, namespace: str, opts: WriteOptions
    ) -> ObjVersion:
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        self._check_type(rtype, obj)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise errors.invalid(
                    [errors.FieldError("Required", "metadata.name", "name or generateName is required")],
                    kind=rtype.kind,
                    group=rtype.group,
                )
            suffix = "".join(self.rng.choices(string.ascii_lowercase + string.digits, k=5))
            meta["name"] = meta["generateName"] + suffix
        name = meta["name"]
        if rtype.namespaced:
            ns = self._namespace_for(meta, namespace, opts)
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
            ns = ""
        if self.get(rtype, ns, name) is not None:
            raise errors.already_exists(rtype.plural, name, group=rtype.group)
        hook = self.hooks.prepare.get(rtype.key)
        if hook is not None:
            hook(obj, None)
        now = self.clock()
        for key in ("resourceVersion", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(key, None)
        if not (opts.preserve and meta.get("uid")):
            meta["uid"] = self.new_uid()
        if not (opts.preserve and meta.get("creationTimestamp")):
            meta["creationTimestamp"] = rfc3339(now)
        if not (opts.preserve and meta.get("generation")) and (rtype.crd or "spec" in obj):
            meta["generation"] = 1  # types without a spec (ConfigMap, Secret) have none
        if opts.manager and not (opts.preserve and meta.get("managedFields")):
            meta["managedFields"] = [
                managed_entry(
                    obj, manager=opts.manager, api_version=rtype.storage_api_version, now=now, status=False
                )
            ]
        version, _ = self.storage.put(rtype, ordered_object(obj, crd=rtype.crd))
        self._committed(rtype, version)
        return version

    def _namespace_for(self, meta: dict[str, Any], namespace: str, opts: WriteOptions) -> str:
        body_ns = meta.get("namespace") or ""
        if namespace and body_ns and body_ns != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        ns = namespace or body_ns or (self.default_namespace if opts.auto_namespace else "")
        if not ns:
            raise errors.bad_request("the namespace of the object is required")
        if self.get(NAMESPACE_TYPE, "", ns) is None:
            if not opts.auto_namespace:
                raise errors.not_found("namespaces", ns)
            self.ensure_namespace(ns)
        return ns

    def ensure_namespace(self, name: str) -> None:
        if self.get(NAMESPACE_TYPE, "", name) is None:
            ns = {
                "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }
            self.create(NAMESPACE_TYPE, ns, namespace="", opts=WriteOptions())

    def _check_type(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if kind and kind != rtype.kind:
            raise errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({rtype.kind})"
            )
        if api_version and api_version not in {rtype.api_version(v) for v in rtype.versions}:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rtype.storage_api_version})"
            )

    # --- update and patch ---

    def update(
        self, rtype: ResourceType, obj: dict[str, Any], *, namespace: str, name: str, opts: WriteOptions
    ) -> ObjVersion:
        """PUT: replace the object (or only its status, for the status subresource)."""
        self._check_type(rtype, obj)
        old = self.require(rtype, namespace, name)
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        if meta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        rv = meta.get("resourceVersion")
        if rv and rv != str(old.rev):
            raise errors.conflict(
                rtype.plural,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
                group=rtype.group,
            )
        return self._replace(rtype, old, obj, opts)

    def patch(
        self,
        rtype: ResourceType,
        body: bytes,
        content_type: str,
        *,
        namespace: str,
        name: str,
        opts: WriteOptions,
    ) -> ObjVersion:
        """PATCH with merge, strategic-merge or JSON patch; server-side apply creates."""
        kind = content_type.split(";", maxsplit=1)[0].strip()
        if kind == APPLY:
            applied = _parse_apply(body)
            if self.get(rtype, namespace, name) is None:
                applied.setdefault("metadata", {})["name"] = name
                return self.create(rtype, applied, namespace=namespace, opts=opts)
            return self.patch_doc(rtype, applied, MERGE, namespace=namespace, name=name, opts=opts)
        if kind not in (MERGE, STRATEGIC, JSON_PATCH):
            raise errors.unsupported_media_type(kind)
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise errors.bad_request(f"error decoding patch: {e}") from None
        return self.patch_doc(rtype, doc, kind, namespace=namespace, name=name, opts=opts)

    def patch_doc(
        self, rtype: ResourceType, doc: Any, kind: str, *, namespace: str, name: str, opts: WriteOptions
    ) -> ObjVersion:
        """Apply a decoded patch document of media type `kind`."""
        old = self.require(rtype, namespace, name)
        current = old.obj()
        if kind == STRATEGIC and rtype.crd:
            raise errors.unsupported_media_type(kind)
        patched = patched_object(current, doc, kind)
        rv = (patched.get("metadata") or {}).get("resourceVersion")
        if rv and rv != str(old.rev):
            raise errors.conflict(rtype.plural, name, "the object has been modified", group=rtype.group)
        # merge and strategic patches share unpatched subtrees with `current`, which
        # therefore still is the previous object (`_replace` copies what it changes).
        return self._replace(rtype, old, patched, opts, prev=current if kind != JSON_PATCH else None)

    def _replace(
        self,
        rtype: ResourceType,
        old: ObjVersion,
        obj: dict[str, Any],
        opts: WriteOptions,
        *,
        prev: dict[str, Any] | None = None,
    ) -> ObjVersion:
        prev = old.obj() if prev is None else prev
        meta = obj["metadata"] = dict(obj.get("metadata") or {})
        if opts.subresource == "status":
            new = old.obj()
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
            obj, meta = new, new["metadata"]
        elif "status" in rtype.subresources and not opts.preserve:
            if "status" in prev:
                obj["status"] = prev["status"]
            else:
                obj.pop("status", None)
        old_meta = prev["metadata"]
        meta["name"], meta["resourceVersion"] = old_meta["name"], old_meta["resourceVersion"]
        if rtype.namespaced:
            meta["namespace"] = old_meta["namespace"]
        for key in _SERVER_META:
            if not (opts.preserve and key in meta):
                if key in old_meta:
                    meta[key] = old_meta[key]
                else:
                    meta.pop(key, None)
        if old_meta.get("deletionTimestamp"):
            meta["deletionTimestamp"] = old_meta["deletionTimestamp"]
        obj.pop("kind", None)
        obj.pop("apiVersion", None)
        if "managedFields" not in meta and "managedFields" in old_meta:
            meta["managedFields"] = old_meta["managedFields"]
        if same_object(obj, prev):
            return old  # a no-op update writes nothing (GuaranteedUpdate compares bytes)
        if meta.get("generation") == old_meta.get("generation") and spec_of(obj) != spec_of(prev):
            meta["generation"] = int(old_meta.get("generation") or 1) + 1
        hook = self.hooks.prepare.get(rtype.key)
        if hook is not None:
            hook(obj, prev)
        if opts.manager:
            self._track_manager(rtype, obj, opts)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._remove(rtype, old, final=ordered_object(obj, crd=rtype.crd))
        version, _ = self.storage.put(rtype, ordered_object(obj, crd=rtype.crd))
        self._committed(rtype, version)
        return version

    def _track_manager(self, rtype: ResourceType, obj: dict[str, Any], opts: WriteOptions) -> None:
        meta = obj["metadata"]
        status = opts.subresource == "status"
        entry = managed_entry(
            obj, manager=opts.manager, api_version=rtype.storage_api_version, now=self.clock(), status=status
        )
        if opts.subresource == "scale":  # a scale write owns spec.replicas only (apiserver >= 1.26)
            entry["fieldsV1"] = {"f:spec": {"f:replicas": {}}}
            entry["subresource"] = "scale"
        kept = [
            e
            for e in meta.get("managedFields") or []
            if not (e.get("manager") == opts.manager and e.get("subresource", "") == opts.subresource)
        ]
        meta["managedFields"] = [*kept, entry]

    # --- delete ---

    def delete(
        self, rtype: ResourceType, namespace: str, name: str, *, preconditions: dict[str, Any] | None = None
    ) -> ObjVersion:
        """DELETE: immediate without finalizers, else mark with deletionTimestamp."""
        old = self.require(rtype, namespace, name)
        obj = old.obj()
        meta = obj["metadata"]
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            have = meta.get("uid")
            detail = f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {have}"
            raise errors.conflict(rtype.plural, name, detail, group=rtype.group)
        if pre.get("resourceVersion") and pre["resourceVersion"] != str(old.rev):
            detail = (
                f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                f"ResourceVersion in object meta: {old.rev}"
            )
            raise errors.conflict(rtype.plural, name, detail, group=rtype.group)
        hook = self.hooks.deleting.get(rtype.key)
        if meta.get("finalizers") or hook is not None:
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = rfc3339(self.clock())
                meta["deletionGracePeriodSeconds"] = 0
                if rtype.key == NAMESPACE_TYPE.key:
                    obj.setdefault("status", {})["phase"] = "Terminating"
                old, _ = self.storage.put(rtype, obj)
                self._committed(rtype, old)
            if hook is not None:
                hook(rtype, old)  # cascades, then clears its finalizer (which deletes)
                return self.get(rtype, namespace, name) or old
            return old
        return self._remove(rtype, old)

    def _remove(
        self, rtype: ResourceType, old: ObjVersion, *, final: dict[str, Any] | None = None
    ) -> ObjVersion:
        tomb = self.storage.delete(rtype, old.key, final=final)
        assert tomb is not None
        self._committed(rtype, tomb)
        return tomb

    def finish_delete(self, rtype: ResourceType, version: ObjVersion, finalizer: str) -> None:
        """Drop `finalizer` from an object being deleted (deletes it when none is left)."""
        obj = version.obj()
        meta = obj["metadata"]
        meta["finalizers"] = [f for f in meta.get("finalizers") or [] if f != finalizer]
        if not meta["finalizers"]:
            del meta["finalizers"]
            self._remove(rtype, version, final=obj)
        else:
            v, _ = self.storage.put(rtype, obj)
            self._committed(rtype, v)

    def _committed(self, rtype: ResourceType, version: ObjVersion) -> None:
        for hook in self.hooks.committed:
            hook(rtype, version)


def _parse_apply(body: bytes) -> dict[str, Any]:
    try:
        docs = parse_documents(body, source="apply patch")
    except DocumentError as e:
        raise errors.bad_request(str(e)) from None
    if len(docs) != 1:
        raise errors.bad_request("an apply patch must hold exactly one object")
    return docs[0].body
