"""LIST contract (kubesim/README.md, "LIST and paging"): every row of the RV × RVM × paging table,
the validation 422s, pagination, continue tokens, 410s, 504 and compression."""

from __future__ import annotations

import base64
import json

import pytest

from kubesim import AdminClient
from tests.kubesim.client import Api


def cms(api: Api, ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/configmaps"


def names(body: dict[str, object]) -> list[str]:
    return [i["metadata"]["name"] for i in body["items"]]  # type: ignore[attr-defined]


@pytest.fixture
def five(api: Api, ns: str) -> tuple[str, int]:
    """Five configmaps cm-0..cm-4 (team a, b, a, b, a); returns (namespace, RV after)."""
    for i in range(5):
        api.configmap(ns, f"cm-{i}", labels={"team": "ab"[i % 2]}, data={"i": str(i)})
    return ns, api.rv_now(ns)


def history(api: Api, ns: str) -> None:
    """After the snapshot: cm-0 relabelled, cm-1 deleted, cm-5 created."""
    api.set_labels(ns, "cm-0", {"team": "z"})
    api.must(api.delete(f"{cms(api, ns)}/cm-1"), 200)
    api.configmap(ns, "cm-5")


def test_unset_rv_without_limit_lists_the_most_recent_state(api: Api, five: tuple[str, int]) -> None:
    ns, rv = five
    created = api.configmap(ns, "late")
    body = api.must(api.get(cms(api, ns)), 200)
    assert "late" in names(body)
    assert int(body["metadata"]["resourceVersion"]) >= int(created["metadata"]["resourceVersion"]) > rv
    assert "continue" not in body["metadata"]


def test_rv_zero_without_limit_lists_any_state(api: Api, five: tuple[str, int]) -> None:
    ns, _ = five
    body = api.must(api.get(cms(api, ns), resourceVersion="0"), 200)
    assert set(names(body)) >= {f"cm-{i}" for i in range(5)}


def test_rv_n_without_limit_lists_a_state_not_older_than_n(api: Api, five: tuple[str, int]) -> None:
    ns, rv = five
    history(api, ns)
    body = api.must(api.get(cms(api, ns), resourceVersion=str(rv)), 200)
    assert int(body["metadata"]["resourceVersion"]) >= rv
    assert "cm-5" in names(body) and "cm-1" not in names(body)


def test_limit_with_unset_rv_pages_the_most_recent_state(api: Api, five: tuple[str, int]) -> None:
    ns, _ = five
    first = api.must(api.get(cms(api, ns), limit=2), 200)
    assert names(first) == ["cm-0", "cm-1"]
    assert first["metadata"]["continue"]
    assert first["metadata"]["remainingItemCount"] == 3
    second = api.must(api.get(cms(api, ns), limit=2, **{"continue": first["metadata"]["continue"]}), 200)
    assert names(second) == ["cm-2", "cm-3"]
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert second["metadata"]["remainingItemCount"] == 1
    third = api.must(api.get(cms(api, ns), limit=2, **{"continue": second["metadata"]["continue"]}), 200)
    assert names(third) == ["cm-4"]
    assert not third["metadata"].get("continue") and "remainingItemCount" not in third["metadata"]


def test_rv_zero_with_limit_ignores_the_limit_like_the_watch_cache(api: Api, five: tuple[str, int]) -> None:
    ns, _ = five
    body = api.must(api.get(cms(api, ns), limit=2, resourceVersion="0"), 200)
    assert len(body["items"]) == 5
    assert not body["metadata"].get("continue")


def test_rv_zero_with_limit_is_honoured_in_etcd_mode(
    api: Api, five: tuple[str, int], knobs: AdminClient
) -> None:
    ns, _ = five
    knobs.config(rv0_honours_limit=True)
    body = api.must(api.get(cms(api, ns), limit=2, resourceVersion="0"), 200)
    assert len(body["items"]) == 2 and body["metadata"]["continue"]


def test_rv_n_with_limit_lists_exactly_at_n_legacy(api: Api, five: tuple[str, int]) -> None:
    ns, rv = five
    history(api, ns)
    body = api.must(api.get(cms(api, ns), limit=10, resourceVersion=str(rv)), 200)
    assert body["metadata"]["resourceVersion"] == str(rv)
    assert names(body) == [f"cm-{i}" for i in range(5)]
    assert body["items"][0]["metadata"]["labels"] == {"team": "a"}


@pytest.mark.parametrize("rv_param", [None, "0"], ids=["rv-unset", "rv-zero"])
def test_continue_pins_the_first_pages_revision_exactly(
    api: Api, five: tuple[str, int], rv_param: str | None
) -> None:
    ns, _ = five
    first = api.must(api.get(cms(api, ns), limit=2), 200)
    api.must(api.delete(f"{cms(api, ns)}/cm-3"), 200)
    api.configmap(ns, "cm-2a")
    params = {"limit": 10, "continue": first["metadata"]["continue"], "resourceVersion": rv_param}
    rest = api.must(api.request("GET", cms(api, ns), params=params), 200)
    assert rest["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert names(rest) == ["cm-2", "cm-3", "cm-4"]


def test_continue_with_a_nonzero_rv_is_400(api: Api, five: tuple[str, int]) -> None:
    ns, rv = five
    first = api.must(api.get(cms(api, ns), limit=2), 200)
    resp = api.get(
        cms(api, ns), limit=2, resourceVersion=str(rv), **{"continue": first["metadata"]["continue"]}
    )
    assert resp.status == 400
    assert resp.json["reason"] == "BadRequest"
    assert "specifying resource version is not allowed when using continue" in resp.json["message"]


def test_exact_match_lists_at_n_without_limit(api: Api, five: tuple[str, int]) -> None:
    ns, rv = five
    history(api, ns)
    body = api.must(api.get(cms(api, ns), resourceVersion=str(rv), resourceVersionMatch="Exact"), 200)
    assert body["metadata"]["resourceVersion"] == str(rv)
    assert names(body) == [f"cm-{i}" for i in range(5)]


def test_not_older_than_zero_lists_any_state(api: Api, five: tuple[str, int]) -> None:
    ns, _ = five
    body = api.must(api.get(cms(api, ns), resourceVersion="0", resourceVersionMatch="NotOlderThan"), 200)
    assert len(body["items"]) == 5


def test_not_older_than_n_lists_a_newer_state(api: Api, five: tuple[str, int]) -> None:
    ns, rv = five
    history(api, ns)
    body = api.must(api.get(cms(api, ns), resourceVersion=str(rv), resourceVersionMatch="NotOlderThan"), 200)
    assert int(body["metadata"]["resourceVersion"]) > rv and "cm-5" in names(body)


INVALID = [
    (
        {"resourceVersionMatch": "Exact"},
        "resourceVersionMatch is forbidden unless resourceVersion is provided",
    ),
    ({"resourceVersionMatch": "Exact", "resourceVersion": "0"}, 'resourceVersionMatch "exact" is forbidden'),
    ({"resourceVersionMatch": "NotOlderThan"}, "resourceVersionMatch is forbidden unless resourceVersion"),
    ({"resourceVersionMatch": "Sometime", "resourceVersion": "5"}, 'Unsupported value: "Sometime"'),
    ({"sendInitialEvents": "true"}, "sendInitialEvents is forbidden for list"),
]


@pytest.mark.parametrize(
    ("params", "message"),
    INVALID,
    ids=["exact-unset", "exact-zero", "not-older-unset", "unknown-rvm", "send-initial"],
)
def test_invalid_list_options_are_422_with_causes(
    api: Api, ns: str, params: dict[str, str], message: str
) -> None:
    resp = api.get(cms(api, ns), **params)
    assert resp.status == 422
    body = resp.json
    assert body["kind"] == "Status" and body["reason"] == "Invalid" and body["code"] == 422
    assert body["details"]["kind"] == "ListOptions" and body["details"]["group"] == "meta.k8s.io"
    assert message in body["message"]
    assert body["message"].startswith('ListOptions.meta.k8s.io "" is invalid: ')
    assert body["details"]["causes"] and body["details"]["causes"][0]["field"] in (
        "resourceVersionMatch",
        "sendInitialEvents",
    )


def test_the_422_message_matches_the_apiserver_wording(api: Api, ns: str) -> None:
    body = api.get(cms(api, ns), resourceVersionMatch="Exact").json
    assert body["message"] == (
        'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
        "resourceVersionMatch is forbidden unless resourceVersion is provided"
    )
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueForbidden",
            "message": "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
            "field": "resourceVersionMatch",
        }
    ]


