"""Check a config's paths against the target kind's schema.

A path that names a field the kind does not have selects nothing, forever; catching
it at validation time is what AppsCode's metrics-configuration-checker does against a
live cluster. Schemas come from the built-in kinds' OpenAPI definitions (bundled in
`data/native_schemas.json`, generated from the `kubernetes` package) and from CRDs
(`openAPIV3Schema`, in the cluster or given to `panopticon validate`).

Severity follows the checker: an unknown field under `.spec`, or an unknown
top-level field, is an error (structural schemas prune unknown spec fields, so such
a path can never match); elsewhere (`.status`, `.metadata`) it is a warning, because
controllers often write status fields their schema does not list. Free-form parts of
a schema (`x-kubernetes-preserve-unknown-fields`, IntOrString, maps) accept anything.

Schema nodes: `"s"` scalar, `"*"` anything, `{"p": {field: node}}` object,
`{"m": node}` map, `{"a": node}` list, `"#Name"` a shared definition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from panopticon.config.findings import Finding
from panopticon.render.paths import KeyEquals, Path, Step

Node = Any


@dataclass(slots=True)
class SchemaIndex:
    """Schemas by `group/version/Kind` (core group: `v1/Kind`)."""

    kinds: dict[str, Node] = field(default_factory=dict)
    defs: dict[str, Node] = field(default_factory=dict)

    def lookup(self, api_version: str, kind: str) -> Node | None:
        return self.kinds.get(f"{api_version}/{kind}")

    def add_crd(self, crd: Any) -> int:
        """Add every served version of a CRD object; return how many were added."""
        spec = crd.get("spec") if isinstance(crd, dict) else None
        if not isinstance(spec, dict):
            return 0
        group, names = spec.get("group"), spec.get("names")
        kind = names.get("kind") if isinstance(names, dict) else None
        if not isinstance(group, str) or not isinstance(kind, str):
            return 0
        added = 0
        for version in spec.get("versions") or []:
            if not isinstance(version, dict) or not isinstance(version.get("name"), str):
                continue
            schema = (
                (version.get("schema") or {}).get("openAPIV3Schema")
                if isinstance(version.get("schema"), dict)
                else None
            )
            self.kinds[f"{group}/{version['name']}/{kind}"] = (
                from_openapi(schema) if isinstance(schema, dict) else "*"
            )
            added += 1
        return added

    def resolve(self, node: Node) -> Node:
        while isinstance(node, str) and node.startswith("#"):
            node = self.defs.get(node[1:], "*")
        return node


@lru_cache(maxsize=1)
def _native_document() -> dict[str, Any]:
    text = resources.files("panopticon").joinpath("data/native_schemas.json").read_text()
    doc: dict[str, Any] = json.loads(text)
    return doc


def native_schemas() -> SchemaIndex:
    """A new index holding the built-in kinds (add CRDs to it as they are found)."""
    doc = _native_document()
    return SchemaIndex(dict(doc["kinds"]), doc["defs"])


def from_openapi(schema: dict[str, Any], depth: int = 0) -> Node:
    """Convert an OpenAPI v3 (structural) schema into a schema node."""
    if (
        depth > 64
        or schema.get("x-kubernetes-preserve-unknown-fields")
        or schema.get("x-kubernetes-int-or-string")
    ):
        return "*"
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items")
        return {"a": from_openapi(items, depth + 1) if isinstance(items, dict) else "*"}
    props = schema.get("properties")
    if isinstance(props, dict) and props:
        return {
            "p": {k: from_openapi(v, depth + 1) if isinstance(v, dict) else "*" for k, v in props.items()}
        }
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        return {"m": from_openapi(extra, depth + 1)}
    if kind == "object" or kind is None:
        return "*"
    return "s"


def check_path(index: SchemaIndex, root: Node, path: Path, where: str) -> Finding | None:
    """A finding when `path` leaves `root`'s schema, else None."""
    steps: list[Step | None] = []  # None stands for [*]
    for i, segment in enumerate(path.segments):
        if i:
            steps.append(None)
        # `.name=text` reads the field `name` (its literal-key fallback is not checked);
        # `[name=text]` picks a list element, as an index does.
        steps.extend(step.name if isinstance(step, KeyEquals) else step for step in segment)
    node = index.resolve(root)
    walked = ""
    for position, step in enumerate(steps):
        if node == "*":
            return None
        if isinstance(step, str):
            if isinstance(node, dict) and "p" in node:
                props = node["p"]
                if step in props:
                    node = index.resolve(props[step])
                    walked += f".{step}"
                    continue
                return _unknown(path, where, walked, step, props, top=position == 0)
            if isinstance(node, dict) and "m" in node:
                node = index.resolve(node["m"])
                walked += f".{step}"
                continue
            what = "a list (use [n] or [*])" if isinstance(node, dict) and "a" in node else "a scalar"
            return _finding(
                path, where, walked or ".", f"{walked or 'the object'} is {what}, it has no field {step!r}"
            )
        if isinstance(node, dict) and "a" in node:
            node = index.resolve(node["a"])
            walked += "[*]" if step is None else str(step) if not isinstance(step, int) else f"[{step}]"
            continue
        return _finding(path, where, walked or ".", f"{walked or 'the object'} is not a list")
    return None


def _unknown(path: Path, where: str, walked: str, step: str, props: dict[str, Any], *, top: bool) -> Finding:
    hint = ""
    for candidate in props:
        if candidate.lower() == step.lower():
            hint = f"; did you mean {walked}.{candidate}?"
            break
    message = f"{path.text!r}: {walked or 'the object'} has no field {step!r}{hint}"
    return _finding(path, where, walked, message, error=top or walked.startswith(".spec"))


def _finding(path: Path, where: str, walked: str, message: str, *, error: bool | None = None) -> Finding:
    if error is None:
        error = walked.startswith(".spec") or walked in ("", ".")
    if not message.startswith(repr(path.text)):
        message = f"{path.text!r}: {message}"
    return Finding(where, message, "error" if error else "warning")
