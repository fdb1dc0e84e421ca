"""Protobuf request bodies (kubectl's typed clients): decoding, and what the server answers."""

from __future__ import annotations

import base64

import pytest

from kubesim.protobody import NoSchema, decode_object
from kubesim.protowire import MAGIC, ProtoError
from tests.kubesim.client import Api

PROTOBUF = "application/vnd.kubernetes.protobuf"

# `kubectl create namespace foo2` (kubectl v1.37.1, -v=8 request body dump): every
# non-pointer field is written, empty strings and the zero Time included.
KUBECTL_NAMESPACE = bytes.fromhex(
    "6b3873000a0f0a02763112094e616d657370616365121c0a140a04666f6f3212001a0022002a00320038004200"
    "12001a020a001a002200"
)


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = field(1, api_version.encode()) + field(2, kind.encode())
    return MAGIC + field(1, type_meta) + field(2, raw) + field(3, b"") + field(4, b"")


def entry(key: str, value: bytes) -> bytes:
    return field(1, key.encode()) + field(2, value)


def meta(name: str, **labels: str) -> bytes:
    return (
        field(1, name.encode())
        + field(2, b"")
        + field(8, b"")
        + b"".join(field(11, entry(k, v.encode())) for k, v in labels.items())
    )


def test_kubectls_namespace_body_decodes_to_what_its_json_would_say() -> None:
    assert decode_object(KUBECTL_NAMESPACE) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "foo2"},
    }


def test_pointer_fields_keep_zero_and_negative_values_and_maps_bytes_and_int_or_string_decode() -> None:
    container = field(1, b"c") + field(2, b"nginx") + field(8, b"")
    template = field(1, meta("", app="w")) + field(2, field(2, container))
    rolling = field(1, field(1, 0) + field(2, 25)) + field(2, field(1, 1) + field(3, b"50%"))
    spec = (
        field(1, 0)  # replicas: 0 is meaningful (a pointer in Go)
        + field(2, field(1, entry("app", b"w")))
        + field(3, template)
        + field(4, field(1, b"RollingUpdate") + field(2, rolling))
        + field(5, 0)  # minReadySeconds 0: omitted, as JSON's omitempty does
        + field(6, -1)  # revisionHistoryLimit, a 10-byte two's complement varint
    )
    status = field(1, 0) + field(2, 0)  # all zeros: ignored
    got = decode_object(
        envelope("apps/v1", "Deployment", field(1, meta("w")) + field(2, spec) + field(3, status))
    )
    assert got["spec"] == {
        "replicas": 0,
        "selector": {"matchLabels": {"app": "w"}},
        "template": {
            "metadata": {"labels": {"app": "w"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        },
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 25, "maxSurge": "50%"}},
        "revisionHistoryLimit": -1,
    }
    assert "status" not in got
    secret = decode_object(
        envelope(
            "v1", "Secret", field(1, meta("s")) + field(2, entry("k", b"\x00\xff")) + field(3, b"Opaque")
        )
    )
    assert secret["data"] == {"k": base64.b64encode(b"\x00\xff").decode()} and secret["type"] == "Opaque"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        MAGIC + b"\x0a\xff",  # a length past the end
        MAGIC + b"\x0a",  # a truncated varint
        MAGIC + b"\x0f",  # wire type 7
        envelope("v1", "ConfigMap", field(1, field(1, b"\xff\xfe"))),  # a name that is not UTF-8
        envelope("v1", "ConfigMap", field(1, b"x")),  # metadata is a varint-tagged garbage message
    ],
)
def test_malformed_protobuf_is_a_proto_error(body: bytes) -> None:
    with pytest.raises(ProtoError):
        decode_object(body)


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    spec = field(1, b"")
    for _ in range(200):
        spec = field(2, field(3, field(2, spec)))
    with pytest.raises(ProtoError):
        decode_object(envelope("apps/v1", "Deployment", field(2, spec)))


def test_a_set_field_without_a_schema_is_refused_not_dropped() -> None:
    with pytest.raises(NoSchema, match="field 40 of PodSpec"):
        decode_object(envelope("v1", "Pod", field(2, field(40, field(1, b"x")))))
    with pytest.raises(NoSchema, match="Lease"):
        decode_object(envelope("coordination.k8s.io/v1", "Lease", field(1, meta("l"))))


def test_a_protobuf_create_of_a_built_in_kind_is_served(api: Api, ns: str) -> None:
    body = envelope("v1", "ConfigMap", field(1, meta("pb")) + field(2, entry("a", b"b")))
    created = api.must(api.post(f"/api/v1/namespaces/{ns}/configmaps", body, content_type=PROTOBUF), 201)
    assert created["data"] == {"a": "b"} and created["metadata"]["namespace"] == ns


def test_unsupported_bodies_get_the_apiservers_415_for_their_resource(api: Api, ns: str) -> None:
    cm = api.post(f"/api/v1/namespaces/{ns}/configmaps", b"x", content_type="text/plain")
    assert cm.status == 415 and cm.json["reason"] == "UnsupportedMediaType"
    assert cm.json["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml, application/vnd.kubernetes.protobuf"
    )
    mg = envelope("kubedb.com/v1", "MongoDB", field(1, meta("m")))
    cr = api.post(f"/apis/kubedb.com/v1/namespaces/{ns}/mongodbs", mg, content_type=PROTOBUF)
    assert cr.status == 415
    assert cr.json["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml"
    )


def test_a_protobuf_body_the_simulator_cannot_read_is_answered_not_guessed(api: Api, ns: str) -> None:
    if not api.is_sim:
        pytest.skip("a real apiserver reads every built-in kind's protobuf")
    garbage = api.post(f"/api/v1/namespaces/{ns}/configmaps", MAGIC + b"\x0a\xff", content_type=PROTOBUF)
    assert garbage.status == 400 and "not valid protobuf" in garbage.json["message"]
    lease = envelope("coordination.k8s.io/v1", "Lease", field(1, meta("l")))
    unread = api.post(f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases", lease, content_type=PROTOBUF)
    assert unread.status == 415 and "no protobuf schema for Lease" in unread.json["message"]
