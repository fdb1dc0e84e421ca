"""Protobuf wire format, read-only: the fields of a message, and the Kubernetes envelope.

kubectl's typed clients (client-go's generated clientset, built with
`--prefers-protobuf`, see client-go `gentype/type.go` and `rest/request.go`
`UseProtobufAsDefault`) post built-in kinds as `application/vnd.kubernetes.protobuf`
whatever the server supports; client-go falls back to JSON after a 415 only for
CBOR (`rest/client.go` `UnsupportedMediaType`). So the simulator reads protobuf
request bodies. The envelope is apimachinery's `runtime/serializer/protobuf`:
the 4 bytes `k8s\\0`, then a `runtime.Unknown` message {typeMeta {apiVersion,
kind}, raw, contentEncoding, contentType} whose `raw` is the object's message.

Hand-written rather than the `protobuf` package: reading needs ~80 lines and no
generated classes (no Python classes for k8s.io/api are published; the package
would need protoc output for every kind plus its runtime, 2.7 MB installed); the
message schemas are in `protoschema`. No speed claim: request bodies are small. Every error is a
`ProtoError` (the caller answers 400): the body is hostile input.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

MAGIC = b"k8s\x00"
MAX_DEPTH = 64
"""Nested messages deeper than this are refused (a Pod is about 10 deep)."""

VARINT, I64, LEN, I32 = 0, 1, 2, 5


class ProtoError(ValueError):
    """The body is not a well-formed protobuf message (the message says where)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    api_version: str
    kind: str
    raw: bytes


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtoError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 64:
            raise ProtoError("varint longer than 10 bytes")


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value): an int for VARINT, bytes for the others."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtoError("field number 0")
        if wire == VARINT:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == LEN:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ProtoError(f"field {number}: length {size} past the end of the message")
            yield number, wire, buf[pos : pos + size]
            pos += size
        elif wire in (I64, I32):
            size = 8 if wire == I64 else 4
            if pos + size > len(buf):
                raise ProtoError(f"field {number}: truncated fixed-width value")
            yield number, wire, buf[pos : pos + size]
            pos += size
        else:
            raise ProtoError(f"field {number}: unsupported wire type {wire}")


def signed(value: int) -> int:
    """A varint read as Go's int32/int64 (negative numbers are 10-byte two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def is_empty(wire: int, value: int | bytes, depth: int = 0) -> bool:
    """True when a field carries only zero values (Go's generated marshalling writes
    every non-pointer field, so an unset string is `12 00` and an unset struct is a
    message of zeros): such a field says nothing JSON's omitempty would not drop."""
    if wire == VARINT:
        return value == 0
    if wire != LEN or not isinstance(value, bytes) or depth > MAX_DEPTH:
        return False
    if not value:
        return True
    try:
        return all(is_empty(w, v, depth + 1) for _, w, v in fields(value))
    except ProtoError:
        return False


def utf8(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError as e:
        raise ProtoError(f"a string is not valid UTF-8: {e.reason}") from None


def envelope(body: bytes) -> Envelope:
    """The `runtime.Unknown` inside `k8s\\0`: apiVersion, kind and the object's bytes."""
    if not body.startswith(MAGIC):
        raise ProtoError("the body does not start with the protobuf envelope prefix k8s\\x00")
    api_version = kind = ""
    raw = b""
    for number, wire, value in fields(body[len(MAGIC) :]):
        if number == 1 and wire == LEN and isinstance(value, bytes):
            for n, w, v in fields(value):
                if w == LEN and isinstance(v, bytes) and n in (1, 2):
                    text = utf8(v)
                    api_version, kind = (text, kind) if n == 1 else (api_version, text)
        elif number == 2 and wire == LEN and isinstance(value, bytes):
            raw = value
        elif number == 3 and value:
            raise ProtoError("compressed (contentEncoding) protobuf bodies are not supported")
    return Envelope(api_version, kind, raw)
