"""Paths, scopes and verbs (kubesim/README.md, "URL routing") and discovery ("Discovery")."""

from __future__ import annotations

from tests.kubesim.client import Api

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def resources(body: dict[str, object]) -> dict[str, dict[str, object]]:
    return {r["name"]: r for r in body["resources"]}  # type: ignore[attr-defined]


def test_core_discovery_is_served_without_api_version(api: Api) -> None:
    versions = api.must(api.get("/api"), 200)
    assert (
        versions["kind"] == "APIVersions" and "apiVersion" not in versions and versions["versions"] == ["v1"]
    )
    assert versions["serverAddressByClientCIDRs"]
    groups = api.must(api.get("/apis"), 200)
    assert groups["kind"] == "APIGroupList" and "apiVersion" not in groups
    v1 = api.must(api.get("/api/v1"), 200)
    assert v1["kind"] == "APIResourceList" and v1["groupVersion"] == "v1" and "apiVersion" not in v1


def test_named_group_discovery_carries_api_version_v1(api: Api) -> None:
    group = api.must(api.get("/apis/apps"), 200)
    assert group["kind"] == "APIGroup" and group["apiVersion"] == "v1" and group["name"] == "apps"
    assert group["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    apps = api.must(api.get("/apis/apps/v1"), 200)
    assert apps["apiVersion"] == "v1" and apps["groupVersion"] == "apps/v1"


def test_resources_and_subresources_are_described_like_the_apiserver(api: Api) -> None:
    core = resources(api.must(api.get("/api/v1"), 200))
    pods = core["pods"]
    assert pods["singularName"] == "pod" and pods["namespaced"] is True and pods["kind"] == "Pod"
    assert set(pods["verbs"]) >= {
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    }  # type: ignore[arg-type]
    assert "po" in pods["shortNames"]  # type: ignore[operator]
    assert core["pods/status"]["singularName"] == "" and core["pods/status"]["kind"] == "Pod"
    assert core["nodes"]["namespaced"] is False and core["namespaces"]["namespaced"] is False
    scale = resources(api.must(api.get("/apis/apps/v1"), 200))["deployments/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")


def test_aggregated_discovery_is_served_when_asked_for(api: Api) -> None:
    for path, core in (("/api", True), ("/apis", False)):
        resp = api.request("GET", path, headers={"Accept": AGGREGATED + ",application/json"})
        assert resp.status == 200
        assert resp.headers["content-type"].replace(" ", "") == AGGREGATED
        body = resp.json
        assert body["kind"] == "APIGroupDiscoveryList" and body["apiVersion"] == "apidiscovery.k8s.io/v2"
        names = [item["metadata"].get("name", "") for item in body["items"]]
        assert (names == [""]) if core else ("apps" in names)
    apis = api.request("GET", "/apis", headers={"Accept": AGGREGATED}).json
    apps = next(i for i in apis["items"] if i["metadata"]["name"] == "apps")
    deployments = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    assert deployments["responseKind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert deployments["scope"] == "Namespaced" and deployments["singularResource"] == "deployment"
    assert {s["subresource"] for s in deployments["subresources"]} >= {"scale", "status"}


def test_version_and_health_endpoints_answer(api: Api) -> None:
    version = api.must(api.get("/version"), 200)
    assert version["major"] == "1" and version["gitVersion"].startswith("v1.")
    for path in ("/healthz", "/livez", "/readyz"):
        resp = api.get(path)
        assert resp.status == 200 and resp.text == "ok"


def test_namespaced_collections_list_across_or_within_namespaces(api: Api, ns: str) -> None:
    api.configmap(ns, "here")
    everywhere = api.must(api.get("/api/v1/configmaps", labelSelector=None), 200)
    assert any(i["metadata"]["namespace"] == ns for i in everywhere["items"])
    within = api.must(api.get(f"/api/v1/namespaces/{ns}/configmaps"), 200)
    assert {i["metadata"]["namespace"] for i in within["items"]} == {ns}
    one = api.must(api.get(f"/api/v1/namespaces/{ns}/configmaps/here"), 200)
    assert one["kind"] == "ConfigMap" and one["apiVersion"] == "v1", "a GET carries its type"


def test_namespaces_are_cluster_scoped_objects(api: Api, ns: str) -> None:
    body = api.must(api.get(f"/api/v1/namespaces/{ns}"), 200)
    assert body["kind"] == "Namespace" and body["metadata"]["name"] == ns
    assert "namespace" not in body["metadata"]


def test_created_objects_get_server_metadata(api: Api, ns: str) -> None:
    obj = api.configmap(ns, "meta")
    meta = obj["metadata"]
    assert len(meta["uid"]) == 36 and meta["uid"][14] == "4", "a UUIDv4"
    assert meta["creationTimestamp"].endswith("Z") and "T" in meta["creationTimestamp"]
    assert int(meta["resourceVersion"]) > 0
    assert meta["managedFields"][0]["fieldsType"] == "FieldsV1"


def test_generation_moves_with_spec_changes_only(api: Api, ns: str) -> None:
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    created = api.must(api.post(path, body))
    assert created["metadata"]["generation"] == 1
    relabelled = api.must(api.patch(f"{path}/web", {"metadata": {"labels": {"x": "1"}}}), 200)
    assert relabelled["metadata"]["generation"] == 1
    scaled = api.must(api.patch(f"{path}/web", {"spec": {"replicas": 2}}), 200)
    assert scaled["metadata"]["generation"] == 2
    again = api.must(api.patch(f"{path}/web", {"spec": {"replicas": 2}}), 200)
    assert again["metadata"]["resourceVersion"] == scaled["metadata"]["resourceVersion"], (
        "a no-op writes nothing"
    )


def test_finalizers_hold_a_delete_until_they_are_cleared(api: Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    api.must(
        api.post(
            path,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
            },
        )
    )
    rv = api.rv_now(ns)
    with api.watching(path, resourceVersion=str(rv), timeoutSeconds=5) as w:
        marked = api.must(api.delete(f"{path}/held"), 200, 202)
        assert marked["metadata"]["deletionTimestamp"]
        ev = w.next_of(("MODIFIED", "DELETED"))
        assert ev["type"] == "MODIFIED" and ev["object"]["metadata"]["deletionTimestamp"]
        assert api.get(f"{path}/held").status == 200
        api.must(api.patch(f"{path}/held", {"metadata": {"finalizers": None}}), 200)
        assert w.next_of(("MODIFIED", "DELETED"))["type"] == "DELETED"
    assert api.get(f"{path}/held").status == 404


def test_status_is_written_only_through_the_status_subresource(api: Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/persistentvolumeclaims"
    body = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    api.must(api.post(path, body))
    api.must(api.patch(f"{path}/data", {"status": {"phase": "Bound"}}), 200)
    assert api.must(api.get(f"{path}/data"), 200).get("status", {}).get("phase") != "Bound"
    api.must(api.patch(f"{path}/data/status", {"status": {"phase": "Bound"}}), 200)
    assert api.must(api.get(f"{path}/data"), 200)["status"]["phase"] == "Bound"


PARTIAL = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


def test_metadata_only_views_are_served_when_asked_for(api: Api, ns: str) -> None:
    api.configmap(ns, "meta-only", labels={"a": "b"}, data={"big": "x" * 1000})
    listed = api.request("GET", f"/api/v1/namespaces/{ns}/configmaps", headers={"Accept": PARTIAL}).json
    assert (listed["kind"], listed["apiVersion"]) == ("PartialObjectMetadataList", "meta.k8s.io/v1")
    (item,) = listed["items"]
    assert item["kind"] == "PartialObjectMetadata" and item["metadata"]["labels"] == {"a": "b"}
    assert "data" not in item
    one = api.request(
        "GET",
        f"/api/v1/namespaces/{ns}/configmaps/meta-only",
        headers={"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"},
    ).json
    assert one["kind"] == "PartialObjectMetadata" and "data" not in one
    w = api.watch(
        f"/api/v1/namespaces/{ns}/configmaps",
        {"resourceVersion": "0", "timeoutSeconds": "3"},
        headers={"Accept": PARTIAL},
    )
    try:
        ev = w.next_of(("ADDED",))
    finally:
        w.close()
    assert ev["object"]["kind"] == "PartialObjectMetadata" and "data" not in ev["object"]


def test_a_response_type_that_cannot_be_negotiated_is_406(api: Api, ns: str) -> None:
    resp = api.request(
        "GET", f"/api/v1/namespaces/{ns}/configmaps", headers={"Accept": "application/x-unheard-of"}
    )
    assert resp.status == 406 and resp.json["reason"] == "NotAcceptable"


def test_deleting_a_namespace_terminates_it_and_deletes_what_it_holds(api: Api) -> None:
    name = "t-doomed-namespace"
    api.create_namespace(name)
    api.configmap(name, "inside")
    rv = api.rv_now(name)
    with api.watching(
        "/api/v1/namespaces",
        resourceVersion=str(rv),
        fieldSelector=f"metadata.name={name}",
        timeoutSeconds=60,
    ) as w:
        api.must(api.delete(f"/api/v1/namespaces/{name}"), 200, 202)
        terminating = w.next_of(("MODIFIED",), timeout=30)
        assert terminating["object"]["status"]["phase"] == "Terminating"
        assert terminating["object"]["metadata"]["deletionTimestamp"]
        assert w.next_of(("DELETED",), timeout=60)["object"]["metadata"]["name"] == name
    assert api.get(f"/api/v1/namespaces/{name}/configmaps/inside").status == 404
