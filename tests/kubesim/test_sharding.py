"""Server-side sharded list and watch (kubesim/README.md, "Sharded list and watch")."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kubesim import AdminClient
from kubesim.selectors import fnv1a64
from tests.kubesim.client import Api

LOW = "shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000')"
HIGH = "shardRange(object.metadata.uid, '0x8000000000000000', '0x10000000000000000')"


def cms(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/configmaps"


@pytest.fixture
def twenty(api: Api, ns: str) -> dict[str, int]:
    """Twenty configmaps; name → FNV-1a 64 of its uid."""
    return {
        (o := api.configmap(ns, f"cm-{i:02d}"))["metadata"]["name"]: fnv1a64(o["metadata"]["uid"])
        for i in range(20)
    }


@pytest.fixture
def sharded(api: Api, knobs: AdminClient) -> Iterator[AdminClient]:
    knobs.config(sharding=True)
    yield knobs


def names(body: dict[str, object]) -> set[str]:
    return {i["metadata"]["name"] for i in body["items"]}  # type: ignore[attr-defined]


def test_without_the_gate_the_shard_selector_is_ignored_and_not_echoed(
    api: Api, ns: str, twenty: dict[str, int]
) -> None:
    body = api.must(api.get(cms(ns), shardSelector=LOW), 200)
    if "shardInfo" in body["metadata"]:
        pytest.skip("this cluster has ShardedListAndWatch on")
    assert names(body) == set(twenty)


def test_shard_ranges_partition_a_list_by_the_uid_hash(
    api: Api, ns: str, twenty: dict[str, int], sharded: AdminClient
) -> None:
    low = api.must(api.get(cms(ns), shardSelector=LOW), 200)
    high = api.must(api.get(cms(ns), shardSelector=HIGH), 200)
    assert names(low) == {n for n, h in twenty.items() if h < 1 << 63}
    assert names(high) == {n for n, h in twenty.items() if h >= 1 << 63}
    assert low["metadata"]["shardInfo"] == {"selector": LOW}
    assert high["metadata"]["shardInfo"]["selector"] == HIGH


def test_or_ed_ranges_union_and_remaining_count_is_omitted(
    api: Api, ns: str, twenty: dict[str, int], sharded: AdminClient
) -> None:
    both = api.must(api.get(cms(ns), shardSelector=f"{LOW} || {HIGH}"), 200)
    assert names(both) == set(twenty)
    paged = api.must(api.get(cms(ns), shardSelector=LOW, limit=2), 200)
    assert "remainingItemCount" not in paged["metadata"] and paged["metadata"]["continue"]
    assert paged["metadata"]["shardInfo"] == {"selector": LOW}


def test_a_sharded_watch_list_filters_initial_events_and_changes(
    api: Api, ns: str, twenty: dict[str, int], sharded: AdminClient
) -> None:
    params = {
        "sendInitialEvents": "true",
        "allowWatchBookmarks": "true",
        "resourceVersionMatch": "NotOlderThan",
        "resourceVersion": "",
        "shardSelector": LOW,
        "timeoutSeconds": "5",
    }
    low = {n for n, h in twenty.items() if h < 1 << 63}
    with api.watching(cms(ns), **params) as w:
        initial = []
        while (ev := w.next()) is not None and ev["type"] == "ADDED":
            initial.append(ev["object"]["metadata"]["name"])
        assert ev is not None and ev["type"] == "BOOKMARK", "bookmarks still flow"
        assert set(initial) == low
        for name in sorted(twenty):
            api.set_labels(ns, name, {"touched": "yes"})
        changed = {w.next_of(("MODIFIED",))["object"]["metadata"]["name"] for _ in low}
        assert changed == low
        w.expect_quiet(0.3)


def test_a_namespace_range_selects_by_the_namespace_hash(
    api: Api, ns: str, twenty: dict[str, int], sharded: AdminClient
) -> None:
    h = fnv1a64(ns)
    hit = f"shardRange(object.metadata.namespace, '0x{h:016x}', '0x{h + 1:016x}')"
    lo, hi = (h + 1) % (1 << 64), (h + 2) % (1 << 64) or 1
    miss = f"shardRange(object.metadata.namespace, '0x{lo:016x}', '0x{hi:016x}')"
    assert names(api.must(api.get(cms(ns), shardSelector=hit), 200)) == set(twenty)
    assert names(api.must(api.get(cms(ns), shardSelector=miss), 200)) == set()


def test_mixed_keys_in_one_selector_are_an_error(api: Api, ns: str, sharded: AdminClient) -> None:
    mixed = f"{LOW} || shardRange(object.metadata.namespace, '0x0000000000000000', '0x10000000000000000')"
    assert api.get(cms(ns), shardSelector=mixed).status >= 400
