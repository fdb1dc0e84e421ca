"""Watch-list contract (kubesim/README.md, "Watch-list"): ADDED for the snapshot, then one
annotated BOOKMARK, then a normal watch; validation 422s; gate off; unsupported."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest

from kubesim import AdminClient
from tests.kubesim.client import Api

END = "k8s.io/initial-events-end"


def cms(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/configmaps"


def watch_list(rv: str = "", **extra: str) -> dict[str, str]:
    return {
        "sendInitialEvents": "true",
        "allowWatchBookmarks": "true",
        "resourceVersionMatch": "NotOlderThan",
        "resourceVersion": rv,
        "timeoutSeconds": "5",
        **extra,
    }


@pytest.mark.parametrize("rv", ["", "N"], ids=["rv-unset", "rv-n"])
def test_a_watch_list_sends_the_snapshot_then_an_annotated_bookmark(api: Api, ns: str, rv: str) -> None:
    made = {api.configmap(ns, f"cm-{i}")["metadata"]["name"] for i in range(3)}
    start = str(api.rv_now(ns)) if rv == "N" else ""
    with api.watching(cms(ns), **watch_list(start)) as w:
        added = [w.next() for _ in range(3)]
        bookmark = w.next()
        assert {e["type"] for e in added} == {"ADDED"}  # type: ignore[index]
        assert {e["object"]["metadata"]["name"] for e in added} == made  # type: ignore[index]
        assert bookmark is not None and bookmark["type"] == "BOOKMARK"
        meta = bookmark["object"]["metadata"]
        assert meta["annotations"] == {END: "true"}
        assert int(meta["resourceVersion"]) >= max(
            int(e["object"]["metadata"]["resourceVersion"]) for e in added
        )  # type: ignore[index]
        if start:
            assert int(meta["resourceVersion"]) >= int(start)
        api.set_labels(ns, "cm-1", {"x": "1"})
        later = w.next_of(("MODIFIED",))
        assert int(later["object"]["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])


def test_a_watch_list_without_allow_bookmarks_sends_no_end_marker(api: Api, ns: str) -> None:
    api.configmap(ns, "a")
    params = watch_list()
    del params["allowWatchBookmarks"]
    params["timeoutSeconds"] = "1"
    with api.watching(cms(ns), **params) as w:
        assert [e["type"] for e in w.events()] == ["ADDED"]


def test_a_legacy_watch_is_defaulted_into_watch_list_mode(api: Api, ns: str) -> None:
    api.configmap(ns, "a")
    with api.watching(cms(ns), allowWatchBookmarks="true", timeoutSeconds=3) as w:
        assert w.next()["type"] == "ADDED"  # type: ignore[index]
        bm = w.next_of(("BOOKMARK",))
    assert bm["object"]["metadata"]["annotations"] == {END: "true"}


INVALID = [
    (
        {"sendInitialEvents": "true", "resourceVersionMatch": "Exact", "resourceVersion": "1"},
        "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
    ),
    (
        {"sendInitialEvents": "true"},
        "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
    ),
    (
        {"resourceVersionMatch": "NotOlderThan", "resourceVersion": "1"},
        "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
    ),
    (
        {"sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan", "continue": "x"},
        "resourceVersionMatch is forbidden when continue is provided",
    ),
]


@pytest.mark.parametrize(
    ("params", "message"), INVALID, ids=["exact", "no-rvm", "rvm-without-sie", "with-continue"]
)
def test_invalid_watch_list_requests_are_422_before_the_stream(
    api: Api, ns: str, params: dict[str, str], message: str
) -> None:
    resp = api.request("GET", cms(ns), params={"watch": "1", **params})
    assert resp.status == 422
    assert resp.json["reason"] == "Invalid" and message in resp.json["message"]


def test_with_the_gate_off_send_initial_events_is_422(api: Api, ns: str, knobs: AdminClient) -> None:
    knobs.config(watch_list=False)
    resp = api.request("GET", cms(ns), params={"watch": "1", **watch_list()})
    assert resp.status == 422
    assert (
        "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"
        in resp.json["message"]
    )


def test_with_the_gate_off_a_legacy_watch_gets_no_end_marker(api: Api, ns: str, knobs: AdminClient) -> None:
    knobs.config(watch_list=False, bookmark_interval=None)
    api.configmap(ns, "a")
    with api.watching(cms(ns), allowWatchBookmarks="true", timeoutSeconds=1) as w:
        assert [e["type"] for e in w.events()] == ["ADDED"]


def test_without_progress_notify_a_watch_list_starts_with_an_error(
    api: Api, ns: str, knobs: AdminClient
) -> None:
    knobs.config(watch_list_progress_notify=False)
    api.configmap(ns, "a")
    with api.watching(cms(ns), **watch_list()) as w:
        assert w.status == 200
        events = w.events()
    assert [e["type"] for e in events] == ["ERROR"]
    assert events[0]["object"]["code"] == 500


def test_a_watch_list_from_an_expired_rv_is_an_in_band_410(api: Api, ns: str, knobs: AdminClient) -> None:
    old = api.rv_now(ns)
    api.configmap(ns, "a")
    knobs.compact()
    with api.watching(cms(ns), **watch_list(str(old))) as w:
        events = w.events()
    assert [e["type"] for e in events] == ["ERROR"]
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"


def test_a_watch_list_from_an_rv_ahead_is_a_too_large_error_event(api: Api, ns: str) -> None:
    ahead = api.rv_now(ns) + 1_000_000
    with api.watching(cms(ns), **watch_list(str(ahead))) as w:
        events = w.events(timeout=6)
    assert events and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["code"] == 504
    assert status["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"


def test_watch_list_streams_are_gzipped_per_flush_with_watch_list_compression(
    api: Api, ns: str, knobs: AdminClient
) -> None:
    knobs.config(watch_list_compression=True)
    for i in range(3):
        api.configmap(ns, f"cm-{i}")
    params = watch_list()
    params["timeoutSeconds"] = "1"
    resp = api.request("GET", cms(ns), params={"watch": "1", **params}, headers={"Accept-Encoding": "gzip"})
    assert resp.headers.get("content-encoding") == "gzip"
    lines = gzip.decompress(resp.body).splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["ADDED", "ADDED", "ADDED", "BOOKMARK"]
    # Flushed per batch: the first batch decodes before the stream's end.
    partial = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(resp.body[: len(resp.body) - 10])
    assert partial.count(b"\n") >= 3
