"""CustomResourceDefinitions (kubesim/README.md, "CustomResourceDefinitions"): created at run time they
appear in discovery and are served; deleted they emit DELETED for every custom
resource, close watches, leave discovery and answer 404."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kubesim import AdminClient
from tests.kubesim.client import Api

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def widget_crd(group: str, *, scope: str = "Namespaced") -> dict[str, Any]:
    schema = {
        "openAPIV3Schema": {
            "type": "object",
            "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
        }
    }

    def version(name: str, storage: bool) -> dict[str, Any]:
        return {
            "name": name,
            "served": True,
            "storage": storage,
            "schema": schema,
            "selectableFields": [{"jsonPath": ".spec.color"}],
        }

    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [version("v1", True), version("v1beta1", False)],
        },
    }


def wait_established(api: Api, name: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        conds = api.must(api.get(f"{CRDS}/{name}"), 200).get("status", {}).get("conditions", [])
        if any(c["type"] == "Established" and c["status"] == "True" for c in conds):
            return
        time.sleep(0.2)
    raise AssertionError(f"CRD {name} not established")


@pytest.fixture
def group(api: Api) -> Iterator[str]:
    group = f"g{uuid.uuid4().hex[:8]}.contract.panopticon.dev"
    api.must(api.post(CRDS, widget_crd(group)))
    wait_established(api, f"widgets.{group}")
    yield group
    api.delete(f"{CRDS}/widgets.{group}")


def widget(name: str, color: str) -> dict[str, Any]:
    return {"apiVersion": "", "kind": "Widget", "metadata": {"name": name}, "spec": {"color": color}}


def test_a_created_crd_appears_in_discovery_and_is_served(api: Api, ns: str, group: str) -> None:
    groups = api.must(api.get("/apis"), 200)["groups"]
    entry = next(g for g in groups if g["name"] == group)
    assert [v["version"] for v in entry["versions"]] == ["v1", "v1beta1"]
    assert entry["preferredVersion"]["version"] == "v1"
    res = api.must(api.get(f"/apis/{group}/v1"), 200)["resources"]
    widgets = next(r for r in res if r["name"] == "widgets")
    assert widgets["kind"] == "Widget" and widgets["namespaced"] is True and widgets["shortNames"] == ["wd"]
    body = widget("w1", "red")
    body["apiVersion"] = f"{group}/v1"
    created = api.must(api.post(f"/apis/{group}/v1/namespaces/{ns}/widgets", body))
    assert created["apiVersion"] == f"{group}/v1" and created["metadata"]["generation"] == 1


def test_custom_resource_list_items_carry_kind_and_every_served_version_works(
    api: Api, ns: str, group: str
) -> None:
    body = widget("w1", "red")
    body["apiVersion"] = f"{group}/v1"
    api.must(api.post(f"/apis/{group}/v1/namespaces/{ns}/widgets", body))
    for version in ("v1", "v1beta1"):
        listed = api.must(api.get(f"/apis/{group}/{version}/namespaces/{ns}/widgets"), 200)
        assert listed["kind"] == "WidgetList" and listed["apiVersion"] == f"{group}/{version}"
        assert [(i["apiVersion"], i["kind"]) for i in listed["items"]] == [(f"{group}/{version}", "Widget")]


def test_custom_resources_honour_selectable_fields(api: Api, ns: str, group: str) -> None:
    for name, color in (("a", "red"), ("b", "blue")):
        body = widget(name, color)
        body["apiVersion"] = f"{group}/v1"
        api.must(api.post(f"/apis/{group}/v1/namespaces/{ns}/widgets", body))
    listed = api.must(
        api.get(f"/apis/{group}/v1/namespaces/{ns}/widgets", fieldSelector="spec.color=blue"), 200
    )
    assert [i["metadata"]["name"] for i in listed["items"]] == ["b"]


def test_custom_resource_bookmarks_carry_only_type_and_rv(
    api: Api, ns: str, group: str, knobs: AdminClient
) -> None:
    knobs.config(bookmark_interval=0.1)
    path = f"/apis/{group}/v1/namespaces/{ns}/widgets"
    rv = api.rv_now(ns)
    with api.watching(path, resourceVersion=str(rv), allowWatchBookmarks="true", timeoutSeconds=3) as w:
        bm = w.next_of(("BOOKMARK",))
    assert bm["object"] == {
        "apiVersion": f"{group}/v1",
        "kind": "Widget",
        "metadata": {"resourceVersion": bm["object"]["metadata"]["resourceVersion"]},
    }


def test_deleting_a_crd_deletes_its_resources_closes_watches_and_unserves_it(api: Api, ns: str) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.contract.panopticon.dev"
    api.must(api.post(CRDS, widget_crd(group)))
    wait_established(api, f"widgets.{group}")
    path = f"/apis/{group}/v1/namespaces/{ns}/widgets"
    for name in ("a", "b"):
        body = widget(name, "red")
        body["apiVersion"] = f"{group}/v1"
        api.must(api.post(path, body))
    rv = api.rv_now(ns)
    with api.watching(path, resourceVersion=str(rv), timeoutSeconds=60) as w:
        api.must(api.delete(f"{CRDS}/widgets.{group}"), 200)
        events = w.events(timeout=30)
    assert sorted(e["object"]["metadata"]["name"] for e in events if e["type"] == "DELETED") == ["a", "b"]
    deadline = time.monotonic() + 30
    while api.get(path).status != 404 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert api.get(path).status == 404
    assert group not in [g["name"] for g in api.must(api.get("/apis"), 200)["groups"]]
    assert api.get(f"{CRDS}/widgets.{group}").status == 404


def test_crds_are_cluster_scoped_listable_and_watchable(api: Api, group: str) -> None:
    listed = api.must(api.get(CRDS), 200)
    assert listed["kind"] == "CustomResourceDefinitionList"
    assert f"widgets.{group}" in [i["metadata"]["name"] for i in listed["items"]]
    with api.watching(
        CRDS, resourceVersion="", fieldSelector=f"metadata.name=widgets.{group}", timeoutSeconds=2
    ) as w:
        first = w.next_of(("ADDED",))
    assert first["object"]["status"]["acceptedNames"]["kind"] == "Widget"


def test_a_crd_whose_name_does_not_match_its_names_is_422(api: Api) -> None:
    body = widget_crd("bad.contract.panopticon.dev")
    body["metadata"]["name"] = "wrong.contract.panopticon.dev"
    resp = api.post(CRDS, body)
    assert resp.status == 422 and resp.json["reason"] == "Invalid"


def test_cluster_scoped_custom_resources_live_outside_namespaces(api: Api, ns: str) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.contract.panopticon.dev"
    api.must(api.post(CRDS, widget_crd(group, scope="Cluster")))
    try:
        wait_established(api, f"widgets.{group}")
        body = widget("global", "red")
        body["apiVersion"] = f"{group}/v1"
        created = api.must(api.post(f"/apis/{group}/v1/widgets", body))
        assert "namespace" not in created["metadata"]
        assert api.get(f"/apis/{group}/v1/namespaces/{ns}/widgets").status == 404
    finally:
        api.delete(f"{CRDS}/widgets.{group}")


def test_the_shipped_crds_are_installed(api: Api, knobs: AdminClient) -> None:
    names = {i["metadata"]["name"] for i in api.must(api.get(CRDS), 200)["items"]}
    assert {
        "metricsconfigurations.metrics.appscode.com",
        "mongodbs.kubedb.com",
        "mongodbversions.catalog.kubedb.com",
    } <= names
    kubedb = api.must(api.get("/apis/kubedb.com"), 200)
    assert [v["version"] for v in kubedb["versions"]] == ["v1", "v1alpha2"]
