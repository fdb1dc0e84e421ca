"""Aggregations over shard processes, Redis and a real aggregator, against the simulator.

Two configs (Pods, Deployments) share an aggregate family, and the Pod config has
sum, min and max aggregates besides. Through the initial sync, churn, a rescale
2 -> 3 and a SIGKILLed shard restarted during churn, the store must hold exactly the
objects' partials (line for line, as any family), and the aggregator must serve, in a
full scrape and in the union of a partitioned one, exactly what the offline render
gives for the aggregate families.
"""

from __future__ import annotations

import copy
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesim import SimProcess
from panopticon.render.families import resolve_families
from panopticon.render.offline import render_exposition
from shard.configs import ConfigSet
from tests.shard.test_cluster import scale
from tests.support.cluster import (
    NAMESPACE,
    AggregatorProcess,
    ShardProcess,
    _get,
    _resource,
    churn,
    converge,
    statefulset,
)
from tests.support.redis_server import RedisServer


def _config(name: str, kind: str, api_version: str, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "metrics.appscode.com/v1alpha1",
        "kind": "MetricsConfiguration",
        "metadata": {"name": name, "annotations": {"metrics.panopticon.dev/name-prefix": "agg"}},
        "spec": {"targetRef": {"apiVersion": api_version, "kind": kind}, "metrics": metrics},
    }


OBJECTS = {
    "name": "objects",
    "help": "Objects per namespace and kind.",
    "type": "gauge",
    "aggregate": {"function": "count", "by": ["namespace", "kind"]},
}
CONFIGS = [
    _config(
        "pods",
        "Pod",
        "v1",
        [
            {**OBJECTS, "labels": [{"key": "kind", "value": "Pod"}], "metricValue": {"value": 1}},
            {
                "name": "phase",
                "help": "Pods per phase.",
                "type": "gauge",
                "aggregate": {"function": "count", "by": ["phase"]},
                "labels": [{"key": "phase", "valuePath": ".status.phase"}],
                "metricValue": {"value": 1},
            },
            {
                "name": "restarts",
                "help": "Container restarts per namespace.",
                "type": "gauge",
                "aggregate": {"function": "sum", "by": ["namespace"]},
                "field": {"path": ".status.containerStatuses", "type": "Array"},
                "metricValue": {"valueFromPath": ".status.containerStatuses[*].restartCount"},
            },
            {
                "name": "first_start",
                "help": "Earliest start per namespace.",
                "type": "gauge",
                "aggregate": {"function": "min", "by": ["namespace"]},
                "field": {"path": ".status.startTime", "type": "DateTime"},
                "metricValue": {"valueFromPath": ".status.startTime"},
            },
        ],
    ),
    _config(
        "deployments",
        "Deployment",
        "apps/v1",
        [
            {**OBJECTS, "labels": [{"key": "kind", "value": "Deployment"}], "metricValue": {"value": 1}},
            {
                "name": "replicas_max",
                "help": "Largest desired replicas per namespace.",
                "type": "gauge",
                "aggregate": {"function": "max", "by": ["namespace"]},
                "metricValue": {"valueFromPath": ".spec.replicas"},
            },
        ],
    ),
]


def offline(sim: SimProcess) -> dict[str, list[str]]:
    """The aggregate families as `panopticon render` serves them, from the simulator's objects."""
    configs = ConfigSet()
    for body in _get(sim, "/apis/metrics.appscode.com/v1alpha1/metricsconfigurations")["items"]:
        configs.upsert(body)
    objects = []
    for target in configs.programs_by_target():
        found = _resource(sim, target.api_version, target.kind)
        assert found is not None
        for obj in _get(sim, found[0])["items"]:
            objects.append({**obj, "apiVersion": target.api_version, "kind": target.kind})
    resolution = resolve_families(configs.resolution.programs.values())
    expo = render_exposition(resolution, objects)
    return {
        name: expo.served(name).decode().splitlines()
        for name, family in resolution.families.items()
        if family.header.aggregate is not None
    }


def served(aggregator: AggregatorProcess, query: str = "") -> dict[str, list[str]]:
    with urllib.request.urlopen(f"http://{aggregator.target}/metrics{query}", timeout=30) as r:
        text = r.read().decode()
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            out.setdefault(line.split("{", 1)[0].split(" ", 1)[0], []).append(line)
    return out


def check_served(sim: SimProcess, aggregator: AggregatorProcess, what: str) -> dict[str, list[str]]:
    expected = offline(sim)
    full = served(aggregator)
    for name, lines in expected.items():
        assert full.get(name, []) == lines, f"{what}: {name} served {full.get(name)} != offline {lines}"
    parts: Counter[str] = Counter()
    for i in range(4):
        for name, lines in served(aggregator, f"?partition={i}&of=4").items():
            if name in expected:
                parts.update(lines)
    assert parts == Counter(line for lines in expected.values() for line in lines), what
    return expected


