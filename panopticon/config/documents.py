"""Reading Kubernetes documents from YAML or JSON text.

A file may hold one document, several (`---`-separated YAML, or JSON lines), or a
`List` object (`kind: List`, or any `*List` with `items`), as `kubectl get -o yaml`
prints. Every document comes back as a plain dict, the same shape the API server
sends as JSON:

- timestamps stay strings (YAML 1.1 would turn an unquoted
  `creationTimestamp: 2018-07-18T04:40:44Z` into a datetime; Kubernetes' own YAML
  decoding converts to JSON first and keeps the string);
- YAML aliases are capped, so a "billion laughs" document cannot blow up later walks.

PyYAML does the parsing; what is hand-written is what plain `yaml.safe_load_all`
gets wrong for Kubernetes documents (the two points above) and the `List` and JSON
lines forms. `kubernetes.utils.create_from_yaml` reads files only to create the
objects in a cluster, and the config layer may not import `kubernetes`. No speed
claim.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from panopticon.errors import DocumentError

MAX_ALIASES = 1000
"""Aliases allowed in one YAML stream: generous for hand-written files, far below
what an exponential alias bomb needs."""


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader with an alias budget: for every YAML read from users."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise DocumentError(f"more than {MAX_ALIASES} YAML aliases")
        return super().compose_node(parent, index)


class _KubeYAMLLoader(BoundedLoader):
    """BoundedLoader without the timestamp resolver."""


# Drop the implicit timestamp resolver: keep RFC 3339 strings as strings.
_KubeYAMLLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True, slots=True)
class Document:
    """One Kubernetes object read from `source` (file name and document index)."""

    source: str
    body: dict[str, Any]


def parse_documents(text: str | bytes, *, source: str) -> list[Document]:
    """Parse YAML or JSON text into its documents, flattening `List` objects.

    Empty documents are skipped; a document that is not a mapping is an error.
    """
    raw = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
    bodies = list(_load_all(raw, source=source))
    docs: list[Document] = []
    for index, body in enumerate(bodies):
        name = source if len(bodies) == 1 else f"{source}#{index}"
        if body is None:
            continue
        if not isinstance(body, dict):
            raise DocumentError(
                f"{name}: expected a mapping (a Kubernetes object), got {type(body).__name__}"
            )
        docs.extend(_flatten(body, name))
    return docs


def read_documents(path: str) -> list[Document]:
    """Read `path` (or standard input for `-`) and parse its documents."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as fh:
                data = fh.read()
    except OSError as e:
        raise DocumentError(f"{path}: {e.strerror or e}") from e
    return parse_documents(data, source="<stdin>" if path == "-" else path)


def _load_all(raw: str, *, source: str) -> Iterator[Any]:
    stripped = raw.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            yield orjson.loads(raw)
            return
        except orjson.JSONDecodeError:
            pass  # maybe JSON lines, or YAML flow style: fall through
        lines = [line for line in raw.splitlines() if line.strip()]
        try:
            parsed = [orjson.loads(line) for line in lines]
        except orjson.JSONDecodeError:
            parsed = None
        if parsed is not None:
            yield from parsed
            return
    try:
        yield from yaml.load_all(io.StringIO(raw), Loader=_KubeYAMLLoader)
    except yaml.YAMLError as e:
        raise DocumentError(f"{source}: not valid YAML or JSON: {e}") from e
    except RecursionError as e:
        raise DocumentError(f"{source}: document nested too deeply") from e


def _flatten(body: dict[str, Any], name: str) -> Iterator[Document]:
    kind = body.get("kind")
    items = body.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise DocumentError(f"{name}: items[{i}] is not a mapping")
            yield Document(f"{name} items[{i}]", item)
        return
    yield Document(name, body)
