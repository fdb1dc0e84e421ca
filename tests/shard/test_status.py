"""MetricsConfiguration status, written by a shard process into the simulator.

Validation results reach the config's status (conditions with the field-level
message, observedGeneration, transition times kept while nothing flips), and a CRD
without the status subresource (AppsCode's own) turns status writes off without
stopping anything else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesim import SimProcess
from tests.support.cluster import ShardProcess, _get
from tests.support.redis_server import RedisServer

CONFIGS = "/apis/metrics.appscode.com/v1alpha1/metricsconfigurations"
CRD = "metricsconfigurations.metrics.appscode.com"


def config(
    name: str, *, api_version: str = "v1", kind: str = "Pod", metric: str = "pod_info"
) -> dict[str, Any]:
    return {
        "apiVersion": "metrics.appscode.com/v1alpha1",
        "kind": "MetricsConfiguration",
        "metadata": {"name": name},
        "spec": {
            "targetRef": {"apiVersion": api_version, "kind": kind},
            "metrics": [{"name": metric, "help": "Pods.", "type": "gauge", "metricValue": {"value": 1}}],
        },
    }


def conditions(sim: SimProcess, name: str) -> dict[str, dict[str, Any]]:
    status = _get(sim, f"{CONFIGS}/{name}").get("status") or {}
    return {
        c["type"]: {**c, "observedGeneration": status.get("observedGeneration")}
        for c in status.get("conditions", [])
    }


def eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def sim_and_redis() -> Iterator[tuple[SimProcess, RedisServer]]:
    redis = RedisServer()
    redis.start()
    sim = SimProcess(["--scale", "1", "--mongodbs", "0"])
    sim.start()
    try:
        yield sim, redis
    finally:
        sim.stop()
        redis.close()


def test_validation_results_reach_the_configs_status(
    sim_and_redis: tuple[SimProcess, RedisServer], tmp_path: Path
) -> None:
    sim, redis = sim_and_redis
    sim.admin.bulk(
        [
            {"op": "create", "object": config("good")},
            {"op": "create", "object": config("bad", metric="bad name")},
            {"op": "create", "object": config("nowhere", api_version="example.com/v1", kind="Nothing")},
        ]
    )
    shard = ShardProcess(
        0,
        kubeconfig=sim.kubeconfig_path,
        redis_url=redis.url,
        log_dir=tmp_path,
        # No periodic refresh within the test: statuses must follow each reconcile.
        extra=("--shards", "1", "--status-interval", "600"),
    ).start()
    try:
        shard.wait_ready()
        eventually(lambda: all(conditions(sim, n) for n in ("good", "bad", "nowhere")), "every status")
        good, bad, nowhere = (conditions(sim, n) for n in ("good", "bad", "nowhere"))
        # The Kubernetes side of the self-metrics counts what the reflectors really did.
        samples = dict(line.rsplit(" ", 1) for line in shard.metrics().splitlines() if line[:1] != "#")
        assert float(samples['panopticon_shard_syncs_total{watched="v1/Pod"}']) >= 1
        assert float(samples['panopticon_shard_watch_lines_total{watched="v1/Pod"}']) > 0
        assert float(samples["panopticon_shard_kube_requests_total"]) > 3

        assert good["Ready"]["status"] == "True" and good["Invalid"]["status"] == "False"
        assert good["Ready"]["observedGeneration"] == 1
        assert bad["Ready"]["status"] == "False" and bad["Invalid"]["status"] == "True"
        assert bad["Invalid"]["reason"] == "ValidationFailed"
        assert "spec.metrics[0].name" in bad["Invalid"]["message"]
        assert nowhere["Ready"]["reason"] == "TargetNotFound"
        for found in (good, bad, nowhere):
            assert all(c["lastTransitionTime"].endswith("Z") for c in found.values())
        good_since = good["Ready"]["lastTransitionTime"]

        # Fixing the bad config: a new generation, Ready flips and its time moves on.
        time.sleep(1.1)  # transition times have one-second resolution
        fixed = config("bad", metric="pod_info_fixed")
        patch = {"spec": fixed["spec"]}
        sim.admin.bulk([{"op": "patch", **_ref("bad"), "patch": patch}])
        eventually(lambda: conditions(sim, "bad")["Ready"]["status"] == "True", "the fixed config's status")
        bad = conditions(sim, "bad")
        assert bad["Ready"]["observedGeneration"] == 2
        assert bad["Invalid"]["status"] == "False" and bad["Invalid"]["message"] == ""
        assert bad["Ready"]["lastTransitionTime"] > good_since
        assert conditions(sim, "good")["Ready"]["lastTransitionTime"] == good_since

        # Deleted, then created again under the same name: the new object has no status
        # and gets one (the shard used to skip it as unchanged since the old one's).
        sim.admin.bulk([{"op": "delete", **_ref("good")}])
        time.sleep(1.0)
        sim.admin.bulk([{"op": "create", "object": config("good")}])
        eventually(lambda: bool(conditions(sim, "good")), "the status of the config created again")
        assert conditions(sim, "good")["Ready"]["status"] == "True"
    finally:
        shard.stop()


def _ref(name: str) -> dict[str, str]:
    return {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration", "name": name}


def test_a_crd_without_the_status_subresource_turns_status_writes_off_and_nothing_else(
    sim_and_redis: tuple[SimProcess, RedisServer], tmp_path: Path
) -> None:
    sim, redis = sim_and_redis
    crd = _get(sim, f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD}")
    versions = crd["spec"]["versions"]
    for version in versions:
        version.pop("subresources", None)  # AppsCode's CRD has none
    result = sim.admin.bulk(
        [
            {
                "op": "patch",
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "name": CRD,
                "patch": {"spec": {"versions": versions}},
            },
            {"op": "create", "object": config("good")},
        ]
    )
    assert [r["code"] for r in result["results"]] == [200, 200], result
    shard = ShardProcess(
        0, kubeconfig=sim.kubeconfig_path, redis_url=redis.url, log_dir=tmp_path, extra=("--shards", "1")
    ).start()
    try:
        shard.wait_ready()
        eventually(
            lambda: "status subresource" in shard.tail(200), "the shard to notice the missing subresource"
        )
        assert "panopticon_shard_synced 1.0" in shard.metrics()
        assert not _get(sim, f"{CONFIGS}/good").get("status")
        assert shard.tail(200).count("status subresource") == 1  # said once, not on every pass
    finally:
        shard.stop()
