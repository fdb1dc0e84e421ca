"""Server-side printing: `meta.k8s.io/v1` Table for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.

kubectl asks every `get` for a Table and prints the columns the server chose
(server-side printing: apiserver `endpoints/handlers/response.go`
`transformResponseObject`, kubectl `get/get.go`). Built-in kinds use the printers in `printers`
(kubernetes `pkg/printers/internalversion/printers.go`); custom resources use
their CRD's `additionalPrinterColumns` (apiextensions-apiserver
`pkg/registry/customresource/tableconvertor`), evaluated with the JSONPath
subset in `jsonpath`; a kind with neither gets the default convertor's Name and
Created At (apiserver `registry/rest/table.go`).

Rows carry the object as `includeObject` says: `Metadata` (default) a
PartialObjectMetadata, `Object` the whole object, `None` nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from kubesim import errors
from kubesim.jsonpath import Getter, JsonPathError, compile_path
from kubesim.printers import NAME_COLUMN, PRINTERS, human_age, parse_time
from kubesim.resources import PrinterColumn, ResourceType

Column = dict[str, Any]
RowCells = Callable[[dict[str, Any], float], list[Any]]

_DEFAULT_COLUMNS: list[Column] = [
    NAME_COLUMN,
    {
        "name": "Created At",
        "type": "date",
        "format": "",
        "description": "CreationTimestamp is a timestamp representing the server time when this object was "
        "created.",
        "priority": 0,
    },
]
INCLUDE_OBJECT = ("Metadata", "Object", "None")


def include_object(query: dict[str, str]) -> str:
    value = query.get("includeObject", "Metadata") or "Metadata"
    if value not in INCLUDE_OBJECT:
        raise errors.bad_request(
            f'Unsupported value: "{value}": supported values: "Metadata", "None", "Object"'
        )
    return value


def _default_cells(obj: dict[str, Any], _now: float) -> list[Any]:
    meta = obj.get("metadata") or {}
    return [meta.get("name", ""), meta.get("creationTimestamp")]


def _crd_columns(rtype: ResourceType) -> tuple[list[Column], RowCells]:
    columns = list(rtype.printer_columns) or [
        PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp")
    ]
    defs = [NAME_COLUMN] + [
        {
            "name": c.name,
            "type": c.type,
            "format": "",
            "description": c.description,
            "priority": c.priority,
        }
        for c in columns
    ]
    paths: list[Getter | None] = []
    for c in columns:
        try:
            paths.append(compile_path(c.json_path))
        except JsonPathError:
            paths.append(None)  # an unparsable column shows <none>, as the apiserver's does

    def cells(obj: dict[str, Any], now: float) -> list[Any]:
        row: list[Any] = [(obj.get("metadata") or {}).get("name", "")]
        for column, path in zip(columns, paths, strict=True):
            found = path(obj) if path is not None else []
            row.append(_crd_cell(column.type, found[0], now) if found else None)
        return row

    return defs, cells


def _crd_cell(type_: str, value: Any, now: float) -> Any:
    """`cellForJSONValue`: dates become ages; strings print as kubectl's JSONPath prints them."""
    if type_ == "date":
        if isinstance(value, str):
            created = parse_time(value)
            return human_age(created, now) if created is not None else None
        return None
    if type_ == "integer":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if type_ == "number":
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if type_ == "boolean":
        return value if isinstance(value, bool) else None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if value is not None else None


def columns_for(rtype: ResourceType) -> tuple[list[Column], RowCells]:
    """Column definitions and the row function of `rtype`."""
    if rtype.crd:
        return _crd_columns(rtype)
    printer = PRINTERS.get(rtype.key)
    if printer is not None:
        return printer
    return _DEFAULT_COLUMNS, _default_cells


def _row_object(rtype: ResourceType, version: str, obj: dict[str, Any], include: str) -> dict[str, Any]:
    if include == "Object":
        return {"kind": rtype.kind, "apiVersion": rtype.api_version(version), **obj}
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }


def table(
    rtype: ResourceType,
    version: str,
    objects: Iterable[dict[str, Any]],
    meta: dict[str, Any],
    *,
    include: str,
    now: float | None = None,
) -> dict[str, Any]:
    """A Table of `objects` (stored dicts, without kind/apiVersion)."""
    now = time.time() if now is None else now
    defs, cells = columns_for(rtype)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": cells(obj, now)}
        if include != "None":
            row["object"] = _row_object(rtype, version, obj, include)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": defs,
        "rows": rows,
    }


class WatchTables:
    """Watch events re-encoded with a one-row Table as each object (`kubectl get -w`).

    Column definitions go with the first event only, as the apiserver's watch sets
    `TableOptions.NoHeaders` after it; BOOKMARK and ERROR events pass unchanged.
    """

    def __init__(
        self, rtype: ResourceType, version: str, *, include: str, clock: Callable[[], float]
    ) -> None:
        self.rtype = rtype
        self.version = version
        self.include = include
        self.clock = clock
        self.headers_sent = False

    def convert(self, data: bytes) -> bytes:
        out = []
        for line in data.splitlines():
            if not line.strip():
                continue
            event = orjson.loads(line)
            obj = event.get("object")
            if event.get("type") in ("ADDED", "MODIFIED", "DELETED") and isinstance(obj, dict):
                stored = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
                rv = (stored.get("metadata") or {}).get("resourceVersion", "")
                one = table(
                    self.rtype,
                    self.version,
                    [stored],
                    {"resourceVersion": rv},
                    include=self.include,
                    now=self.clock(),
                )
                if self.headers_sent:
                    one["columnDefinitions"] = None
                self.headers_sent = True
                event["object"] = one
            out.append(orjson.dumps(event) + b"\n")
        return b"".join(out)


SCALE_COLUMNS: list[Column] = [
    NAME_COLUMN,
    {"name": "Desired", "type": "integer", "format": "", "description": "", "priority": 0},
    {"name": "Available", "type": "integer", "format": "", "description": "", "priority": 0},
]


def scale_table(scale: dict[str, Any], *, include: str) -> dict[str, Any]:
    """`kubectl get … --subresource=scale`: printers.go `printScale` (Name, Desired, Available)."""
    meta = scale.get("metadata") or {}
    row: dict[str, Any] = {
        "cells": [meta.get("name", ""), scale["spec"]["replicas"], scale["status"]["replicas"]]
    }
    if include == "Object":
        row["object"] = scale
    elif include == "Metadata":
        row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": meta.get("resourceVersion", "")},
        "columnDefinitions": SCALE_COLUMNS,
        "rows": [row],
    }