@pytest.mark.parametrize("match", ["Exact", "NotOlderThan"])
@pytest.mark.parametrize("rv", [None, "0", "N"], ids=["rv-unset", "rv-zero", "rv-n"])
def test_any_rv_match_together_with_continue_is_422(
    api: Api, five: tuple[str, int], match: str, rv: str | None
) -> None:
    ns, now = five
    token = api.must(api.get(cms(api, ns), limit=2), 200)["metadata"]["continue"]
    params = {
        "limit": 2,
        "continue": token,
        "resourceVersionMatch": match,
        "resourceVersion": str(now) if rv == "N" else rv,
    }
    resp = api.request("GET", cms(api, ns), params=params)
    assert resp.status == 422
    assert "resourceVersionMatch is forbidden when continue is provided" in resp.json["message"]


def test_the_continue_token_is_the_apiservers_encoding(api: Api, five: tuple[str, int]) -> None:
    ns, _ = five
    body = api.must(api.get(cms(api, ns), limit=2), 200)
    token = body["metadata"]["continue"]
    assert "=" not in token
    decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert decoded == {
        "v": "meta.k8s.io/v1",
        "rv": int(body["metadata"]["resourceVersion"]),
        "start": "cm-1\u0000",
    }


def test_a_malformed_continue_token_is_400(api: Api, ns: str) -> None:
    resp = api.get(cms(api, ns), limit=2, **{"continue": "not-a-token"})
    assert resp.status == 400
    assert resp.json["message"].startswith("invalid continue token")


