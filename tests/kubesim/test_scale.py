"""The scale subresource (autoscaling/v1 Scale) of Deployments, ReplicaSets, StatefulSets and RCs."""

from __future__ import annotations

from typing import Any

import pytest

from shard.membership import ring_of_statefulset
from tests.kubesim.client import Api


def workload(kind: str, name: str, replicas: int | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]}]},
        "template": {"metadata": {"labels": {"app": name, "tier": "a"}},
                     "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
    }  # fmt: skip
    if replicas is not None:
        spec["replicas"] = replicas
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


@pytest.mark.parametrize(("kind", "plural"), [("Deployment", "deployments"), ("ReplicaSet", "replicasets")])
def test_get_scale_shows_the_object_as_an_autoscaling_v1_scale(
    api: Api, ns: str, kind: str, plural: str
) -> None:
    path = f"/apis/apps/v1/namespaces/{ns}/{plural}"
    created = api.must(api.post(path, workload(kind, "web", 2)), 201)
    scale = api.must(api.get(f"{path}/web/scale"), 200)
    assert (scale["kind"], scale["apiVersion"]) == ("Scale", "autoscaling/v1")
    assert scale["metadata"]["name"] == "web" and scale["metadata"]["namespace"] == ns
    assert scale["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert scale["metadata"]["uid"] == created["metadata"]["uid"]
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"]["selector"] == "app=web,tier in (a,b)"


def test_patching_scale_writes_spec_replicas_only_and_returns_the_new_scale(api: Api, ns: str) -> None:
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    created = api.must(api.post(path, workload("Deployment", "web", 1)), 201)
    scaled = api.must(
        api.patch(f"{path}/web/scale", {"spec": {"replicas": 3}, "metadata": {"labels": {"x": "y"}}}), 200
    )
    assert scaled["spec"] == {"replicas": 3}
    after = api.must(api.get(f"{path}/web"), 200)
    assert after["spec"]["replicas"] == 3 and "labels" not in after["metadata"]
    assert after["spec"]["template"] == created["spec"]["template"]
    assert scaled["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]
    assert after["metadata"]["generation"] == 2
    if api.is_sim:
        scale_entries = [e for e in after["metadata"]["managedFields"] if e.get("subresource") == "scale"]
        assert [e["fieldsV1"] for e in scale_entries] == [{"f:spec": {"f:replicas": {}}}]
    applied = api.request(
        "PATCH", f"{path}/web/scale", params={"fieldManager": "t"},
        body=b"spec:\n  replicas: 7\n", content_type="application/apply-patch+yaml",
    )  # fmt: skip
    assert api.must(applied, 200)["spec"] == {"replicas": 7}
    ops = [{"op": "replace", "path": "/spec/replicas", "value": 0}]
    zero = api.must(api.patch(f"{path}/web/scale", ops, content_type="application/json-patch+json"), 200)
    assert zero["spec"] == {"replicas": 0}


def test_put_scale_checks_the_resource_version_and_the_replica_count(api: Api, ns: str) -> None:
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    api.must(api.post(path, workload("Deployment", "web", 1)), 201)
    scale = api.must(api.get(f"{path}/web/scale"), 200)
    moved = api.must(api.put(f"{path}/web/scale", {**scale, "spec": {"replicas": 5}}), 200)
    assert moved["spec"] == {"replicas": 5}
    stale = api.put(f"{path}/web/scale", {**scale, "spec": {"replicas": 6}})
    assert stale.status == 409 and stale.json["reason"] == "Conflict"
    negative = api.put(f"{path}/web/scale", {**moved, "spec": {"replicas": -1}})
    assert negative.status == 422 and negative.json["reason"] == "Invalid"
    assert negative.json["details"]["causes"][0]["field"] == "spec.replicas"
    assert api.get(f"{path}/missing/scale").status == 404
    api.must(api.post(f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "c"}}), 201)
    assert api.get(f"/api/v1/namespaces/{ns}/configmaps/c/scale").status == 404  # no such subresource


def test_scaling_a_statefulset_changes_the_shard_count_a_shard_reads(api: Api, ns: str) -> None:
    path = f"/apis/apps/v1/namespaces/{ns}/statefulsets"
    api.must(api.post(path, workload("StatefulSet", "panopticon-shard", 2)), 201)
    with api.watching(path, fieldSelector="metadata.name=panopticon-shard") as w:
        w.next_of(("ADDED",))
        api.must(api.patch(f"{path}/panopticon-shard/scale", {"spec": {"replicas": 4}}), 200)
        event = w.next_of(("MODIFIED",))
    ring = ring_of_statefulset(event["object"])
    assert ring is not None and (ring.shards, ring.generation) == (4, 2)


def test_a_deployment_without_replicas_scales_from_the_default_of_one(api: Api, ns: str) -> None:
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    api.must(api.post(path, workload("Deployment", "bare", None)), 201)
    assert api.must(api.get(f"{path}/bare/scale"), 200)["spec"] == {"replicas": 1}
