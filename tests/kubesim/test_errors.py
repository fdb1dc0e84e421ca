"""Status codes and bodies (kubesim/README.md, "Status errors", with selector errors from
"Selectors" and auth from "Authentication and authorization")."""

from __future__ import annotations

import pytest

from kubesim import AdminClient
from tests.kubesim.client import Api

STATUS_KEYS = ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"]


def test_missing_or_unknown_credentials_are_401_unauthorized(api: Api, ns: str) -> None:
    for token in (None, "not-a-token"):
        anon = Api(api.server, token=token, ssl_context=api.ssl_context)
        resp = anon.get(f"/api/v1/namespaces/{ns}/configmaps")
        if token is None and not api.is_sim and resp.status == 403:
            continue  # real clusters usually allow anonymous requests, then deny them
        assert resp.status == 401
        body = resp.json
        assert body == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        }


def test_a_denied_request_is_403_with_the_authorizers_message(api: Api, ns: str, knobs: AdminClient) -> None:
    cfg = knobs.config()
    user = "system:serviceaccount:mon:exporter"
    knobs.config(
        tokens=[*cfg["tokens"], ["exporter-token", user]],
        rules=[
            *cfg["rules"],
            {"user": user, "verbs": ["get", "list"], "resources": ["configmaps"], "namespaces": [ns]},
        ],
    )
    exporter = Api(api.server, token="exporter-token", ssl_context=api.ssl_context)
    assert exporter.get(f"/api/v1/namespaces/{ns}/configmaps").status == 200
    scope = 'in API group "" at the cluster scope'
    cases = [
        (
            "/api/v1/pods",
            {"watch": "1"},
            f'pods is forbidden: User "{user}" cannot watch resource "pods" {scope}',
        ),
        (
            "/api/v1/configmaps",
            {},
            f'configmaps is forbidden: User "{user}" cannot list resource "configmaps" {scope}',
        ),
        (
            "/apis/apps/v1/namespaces/x/deployments/web",
            {},
            f'deployments.apps "web" is forbidden: User "{user}" cannot get resource "deployments" '
            'in API group "apps" in the namespace "x"',
        ),
    ]
    for path, params, message in cases:
        resp = exporter.request("GET", path, params=params)
        assert resp.status == 403
        body = resp.json
        assert body["reason"] == "Forbidden" and body["message"] == message
        assert body["details"]["kind"] in ("pods", "configmaps", "deployments")
        assert resp.headers.get("x-content-type-options") == "nosniff"


def test_a_missing_object_is_404_not_found_with_details(api: Api, ns: str) -> None:
    resp = api.get(f"/api/v1/namespaces/{ns}/pods/foo")
    assert resp.status == 404
    assert resp.json == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "foo" not found',
        "reason": "NotFound",
        "details": {"name": "foo", "kind": "pods"},
        "code": 404,
    }
    assert list(resp.json) == STATUS_KEYS


def test_a_missing_object_of_a_named_group_names_the_group(api: Api, ns: str) -> None:
    body = api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web").json
    assert body["message"] == 'deployments.apps "web" not found'
    assert body["details"] == {"name": "web", "group": "apps", "kind": "deployments"}


def test_a_path_outside_any_group_is_plain_text_404(api: Api) -> None:
    for path in ("/nope", "/apis/nope.example.com/v1/things", "/api/v7/pods"):
        resp = api.get(path)
        assert resp.status == 404
        assert resp.headers["content-type"].startswith("text/plain")
        assert resp.text == "404 page not found\n"


def test_an_unknown_resource_in_a_served_group_is_a_404_status(api: Api) -> None:
    resp = api.get("/api/v1/frobnicators")
    assert resp.status == 404
    assert resp.json["reason"] == "NotFound"


def test_a_cluster_scoped_resource_under_a_namespace_is_404(api: Api, ns: str) -> None:
    assert api.get(f"/api/v1/namespaces/{ns}/nodes").status == 404


def test_creating_an_existing_object_is_409_already_exists(api: Api, ns: str) -> None:
    api.configmap(ns, "a")
    resp = api.post(
        f"/api/v1/namespaces/{ns}/configmaps",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}},
    )
    assert resp.status == 409
    assert resp.json["reason"] == "AlreadyExists" and resp.json["message"] == 'configmaps "a" already exists'