@pytest.fixture
def cluster(
    tmp_path: Path,
) -> Iterator[tuple[SimProcess, RedisServer, dict[int, ShardProcess], AggregatorProcess, Path]]:
    redis = RedisServer()
    redis.start()
    sim = SimProcess(["--scale", "0", "--seed", "5", "--mongodbs", "0", "--bookmark-interval", "1"]).start()
    shards: dict[int, ShardProcess] = {}
    aggregator = AggregatorProcess(redis_url=redis.url, log_dir=tmp_path)
    try:
        ops: list[dict[str, Any]] = [
            {
                "op": "create",
                "object": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            },
            {"op": "create", "object": statefulset(2)},
        ]
        ops += [{"op": "create", "object": body} for body in CONFIGS]
        result = sim.admin.bulk(ops)
        assert {r["code"] for r in result["results"]} == {200}, result
        for i in range(2):
            start(shards, i, sim, redis, tmp_path)
        aggregator.start()
        yield sim, redis, shards, aggregator, tmp_path
    finally:
        aggregator.stop()
        for shard in shards.values():
            shard.stop()
        sim.stop()
        redis.close()


def start(
    shards: dict[int, ShardProcess], index: int, sim: SimProcess, redis: RedisServer, logs: Path
) -> None:
    shards[index] = ShardProcess(
        index, kubeconfig=sim.kubeconfig_path, redis_url=redis.url, log_dir=logs
    ).start()


@pytest.mark.slow
def test_served_aggregates_equal_the_offline_render_through_churn_rescale_and_a_kill(
    cluster: tuple[SimProcess, RedisServer, dict[int, ShardProcess], AggregatorProcess, Path],
) -> None:
    sim, redis, shards, aggregator, logs = cluster
    for shard in shards.values():
        shard.wait_ready()
    converge(sim, redis.url, what="initial sync")
    first = check_served(sim, aggregator, "initial sync")
    assert first["agg_phase"] and any('kind="Deployment"' in x for x in first["agg_objects"])
    assert any('kind="Pod"' in x for x in first["agg_objects"])  # both configs feed the one family

    churn(sim, 2000, resources=["pods", "deployments"])
    converge(sim, redis.url, what="after 2,000 pod and deployment changes")
    after_churn = check_served(sim, aggregator, "after churn")
    assert after_churn != first  # the churn changed the figures, and they followed

    scale(sim, 3)
    start(shards, 2, sim, redis, logs)
    shards[2].wait_ready()
    churn(sim, 300, seed=2, resources=["pods", "deployments"])
    converge(sim, redis.url, what="scaled 2 -> 3")
    check_served(sim, aggregator, "scaled 2 -> 3")

    shards[0].kill()
    churn(sim, 500, seed=3, resources=["pods", "deployments"])
    start(shards, 0, sim, redis, logs)
    shards[0].wait_ready()
    converge(sim, redis.url, what="shard 0 SIGKILLed during churn and restarted")
    check_served(sim, aggregator, "shard 0 killed and restarted")


@pytest.mark.slow
def test_served_aggregates_equal_the_offline_render_after_redis_restarts_from_an_older_snapshot(
    cluster: tuple[SimProcess, RedisServer, dict[int, ShardProcess], AggregatorProcess, Path],
) -> None:
    """The bucket partials Redis lost (written after the snapshot) are rewritten, and
    those it brings back stale are replaced, once the shards have relisted."""
    sim, redis, shards, aggregator, _ = cluster
    for shard in shards.values():
        shard.wait_ready()
    converge(sim, redis.url, what="initial sync")
    snapshot = redis.snapshot()
    churn(sim, 500, seed=4, resources=["pods", "deployments"])
    converge(sim, redis.url, what="after churn")
    before = check_served(sim, aggregator, "after churn")
    redis.restart_from(snapshot)
    converge(sim, redis.url, timeout=60, what="after Redis restarted from the older snapshot")
    assert check_served(sim, aggregator, "after Redis restarted from the older snapshot") == before


@pytest.mark.slow
def test_a_metric_switched_between_per_object_and_aggregate_keeps_nothing_of_its_other_layout(
    cluster: tuple[SimProcess, RedisServer, dict[int, ShardProcess], AggregatorProcess, Path],
) -> None:
    """Per-object fields of a family that became an aggregate would be combined as
    partials; bucket fields of one that became per-object would be served as series."""
    sim, redis, shards, aggregator, _ = cluster
    for shard in shards.values():
        shard.wait_ready()
    converge(sim, redis.url, what="initial sync")
    pods = copy.deepcopy(CONFIGS[0])
    phase = next(m for m in pods["spec"]["metrics"] if m["name"] == "phase")
    del phase["aggregate"]  # per-object series: the object's own labels come with them
    result = sim.admin.bulk([{"op": "apply", "object": pods}])
    assert {r["code"] for r in result["results"]} == {200}, result
    stored = converge(sim, redis.url, what="phase made per-object")
    per_object = [line for line in stored if line.startswith("agg_phase{")]
    assert per_object and all(line.endswith(" 1") for line in per_object), per_object[:3]
    result = sim.admin.bulk([{"op": "apply", "object": CONFIGS[0]}])
    assert {r["code"] for r in result["results"]} == {200}, result
    converge(sim, redis.url, what="phase made an aggregate again")
    check_served(sim, aggregator, "phase made an aggregate again")
