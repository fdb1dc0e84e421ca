"""Joined labels and namespaceSelector over two shard processes and Redis, against the simulator.

Pods join their Namespace's team, their Node's zone and their Deployment's tier
(through their ReplicaSet, a kind no config names: the shards learn to watch it from
the owner chains they meet). Whatever shard owns a Pod, a change of its Namespace,
Node or Deployment re-renders its series within 5 seconds; a related object that is
missing drops only the label, and its creation brings the label. A second config
selects Pods by their Namespace's labels: relabelling the Namespace in and out adds and
removes its Pods' series within 5 seconds. After each step the store equals the
offline render of the simulator's objects.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesim import SimProcess
from tests.shard.test_target_crd import eventually
from tests.support.cluster import (
    NAMESPACE,
    expected_lines,
    sharded_cluster,
    statefulset,
    stored_lines,
)
from tests.support.redis_server import RedisServer

CONFIG = {
    "apiVersion": "metrics.appscode.com/v1alpha1",
    "kind": "MetricsConfiguration",
    "metadata": {"name": "pod-joins"},
    "spec": {
        "targetRef": {"apiVersion": "v1", "kind": "Pod"},
        "metrics": [
            {
                "name": "info",
                "help": "Pod info with related labels.",
                "type": "gauge",
                "labels": [
                    {"key": "team", "valuePath": ".metadata.labels.team", "from": "namespace"},
                    {"key": "zone", "valuePath": ".metadata.labels.zone", "from": "node"},
                    {"key": "tier", "valuePath": ".metadata.labels.tier", "from": "owner:apps/v1/Deployment"},
                ],
                "metricValue": {"value": 1},
            }
        ],
    },
}
SELECTED = {
    "apiVersion": "metrics.appscode.com/v1alpha1",
    "kind": "MetricsConfiguration",
    "metadata": {"name": "pods-on-stage"},
    "spec": {
        "targetRef": {"apiVersion": "v1", "kind": "Pod"},
        "namespaceSelector": {"matchLabels": {"stage": "on"}},
        "metrics": [
            {
                "name": "selected",
                "help": "Pods of staged namespaces.",
                "type": "gauge",
                "metricValue": {"value": 1},
            }
        ],
    },
}
PODS = 24
LABEL = re.compile(r'(\w+)="([^"]*)"')


def pod(i: int) -> dict[str, Any]:
    shop = i % 3 != 0
    meta: dict[str, Any] = {"name": f"p{i}", "namespace": "shop" if shop else "lab", "uid": f"pod-{i}"}
    if shop:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web-1",
                "uid": "rs-web",
                "controller": True,
            }
        ]
    node = "n3" if i == 0 else f"n{1 + i % 2}"
    containers = [{"name": "c", "image": "busybox"}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"nodeName": node, "containers": containers},
    }


def related() -> list[dict[str, Any]]:
    owner = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "uid": "dep-web",
        "controller": True,
    }
    selector = {"matchLabels": {"app": "web"}}
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "b"}]}}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"team": "a"}}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lab"}},
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {"zone": "z1"}}},
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2", "labels": {"zone": "z2"}}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "dep-web", "labels": {"tier": "front"}},
            "spec": {"replicas": 1, "selector": selector, "template": template},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "web-1", "namespace": "shop", "uid": "rs-web", "ownerReferences": [owner]},
            "spec": {"replicas": 1, "selector": selector, "template": template},
        },
    ]


def selected(redis: RedisServer) -> set[str]:
    """Pods with a kube_pod_selected series (their namespace is selected), as stored."""
    return {
        dict(LABEL.findall(line))["pod"]
        for line in stored_lines(redis.url)
        if line.startswith("kube_pod_selected{")
    }


def series(redis: RedisServer) -> dict[str, dict[str, str]]:
    """Pod name -> labels of its kube_pod_info series, as stored."""
    out = {}
    for line in stored_lines(redis.url):
        if line.startswith("kube_pod_info{"):
            labels = dict(LABEL.findall(line))
            out[labels["pod"]] = labels
    return out


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[SimProcess, RedisServer]]:
    ops: list[dict[str, Any]] = [
        {
            "op": "create",
            "object": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        },
        {"op": "create", "object": statefulset(2)},
        {"op": "create", "object": CONFIG},
        {"op": "create", "object": SELECTED},
    ]
    ops += [{"op": "create", "object": obj} for obj in related()]
    ops += [{"op": "create", "object": pod(i)} for i in range(PODS)]
    with sharded_cluster(ops, tmp_path) as (sim, redis, _):
        yield sim, redis


def test_related_changes_re_render_dependent_series_on_every_shard_within_5_seconds(
    cluster: tuple[SimProcess, RedisServer],
) -> None:
    sim, redis = cluster

    def pods_where(check: Any) -> set[str]:
        return {name for name, labels in series(redis).items() if check(labels)}

    def apply(op: dict[str, Any], timeout_check: Any, what: str) -> None:
        started = time.monotonic()
        assert {r["code"] for r in sim.admin.bulk([op])["results"]} == {200}
        eventually(timeout_check, what, 5)
        assert time.monotonic() - started < 5
        eventually(
            lambda: stored_lines(redis.url) == expected_lines(sim), "the store to equal the offline render", 5
        )

    shop = {f"p{i}" for i in range(PODS) if i % 3}
    on_n1 = {f"p{i}" for i in range(1, PODS) if i % 2 == 0}
    everything = {f"p{i}" for i in range(PODS)}

    def initial() -> bool:
        s = series(redis)
        return (
            set(s) == everything
            and {n for n, labels in s.items() if labels.get("team") == "a"} == shop
            and {n for n, labels in s.items() if labels.get("tier") == "front"} == shop
            and {n for n, labels in s.items() if labels.get("zone") == "z1"} == on_n1
        )

    eventually(initial, "every Pod's series with its joined labels", 30)
    assert "zone" not in series(redis)["p0"]  # its Node n3 does not exist: the label is left out
    assert stored_lines(redis.url) == expected_lines(sim)

    ns = {"apiVersion": "v1", "kind": "Namespace", "name": "shop"}
    apply(
        {"op": "patch", **ns, "patch": {"metadata": {"labels": {"team": "b"}}}},
        lambda: pods_where(lambda labels: labels.get("team") == "b") == shop,
        "the namespace's new team on its Pods",
    )
    node = {"apiVersion": "v1", "kind": "Node", "name": "n1"}
    apply(
        {"op": "patch", **node, "patch": {"metadata": {"labels": {"zone": "z9"}}}},
        lambda: pods_where(lambda labels: labels.get("zone") == "z9") == on_n1,
        "the node's new zone on its Pods",
    )
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "shop"}
    apply(
        {"op": "patch", **deployment, "patch": {"metadata": {"labels": {"tier": "back"}}}},
        lambda: pods_where(lambda labels: labels.get("tier") == "back") == shop,
        "the deployment's new tier on the Pods of its ReplicaSet",
    )
    apply(
        {
            "op": "create",
            "object": {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": "n3", "labels": {"zone": "z3"}},
            },
        },
        lambda: series(redis)["p0"].get("zone") == "z3",
        "the zone of a Node created after its Pod",
    )
    apply(
        {"op": "patch", **ns, "patch": {"metadata": {"labels": {"team": None}}}},
        lambda: pods_where(lambda labels: "team" in labels) == set() and set(series(redis)) == everything,
        "the team label gone, the series kept",
    )


def test_relabelling_a_namespace_moves_its_objects_in_and_out_of_a_namespace_selector(
    cluster: tuple[SimProcess, RedisServer],
) -> None:
    sim, redis = cluster
    lab = {f"p{i}" for i in range(PODS) if i % 3 == 0}
    eventually(lambda: len(series(redis)) == PODS, "every Pod's info series", 30)
    assert selected(redis) == set()
    ns = {"apiVersion": "v1", "kind": "Namespace", "name": "lab"}
    for stage, expected in (("on", lab), ("off", set()), ("on", lab)):
        started = time.monotonic()
        patch = {"op": "patch", **ns, "patch": {"metadata": {"labels": {"stage": stage}}}}
        assert {r["code"] for r in sim.admin.bulk([patch])["results"]} == {200}
        eventually(lambda expected=expected: selected(redis) == expected, f"stage {stage} to apply", 5)
        assert time.monotonic() - started < 5
        eventually(
            lambda: stored_lines(redis.url) == expected_lines(sim), "the store to equal the offline render", 5
        )
