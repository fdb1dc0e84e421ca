"""Reading kube-state-metrics custom resource state (CRS) configs from YAML.

A CRS config comes in three forms, all accepted:

- the document KSM's `--custom-resource-state-config(-file)` reads:
  `kind: CustomResourceStateMetrics` with `spec.resources`;
- the same without `kind` (the bare `spec:` form; KSM ignores `kind`);
- Helm values of the kube-state-metrics chart: `customResourceState.config` (an
  object, or the same YAML as a string), also under `kube-state-metrics:` as the
  kube-prometheus-stack chart nests it.

Scalars are read as the text they are written as (KSM decodes into Go strings:
`version: 1.10` stays "1.10", `list: [yes, no]` stays "yes" and "no"); only `null`
and `~` are nulls. Duplicate keys are an error, as in KSM's YAML decoder, and aliases
are capped as for every YAML document Panopticon reads (`BoundedLoader`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import yaml

from panopticon.config.documents import BoundedLoader
from panopticon.errors import DocumentError

CRS_KIND = "CustomResourceStateMetrics"


class _TextLoader(BoundedLoader):
    """Every scalar as its text (nulls as None), duplicate keys refused, aliases capped."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    line = key_node.start_mark.line + 1
                    raise DocumentError(f"line {line}: key {key_node.value!r} is given twice")
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


_TextLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag.endswith((":null", ":merge"))]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(text: str, *, source: str) -> list[Any]:
    """Every document of `text` (empty ones left out)."""
    try:
        return [doc for doc in yaml.load_all(io.StringIO(text), Loader=_TextLoader) if doc is not None]
    except yaml.YAMLError as e:
        raise DocumentError(f"{source}: not valid YAML: {_one_line(str(e))}") from e
    except DocumentError as e:
        raise DocumentError(f"{source}: {e}") from e
    except RecursionError as e:
        raise DocumentError(f"{source}: document nested too deeply") from e


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class CrsDocument:
    """One CRS config: the mapping that holds `spec`, and where it sits in its file."""

    source: str
    where: str
    """Field path prefix of the config in its document (`customResourceState.config.`)."""
    body: dict[str, Any]


def read_file(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise DocumentError(f"{path}: {e.strerror or e}") from e
    return data.decode("utf-8", errors="replace")


def crs_documents(text: str, *, source: str) -> list[CrsDocument]:
    """The CRS configs in `text`; DocumentError names a document that is not one."""
    docs = load_yaml(text, source=source)
    if not docs:
        raise DocumentError(f"{source}: no YAML document in it")
    out: list[CrsDocument] = []
    for index, doc in enumerate(docs):
        name = source if len(docs) == 1 else f"{source}#{index}"
        out.append(_crs_document(doc, name))
    return out


def _crs_document(doc: Any, name: str) -> CrsDocument:
    if isinstance(doc, list) and doc and all(isinstance(x, dict) and "groupVersionKind" in x for x in doc):
        raise DocumentError(f"{name}: not a CRS config but a list of resources: put it under spec.resources")
    if not isinstance(doc, dict):
        raise DocumentError(f"{name}: not a CRS config: a {type(doc).__name__}, not a mapping")
    kind = doc.get("kind")
    if kind == CRS_KIND or (kind is None and "spec" in doc):
        return CrsDocument(name, "", doc)
    if kind is None:
        for prefix, values in (("", doc), ("kube-state-metrics.", doc.get("kube-state-metrics"))):
            crs = values.get("customResourceState") if isinstance(values, dict) else None
            if isinstance(crs, dict) and "config" in crs:
                return _helm_config(crs["config"], name, f"{prefix}customResourceState.config.")
    raise DocumentError(
        f"{name}: not a CRS config: expected kind: {CRS_KIND}, a document with spec.resources, "
        f"or Helm values with customResourceState.config (found {_describe_top(doc)})"
    )


def _helm_config(config: Any, name: str, where: str) -> CrsDocument:
    if isinstance(config, str):
        docs = load_yaml(config, source=f"{name}: {where[:-1]}")
        if len(docs) != 1:
            raise DocumentError(f"{name}: {where[:-1]}: expected one YAML document, found {len(docs)}")
        config = docs[0]
    if not isinstance(config, dict):
        raise DocumentError(f"{name}: {where[:-1]}: not a CRS config (a mapping with spec.resources)")
    kind = config.get("kind")
    if kind not in (None, CRS_KIND):
        raise DocumentError(f"{name}: {where}kind: {kind!r} is not {CRS_KIND}")
    return CrsDocument(name, where, config)


def _describe_top(doc: dict[Any, Any]) -> str:
    if "kind" in doc:
        return f"kind {doc['kind']!r}"
    keys = ", ".join(str(k) for k in list(doc)[:5])
    return f"top-level keys {keys}" if keys else "an empty mapping"