def test_an_update_with_a_stale_resource_version_is_409_conflict(api: Api, ns: str) -> None:
    old = api.configmap(ns, "a")
    api.set_labels(ns, "a", {"x": "1"})
    resp = api.put(f"/api/v1/namespaces/{ns}/configmaps/a", old)
    assert resp.status == 409 and resp.json["reason"] == "Conflict"


def test_a_bad_label_selector_is_400(api: Api, ns: str) -> None:
    resp = api.get(f"/api/v1/namespaces/{ns}/configmaps", labelSelector="a in (b")
    assert resp.status == 400 and resp.json["reason"] == "BadRequest"


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        ("pods", "field label not supported: spec.foo"),
        (
            "configmaps",
            '"spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace"',
        ),
    ],
)
def test_an_unsupported_field_selector_is_400(api: Api, ns: str, resource: str, message: str) -> None:
    resp = api.get(f"/api/v1/namespaces/{ns}/{resource}", fieldSelector="spec.foo=bar")
    assert resp.status == 400
    assert resp.json["message"] == message


def test_supported_pod_field_selectors_filter(api: Api, ns: str) -> None:
    body = api.must(
        api.get(f"/api/v1/namespaces/{ns}/pods", fieldSelector="spec.nodeName=n1,status.phase!=Failed"), 200
    )
    assert body["items"] == []


@pytest.mark.parametrize("agent", ["curl/8.5.0", "Wget/1.21", "Mozilla/5.0 (X11)"])
def test_error_bodies_are_pretty_printed_for_curl_like_agents(api: Api, agent: str) -> None:
    resp = api.request("GET", "/api/v1/namespaces/default/pods/nope", headers={"User-Agent": agent})
    assert resp.status == 404
    assert resp.body.startswith(b"{\n  ") and resp.json["reason"] == "NotFound"


def test_pretty_true_pretty_prints_and_other_agents_get_compact_json(api: Api) -> None:
    pretty = api.request("GET", "/api/v1/namespaces/default/pods/nope", params={"pretty": "true"})
    assert pretty.body.startswith(b"{\n")
    compact = api.get("/api/v1/namespaces/default/pods/nope")
    assert b"\n" not in compact.body.rstrip(b"\n")


def test_apf_throttling_is_plain_text_429_with_retry_after(api: Api, ns: str, knobs: AdminClient) -> None:
    knobs.throttle(1, form="text", retry_after=3)
    resp = api.get(f"/api/v1/namespaces/{ns}/configmaps")
    assert resp.status == 429
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.text == "Too many requests, please try again later.\n"
    assert resp.headers["retry-after"] == "3"
    assert api.get(f"/api/v1/namespaces/{ns}/configmaps").status == 200, "the fault was for one request"


def test_an_unready_watch_cache_is_a_429_status_with_retry_after(
    api: Api, ns: str, knobs: AdminClient
) -> None:
    knobs.throttle(1, form="json", retry_after=1, verbs=["watch"])
    assert api.get(f"/api/v1/namespaces/{ns}/configmaps").status == 200, "lists are not throttled"
    resp = api.request("GET", f"/api/v1/namespaces/{ns}/configmaps", params={"watch": "1"})
    assert resp.status == 429
    assert resp.json["reason"] == "TooManyRequests" and resp.json["details"]["retryAfterSeconds"] == 1
    assert resp.headers["retry-after"] == "1"


def test_a_starting_server_answers_503_with_retry_after_5(api: Api, ns: str, knobs: AdminClient) -> None:
    knobs.make_unavailable(count=2)
    for _ in range(2):
        resp = api.get(f"/api/v1/namespaces/{ns}/configmaps")
        assert resp.status == 503
        assert resp.json["reason"] == "ServiceUnavailable" and resp.json["details"]["retryAfterSeconds"] == 5
        assert resp.headers["retry-after"] == "5"
    assert api.get(f"/api/v1/namespaces/{ns}/configmaps").status == 200


def test_an_unparsable_shard_selector_is_an_error_when_sharding_is_on(
    api: Api, ns: str, knobs: AdminClient
) -> None:
    knobs.config(sharding=True)
    resp = api.get(f"/api/v1/namespaces/{ns}/configmaps", shardSelector="shardRange(nope)")
    assert resp.status == 500
    assert resp.json["message"].startswith("invalid shard selector")
    knobs.config(shard_selector_error_code=400)
    assert api.get(f"/api/v1/namespaces/{ns}/configmaps", shardSelector="shardRange(nope)").status == 400
