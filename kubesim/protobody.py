"""A protobuf request body → the JSON object it stands for (`protowire` + `protoschema`).

The result is what the same client would have sent as JSON: zero values of
non-pointer fields dropped (Go's generated marshalling writes them, its JSON
omits them), maps and lists as JSON, bytes base64, Time as RFC 3339,
Quantity and IntOrString as their JSON forms.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from kubesim.protoschema import KEEP, KINDS, MESSAGES, REPEATED
from kubesim.protowire import LEN, MAX_DEPTH, VARINT, ProtoError, envelope, fields, is_empty, signed, utf8

_SCALARS = frozenset({"s", "b", "i", "?"})


class NoSchema(ProtoError):
    """A well-formed body of a kind (or field) the simulator has no protobuf schema for."""


def decode_object(body: bytes) -> dict[str, Any]:
    """The object in a `k8s\\0` protobuf body, with its apiVersion and kind."""
    env = envelope(body)
    name = KINDS.get((env.api_version, env.kind))
    if name is None:
        raise NoSchema(f"no protobuf schema for {env.kind or '?'} {env.api_version or '?'}")
    obj = decode_message(env.raw, name)
    return {"apiVersion": env.api_version, "kind": env.kind, **obj}


def decode_message(buf: bytes, name: str, depth: int = 0) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise ProtoError(f"messages nested deeper than {MAX_DEPTH}")
    schema = MESSAGES[name]
    out: dict[str, Any] = {}
    for number, wire, value in fields(buf):
        field = schema.get(number)
        if field is None:
            if is_empty(wire, value):
                continue
            raise NoSchema(f"field {number} of {name} is set and the simulator has no schema for it")
        key, type_, flags = field
        decoded = _value(type_, wire, value, depth, where=f"{name}.{key}")
        if flags & REPEATED:
            out.setdefault(key, []).append(decoded)
        elif type_ in ("ss", "sb", "sq"):
            out.setdefault(key, {}).update(decoded)
        else:
            out[key] = decoded
        if not flags & (KEEP | REPEATED) and _zero(out[key]):
            del out[key]
    return out


def _zero(value: Any) -> bool:
    return value is None or value in ("", 0, False, {}, [])


def _value(type_: str, wire: int, value: int | bytes, depth: int, *, where: str) -> Any:
    if type_ in _SCALARS:
        return _scalar(type_, wire, value, where=where)
    if not isinstance(value, bytes) or wire != LEN:
        raise ProtoError(f"{where}: expected a length-delimited field")
    if type_ in ("ss", "sb", "sq"):
        return _map_entry(type_, value, where=where)
    if type_ == "q":
        return _quantity(value, where=where)
    if type_ == "t":
        return _time(value, where=where)
    if type_ == "ios":
        return _int_or_string(value, where=where)
    return decode_message(value, type_, depth + 1)


def _scalar(type_: str, wire: int, value: int | bytes, *, where: str) -> Any:
    if type_ in ("i", "?"):
        if wire != VARINT or not isinstance(value, int):
            raise ProtoError(f"{where}: expected a varint")
        return signed(value) if type_ == "i" else bool(value)
    if wire != LEN or not isinstance(value, bytes):
        raise ProtoError(f"{where}: expected a length-delimited field")
    return utf8(value) if type_ == "s" else base64.b64encode(value).decode()


def _map_entry(type_: str, buf: bytes, *, where: str) -> dict[str, Any]:
    key, val = "", b""
    for number, wire, value in fields(buf):
        if wire != LEN or not isinstance(value, bytes):
            raise ProtoError(f"{where}: a map entry field is not length-delimited")
        if number == 1:
            key = utf8(value)
        elif number == 2:
            val = value
    if type_ == "ss":
        return {key: utf8(val)}
    if type_ == "sb":
        return {key: base64.b64encode(val).decode()}
    return {key: _quantity(val, where=where)}


def _quantity(buf: bytes, *, where: str) -> str:
    strings = [v for n, w, v in fields(buf) if n == 1 and w == LEN and isinstance(v, bytes)]
    if not strings:
        raise ProtoError(f"{where}: a Quantity without its string")
    return utf8(strings[-1])


def _time(buf: bytes, *, where: str) -> str | None:
    seconds = nanos = 0
    for number, wire, value in fields(buf):
        if wire != VARINT or not isinstance(value, int):
            raise ProtoError(f"{where}: a Timestamp field is not a varint")
        if number == 1:
            seconds = signed(value)
        elif number == 2:
            nanos = signed(value)
    if seconds == 0 and nanos == 0:
        return None  # metav1.Time's zero value marshals as an empty message; JSON says null
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        raise ProtoError(f"{where}: a Timestamp out of range") from None


def _int_or_string(buf: bytes, *, where: str) -> int | str:
    kind, int_val, str_val = 0, 0, ""
    for number, wire, value in fields(buf):
        if number in (1, 2) and wire == VARINT and isinstance(value, int):
            kind, int_val = (value, int_val) if number == 1 else (kind, signed(value))
        elif number == 3 and wire == LEN and isinstance(value, bytes):
            str_val = utf8(value)
    if kind not in (0, 1):
        raise ProtoError(f"{where}: IntOrString of unknown type {kind}")
    return int_val if kind == 0 else str_val