def test_items_are_ordered_by_namespace_then_name(api: Api, ns: str) -> None:
    for name in ("b", "a", "c-1", "c"):
        api.configmap(ns, name)
    assert names(api.must(api.get(cms(api, ns)), 200)) == ["a", "b", "c", "c-1"]


def test_built_in_list_items_carry_no_kind_but_the_list_does(api: Api, five: tuple[str, int]) -> None:
    ns, _ = five
    body = api.must(api.get(cms(api, ns)), 200)
    assert body["kind"] == "ConfigMapList" and body["apiVersion"] == "v1"
    assert all("kind" not in i and "apiVersion" not in i for i in body["items"])


def test_a_list_in_a_missing_namespace_is_empty_not_404(api: Api) -> None:
    body = api.must(api.get("/api/v1/namespaces/no-such-namespace-here/configmaps"), 200)
    assert body["items"] == []


def test_remaining_item_count_is_omitted_with_a_selector(api: Api, five: tuple[str, int]) -> None:
    ns, _ = five
    body = api.must(api.get(cms(api, ns), limit=1, labelSelector="team=a"), 200)
    assert names(body) == ["cm-0"] and body["metadata"]["continue"]
    assert "remainingItemCount" not in body["metadata"]


def test_selector_filtering_can_leave_a_page_empty_with_a_continue(
    api: Api, ns: str, knobs: AdminClient
) -> None:
    for i in range(6):
        api.configmap(ns, f"cm-{i}", labels={"team": "a" if i == 5 else "b"})
    knobs.config(fill_pages=False)
    first = api.must(api.get(cms(api, ns), limit=2, labelSelector="team=a"), 200)
    assert first["items"] == [] and first["metadata"]["continue"]
    seen: list[str] = []
    token = first["metadata"]["continue"]
    while token:
        page = api.must(api.get(cms(api, ns), limit=2, labelSelector="team=a", **{"continue": token}), 200)
        seen += names(page)
        token = page["metadata"].get("continue")
    assert seen == ["cm-5"]


def test_an_expired_continue_token_is_410_with_an_inconsistent_continue(
    api: Api, five: tuple[str, int], knobs: AdminClient
) -> None:
    ns, _ = five
    first = api.must(api.get(cms(api, ns), limit=2), 200)
    api.configmap(ns, "cm-9")
    knobs.compact()
    resp = api.get(cms(api, ns), limit=2, **{"continue": first["metadata"]["continue"]})
    assert resp.status == 410
    body = resp.json
    assert body["reason"] == "Expired" and body["code"] == 410
    assert body["message"].startswith(
        "The provided continue parameter is too old to display a consistent list result."
    )
    token = body["metadata"]["continue"]
    decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert decoded["rv"] == -1
    rest = api.must(api.get(cms(api, ns), limit=10, **{"continue": token}), 200)
    assert names(rest) == ["cm-2", "cm-3", "cm-4", "cm-9"]


