"""WATCH contract (kubesim/README.md, "Watch"): wire format, RV semantics, selector
transitions, bookmarks, in-band 410, timeouts, single-object watches."""

from __future__ import annotations

import time

import pytest

from kubesim import AdminClient
from tests.kubesim.client import Api


def cms(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/configmaps"


def test_headers_arrive_before_any_event_and_frame_json_lines(api: Api, ns: str) -> None:
    rv = api.rv_now(ns)
    started = time.monotonic()
    with api.watching(cms(ns), resourceVersion=str(rv), timeoutSeconds=5) as w:
        assert w.status == 200 and time.monotonic() - started < 2.5
        assert w.headers["content-type"].startswith("application/json")
        assert w.headers["transfer-encoding"] == "chunked"
        api.configmap(ns, "a")
        ev = w.next_of(("ADDED",))
        assert w.lines[-1].endswith(b"}\n") and b"\n" not in w.lines[-1][:-1]
        assert ev["object"]["kind"] == "ConfigMap" and ev["object"]["apiVersion"] == "v1"


def test_a_watch_from_rv_n_sends_only_later_changes(api: Api, ns: str) -> None:
    api.configmap(ns, "a")
    api.configmap(ns, "b")
    rv = api.rv_now(ns)
    modified = api.set_labels(ns, "a", {"x": "1"})
    with api.watching(cms(ns), resourceVersion=str(rv), timeoutSeconds=5) as w:
        ev = w.next_of(("ADDED", "MODIFIED", "DELETED"))
        w.expect_quiet(0.3)
    assert (ev["type"], ev["object"]["metadata"]["name"]) == ("MODIFIED", "a")
    assert ev["object"]["metadata"]["resourceVersion"] == modified["metadata"]["resourceVersion"]


@pytest.mark.parametrize("rv", ["", "0"], ids=["rv-unset", "rv-zero"])
def test_a_watch_from_unset_or_zero_rv_starts_with_synthetic_added_events(api: Api, ns: str, rv: str) -> None:
    a = api.configmap(ns, "a")
    b = api.configmap(ns, "b")
    with api.watching(cms(ns), resourceVersion=rv, timeoutSeconds=3) as w:
        first = [w.next_of(("ADDED",)), w.next_of(("ADDED",))]
        got = {e["object"]["metadata"]["name"]: e["object"]["metadata"]["resourceVersion"] for e in first}
        assert got == {"a": a["metadata"]["resourceVersion"], "b": b["metadata"]["resourceVersion"]}
        api.set_labels(ns, "b", {"x": "1"})
        assert w.next_of(("MODIFIED",))["object"]["metadata"]["name"] == "b"


def test_deleted_events_carry_the_deletion_revision(api: Api, ns: str) -> None:
    created = api.configmap(ns, "a")
    rv = api.rv_now(ns)
    with api.watching(cms(ns), resourceVersion=str(rv), timeoutSeconds=3) as w:
        api.must(api.delete(f"{cms(ns)}/a"), 200)
        ev = w.next_of(("DELETED",))
    assert int(ev["object"]["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert ev["object"]["metadata"]["uid"] == created["metadata"]["uid"]


def test_label_selector_transitions_become_added_and_deleted(api: Api, ns: str) -> None:
    api.configmap(ns, "x", labels={"team": "a"})
    rv = api.rv_now(ns)
    with api.watching(cms(ns), resourceVersion=str(rv), labelSelector="team=a", timeoutSeconds=3) as w:
        out = api.set_labels(ns, "x", {"team": "b"})
        gone = w.next_of(("ADDED", "MODIFIED", "DELETED"))
        assert gone["type"] == "DELETED"
        assert gone["object"]["metadata"]["labels"] == {"team": "a"}, "DELETED carries the previous content"
        assert gone["object"]["metadata"]["resourceVersion"] == out["metadata"]["resourceVersion"], (
            "…with the new RV"
        )
        api.set_labels(ns, "x", {"other": "1"})  # still outside: nothing
        back = api.set_labels(ns, "x", {"team": "a"})
        came = w.next_of(("ADDED", "MODIFIED", "DELETED"))
        assert came["type"] == "ADDED"
        assert came["object"]["metadata"]["resourceVersion"] == back["metadata"]["resourceVersion"]


def test_a_single_object_watch_uses_a_name_field_selector(api: Api, ns: str) -> None:
    api.configmap(ns, "foo")
    api.configmap(ns, "bar")
    rv = api.rv_now(ns)
    with api.watching(
        cms(ns), resourceVersion=str(rv), fieldSelector="metadata.name=foo", timeoutSeconds=5
    ) as w:
        api.set_labels(ns, "bar", {"x": "1"})
        api.set_labels(ns, "foo", {"x": "1"})
        assert w.next_of(("ADDED", "MODIFIED"))["object"]["metadata"]["name"] == "foo"
        w.expect_quiet(0.3)


def test_a_named_legacy_watch_path_with_a_different_name_selector_is_400(api: Api, ns: str) -> None:
    resp = api.get(f"/api/v1/watch/namespaces/{ns}/configmaps/foo", fieldSelector="metadata.name=bar")
    assert resp.status == 400
    assert resp.json["message"] == "fieldSelector metadata.name doesn't match requested name"


@pytest.mark.parametrize("flag", ["1", "t", "T", "true", "TRUE", "True"])
def test_the_watch_flag_parses_like_go_parse_bool(api: Api, ns: str, flag: str) -> None:
    rv = api.rv_now(ns)
    w = api.watch(cms(ns), {"watch": flag, "resourceVersion": str(rv), "timeoutSeconds": "5"})
    w.close()
    assert w.status == 200
    assert w.headers.get("transfer-encoding") == "chunked"


def test_timeout_seconds_ends_the_stream_cleanly(api: Api, ns: str) -> None:
    rv = api.rv_now(ns)
    started = time.monotonic()
    with api.watching(cms(ns), resourceVersion=str(rv), timeoutSeconds=1) as w:
        assert [e for e in w.events(timeout=5) if e["type"] != "BOOKMARK"] == []
    assert 0.9 < time.monotonic() - started < 3


def test_a_watch_from_an_rv_ahead_of_the_server_waits_for_it(api: Api, ns: str) -> None:
    ahead = api.rv_now(ns) + 1_000_000
    with api.watching(cms(ns), resourceVersion=str(ahead), timeoutSeconds=1) as w:
        assert w.status == 200
        api.configmap(ns, "before-n")  # at an RV below N: not sent
        assert [e for e in w.events() if e["type"] != "BOOKMARK"] == []


def test_an_unparsable_rv_on_watch_is_422(api: Api, ns: str) -> None:
    resp = api.get(cms(ns), watch="1", resourceVersion="abc")
    assert resp.status == 422
    assert resp.json["reason"] == "Invalid"
    assert resp.json["details"]["causes"][0]["field"] == "resourceVersion"


def test_a_watch_from_a_compacted_rv_is_an_in_band_410(api: Api, ns: str, knobs: AdminClient) -> None:
    old = api.rv_now(ns)
    api.configmap(ns, "a")
    knobs.compact()
    with api.watching(cms(ns), resourceVersion=str(old), allowWatchBookmarks="true") as w:
        assert w.status == 200, "the error is in-band, not an HTTP 410"
        events = w.events()
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["kind"] == "Status" and status["code"] == 410 and status["reason"] == "Expired"
    assert status["message"].startswith(f"too old resource version: {old} (")


def test_bookmarks_carry_only_the_kind_and_rv_and_advance(api: Api, ns: str, knobs: AdminClient) -> None:
    knobs.config(bookmark_interval=0.1)
    rv = api.rv_now(ns)
    with api.watching(cms(ns), resourceVersion=str(rv), allowWatchBookmarks="true", timeoutSeconds=5) as w:
        first = w.next_of(("BOOKMARK",), timeout=3)
        api.configmap(ns, "a")
        w.next_of(("ADDED",))
        second = w.next_of(("BOOKMARK",), timeout=3)
    for bm in (first, second):
        obj = bm["object"]
        assert obj["kind"] == "ConfigMap" and obj["apiVersion"] == "v1"
        assert set(obj["metadata"]) <= {"resourceVersion", "creationTimestamp"}
        assert "name" not in obj["metadata"]
    assert (
        int(second["object"]["metadata"]["resourceVersion"])
        > int(first["object"]["metadata"]["resourceVersion"])
        >= rv
    )


def test_pod_bookmarks_carry_zero_fields_like_a_typed_empty_object(
    api: Api, ns: str, knobs: AdminClient
) -> None:
    knobs.config(bookmark_interval=0.1)
    rv = api.rv_now(ns)
    with api.watching(
        f"/api/v1/namespaces/{ns}/pods", resourceVersion=str(rv), allowWatchBookmarks="true", timeoutSeconds=3
    ) as w:
        bm = w.next_of(("BOOKMARK",), timeout=3)
    assert bm["object"]["spec"] == {"containers": None}
    assert bm["object"]["metadata"]["creationTimestamp"] is None


def test_no_bookmarks_without_allow_watch_bookmarks_or_when_disabled(
    api: Api, ns: str, knobs: AdminClient
) -> None:
    knobs.config(bookmark_interval=0.05)
    rv = api.rv_now(ns)
    with api.watching(cms(ns), resourceVersion=str(rv), timeoutSeconds=1) as w:
        assert w.events() == []
    knobs.config(bookmark_interval=None)
    with api.watching(cms(ns), resourceVersion=str(rv), allowWatchBookmarks="true", timeoutSeconds=1) as w:
        assert w.events() == []


def test_a_bookmark_arrives_shortly_before_the_deadline(api: Api, ns: str, knobs: AdminClient) -> None:
    knobs.config(bookmark_interval=30.0, bookmark_before_deadline=1.0)
    rv = api.rv_now(ns)
    with api.watching(cms(ns), resourceVersion=str(rv), allowWatchBookmarks="true", timeoutSeconds=2) as w:
        events = w.events()
    assert [e["type"] for e in events] == ["BOOKMARK"]
