"""Typed reads from untrusted Kubernetes objects (plain dicts decoded from JSON).

Every reader takes the parent mapping, a key and the parent's path (used only in
error messages). A missing key and a JSON `null` both read as absent, as they do
when Kubernetes decodes an object; a present value of the wrong type raises
`ResourceCalcError` naming the field, never a `TypeError`.
"""

from __future__ import annotations

from typing import Any, Final

from panopticon.errors import ResourceCalcError

JSONMap = dict[str, Any]

MAX_REPLICAS: Final = 2**31 - 1
"""Replica counts are int32 in every Kubernetes and KubeDB API."""


def describe(value: object) -> str:
    """A value's JSON type name, for error messages (never the value: it may be huge)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def join(where: str, key: str) -> str:
    """The path of `key` under `where` (`spec` + `replicas` is `spec.replicas`)."""
    return f"{where}.{key}" if where else key


def mapping(parent: JSONMap, key: str, where: str) -> JSONMap | None:
    """`parent[key]` if it is an object; None if absent or null."""
    value = parent.get(key)
    if value is None or type(value) is dict:
        return value
    raise ResourceCalcError(f"{join(where, key)}: expected an object, got {describe(value)}")


def sequence(parent: JSONMap, key: str, where: str) -> list[Any]:
    """`parent[key]` if it is a list; empty if absent or null."""
    value = parent.get(key)
    if type(value) is list:
        return value
    if value is None:
        return []
    raise ResourceCalcError(f"{join(where, key)}: expected a list, got {describe(value)}")


def text(parent: JSONMap, key: str, where: str) -> str | None:
    """`parent[key]` if it is a string; None if absent or null."""
    value = parent.get(key)
    if value is None or type(value) is str:
        return value
    raise ResourceCalcError(f"{join(where, key)}: expected a string, got {describe(value)}")


def count(parent: JSONMap, key: str, where: str, *, default: int) -> int:
    """`parent[key]` as a replica-like count in 0..MAX_REPLICAS; `default` if absent or null.

    Only JSON integers count: Kubernetes rejects `3.0` or `"3"` for an int32 field.
    """
    value = parent.get(key)
    if value is None:
        return default
    if type(value) is not int:
        raise ResourceCalcError(f"{join(where, key)}: expected an integer, got {describe(value)}")
    if not 0 <= value <= MAX_REPLICAS:
        # The value is not echoed: a hostile integer can have more digits than str() allows.
        raise ResourceCalcError(f"{join(where, key)}: expected an integer in 0..{MAX_REPLICAS}")
    return value


def is_true(parent: JSONMap, key: str, where: str) -> bool:
    """Whether `parent[key]` is the boolean true; absent or null is false."""
    value = parent.get(key)
    if value is None or type(value) is bool:
        return value is True
    raise ResourceCalcError(f"{join(where, key)}: expected a boolean, got {describe(value)}")


def has_object(parent: JSONMap, key: str, where: str) -> bool:
    """Whether `parent[key]` is a (possibly empty) object; absent or null is false."""
    return mapping(parent, key, where) is not None