def test_an_exact_list_at_a_compacted_rv_is_410(api: Api, five: tuple[str, int], knobs: AdminClient) -> None:
    ns, rv = five
    api.configmap(ns, "later")
    knobs.compact()
    for params in (
        {"resourceVersion": str(rv), "resourceVersionMatch": "Exact"},
        {"resourceVersion": str(rv), "limit": 2},
    ):
        resp = api.get(cms(api, ns), **params)
        assert resp.status == 410
        assert resp.json["reason"] == "Expired"
        assert resp.json["message"] == "The resourceVersion for the provided list is too old."


@pytest.mark.parametrize("match", [None, "NotOlderThan", "Exact"])
def test_a_resource_version_ahead_of_the_server_is_504_after_waiting(
    api: Api, ns: str, match: str | None
) -> None:
    ahead = api.rv_now(ns) + 1_000_000
    resp = api.request(
        "GET", cms(api, ns), params={"resourceVersion": str(ahead), "resourceVersionMatch": match}
    )
    assert resp.status == 504
    body = resp.json
    assert body["reason"] == "Timeout"
    assert body["message"].startswith(f"Timeout: Too large resource version: {ahead}, current: ")
    assert body["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
    assert body["details"]["retryAfterSeconds"] == 1
    assert resp.headers["retry-after"] == "1"


def test_an_unparsable_rv_on_list_is_an_error_status(api: Api, ns: str) -> None:
    resp = api.get(cms(api, ns), resourceVersion="abc")
    assert resp.status >= 400
    assert resp.json["kind"] == "Status"


def test_lists_over_128_kib_are_gzipped_when_asked(api: Api, ns: str) -> None:
    for i in range(70):
        api.configmap(ns, f"big-{i:02d}", data={"blob": "x" * 2048})
    plain = api.request("GET", cms(api, ns), headers={"Accept-Encoding": "identity"})
    assert plain.status == 200 and "content-encoding" not in plain.headers
    zipped = api.request("GET", cms(api, ns), headers={"Accept-Encoding": "gzip"})
    assert zipped.headers.get("content-encoding") == "gzip"
    assert len(zipped.body) < len(plain.body)
    assert names(zipped.json) == names(plain.json)
    small = api.request("GET", cms(api, ns), params={"limit": 1}, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers


def test_gzip_can_be_switched_off(api: Api, ns: str, knobs: AdminClient) -> None:
    for i in range(70):
        api.configmap(ns, f"big-{i:02d}", data={"blob": "x" * 2048})
    knobs.config(gzip=False)
    resp = api.request("GET", cms(api, ns), headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in resp.headers


def test_unknown_query_parameters_and_timeout_are_ignored(api: Api, five: tuple[str, int]) -> None:
    ns, _ = five
    body = api.must(api.get(cms(api, ns), timeout="32s", frobnicate="yes", shardSelector="nonsense"), 200)
    assert len(body["items"]) == 5
    assert "shardInfo" not in body["metadata"]


def test_lists_over_a_mebibyte_stream_intact_plain_and_gzipped(api: Api, ns: str) -> None:
    for i in range(300):
        api.configmap(ns, f"big-{i:03d}", data={"blob": f"{i}-" + "y" * 4096})
    plain = api.request("GET", cms(api, ns), headers={"Accept-Encoding": "identity"})
    assert len(plain.body) > 1 << 20
    body = plain.json
    assert names(body) == [f"big-{i:03d}" for i in range(300)]
    zipped = api.request("GET", cms(api, ns), headers={"Accept-Encoding": "gzip"})
    assert zipped.headers.get("content-encoding") == "gzip"
    assert zipped.json == body
    again = api.request("GET", cms(api, ns), headers={"Accept-Encoding": "gzip"})
    assert again.json == body, "the same snapshot again (served from the gzip cache on the simulator)"
