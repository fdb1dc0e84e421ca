"""End to end with a real Prometheus: simulator, Redis, 3 shards, 2 aggregators.

Prometheus (Debian's package) scrapes both aggregators every second. Its HTTP API
must show every series the configs produce, a changed object's new value, a deleted
object's series gone, and healthy targets (`up == 1`, no scrape error).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from kubesim import SimProcess
from tests.support.cluster import NAMESPACE, AggregatorProcess, ShardProcess, expected_lines, statefulset
from tests.support.prometheus import PrometheusServer
from tests.support.redis_server import RedisServer


def ready_mongodb(sim: SimProcess) -> dict[str, Any]:
    items = sim.admin.call("GET", "/objects?apiVersion=kubedb.com/v1&kind=MongoDB")["items"]
    return next(o for o in items if o.get("status", {}).get("phase") == "Ready")


@pytest.mark.slow
def test_prometheus_scrapes_the_aggregators_and_follows_changes_and_deletes(tmp_path: Path) -> None:
    redis = RedisServer()
    redis.start()
    sim = SimProcess(["--with-configs", "--scale", "1", "--seed", "21"]).start()
    procs: list[Any] = []
    prometheus: PrometheusServer | None = None
    try:
        sim.admin.bulk(
            [
                {
                    "op": "create",
                    "object": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
                },
                {"op": "create", "object": statefulset(3)},
            ]
        )
        for i in range(3):
            procs.append(
                ShardProcess(i, kubeconfig=sim.kubeconfig_path, redis_url=redis.url, log_dir=tmp_path).start()
            )
        for shard in procs:
            shard.wait_ready()
        aggregators = [
            AggregatorProcess(redis_url=redis.url, log_dir=tmp_path, name=f"aggregator-{i}").start()
            for i in range(2)
        ]
        procs.extend(aggregators)
        prometheus = PrometheusServer([a.target for a in aggregators]).start()
        first = aggregators[0].target

        # Every series arrives, from each aggregator.
        expected = sum(expected_lines(sim).values())
        series = f'count({{job="panopticon", instance="{first}", __name__!~"up|scrape_.*"}})'
        prometheus.wait_for(series, lambda r: r and float(r[0]["value"][1]) == expected, timeout=60)
        second = f'count({{job="panopticon", instance="{aggregators[1].target}", __name__!~"up|scrape_.*"}})'
        prometheus.wait_for(second, lambda r: r and float(r[0]["value"][1]) == expected, timeout=30)

        # Healthy targets: up, and no scrape error.
        targets = prometheus.api("targets")["activeTargets"]
        assert [(t["health"], t["lastError"]) for t in targets] == [("up", ""), ("up", "")]
        assert [float(r["value"][1]) for r in prometheus.query('up{job="panopticon"}')] == [1.0, 1.0]
        assert [(t["health"], t["lastError"]) for t in targets] == [("up", ""), ("up", "")]

        # A change shows up: a MongoDB goes from Ready to Halted.
        obj = ready_mongodb(sim)
        name = obj["metadata"]["name"]
        obj["status"]["phase"] = "Halted"
        assert sim.admin.bulk([{"op": "status", "object": obj}])["results"][0]["code"] == 200
        halted = f'kubedb_com_mongodb_status_phase{{mongodb="{name}", phase="Halted", instance="{first}"}}'
        prometheus.wait_for(halted, lambda r: r and r[0]["value"][1] == "1")
        ready = f'kubedb_com_mongodb_status_phase{{mongodb="{name}", phase="Ready", instance="{first}"}}'
        assert prometheus.value(ready) == 0

        # A delete makes its series disappear (Prometheus marks them stale).
        meta = obj["metadata"]
        ref = {
            "apiVersion": "kubedb.com/v1",
            "kind": "MongoDB",
            "name": meta["name"],
            "namespace": meta["namespace"],
        }
        # KubeDB objects carry finalizers: clear them, or the delete only marks the object.
        results = sim.admin.bulk(
            [{"op": "patch", **ref, "patch": {"metadata": {"finalizers": None}}}, {"op": "delete", **ref}]
        )["results"]
        assert [r["code"] for r in results] == [200, 200]
        gone = f'{{mongodb="{name}", namespace="{meta["namespace"]}", job="panopticon"}}'
        prometheus.wait_for(gone, lambda r: r == [])
        time.sleep(2)
        targets = prometheus.api("targets")["activeTargets"]
        assert [(t["health"], t["lastError"]) for t in targets] == [("up", ""), ("up", "")]
    finally:
        if prometheus is not None:
            prometheus.stop()
        for proc in reversed(procs):
            proc.stop()
        sim.stop()
        redis.close()
