"""Prometheus scrapes the shipped partitioned job through a Service-like balancer.

The plain scrape config's `panopticon` job (manifests/prometheus/scrape-config.yaml),
pointed at a round-robin balancer in front of two real aggregator processes (what the
aggregator Service does): Prometheus must hold every series exactly once (not once per
replica), no series may carry the `partition` label, each partition must be one
healthy target, and Prometheus must report no duplicate or out-of-order samples, and the scrapes must
reach both replicas (a partitioned response closes its connection, so the balancer
picks a replica per scrape, not once per keep-alive connection).
"""

from __future__ import annotations

import copy
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from panopticon.store.layout import Layout
from panopticon.store.redisstore import RedisOptions, RedisStore
from tests.aggregator.test_app import fill
from tests.support import aio
from tests.support.balancer import Balancer
from tests.support.cluster import AggregatorProcess
from tests.support.prometheus import PrometheusServer
from tests.support.redis_server import RedisServer

SCRAPE_CONFIG = Path(__file__).resolve().parents[2] / "manifests" / "prometheus" / "scrape-config.yaml"
FAMILIES, OBJECTS = 5, 400


def shipped_job(address: str) -> dict[str, Any]:
    jobs = yaml.safe_load(SCRAPE_CONFIG.read_text())["scrape_configs"]
    job: dict[str, Any] = copy.deepcopy(next(j for j in jobs if j["job_name"] == "panopticon"))
    for static in job["static_configs"]:
        static["targets"] = [address]
    job["scrape_interval"] = job["scrape_timeout"] = "1s"
    return job


def prometheus_counter(prometheus: PrometheusServer, name: str) -> float:
    with urllib.request.urlopen(f"{prometheus.url}/metrics", timeout=5) as r:
        text = r.read().decode()
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, name
    return float(match.group(1))


@pytest.mark.slow
def test_each_series_is_stored_once_whatever_the_replica_count(tmp_path: Path) -> None:
    redis = RedisServer()
    redis.start()
    procs: list[AggregatorProcess] = []
    balancer: Balancer | None = None
    prometheus: PrometheusServer | None = None
    try:

        async def load() -> None:
            store = RedisStore.connect(RedisOptions(url=redis.url), Layout())
            try:
                await fill(store, families=FAMILIES, objects=OBJECTS)
            finally:
                await store.close()

        aio.run(load())
        procs = [
            AggregatorProcess(redis_url=redis.url, log_dir=tmp_path, name=f"aggregator-{i}").start()
            for i in range(2)
        ]
        balancer = Balancer([p.target for p in procs]).start()
        job = shipped_job(balancer.address)
        parts = int(job["params"]["of"][0])
        prometheus = PrometheusServer([], scrape_configs=[job]).start()

        expected = FAMILIES * OBJECTS
        series = 'count({job="panopticon", __name__!~"up|scrape_.*"})'
        prometheus.wait_for(series, lambda r: r and float(r[0]["value"][1]) == expected, timeout=60)
        time.sleep(3)  # a few more rounds of every partition
        assert float(prometheus.query(series)[0]["value"][1]) == expected
        assert prometheus.query('{job="panopticon", partition!="", __name__!~"up|scrape_.*"}') == []
        ups = prometheus.query('up{job="panopticon"}')
        assert sorted((r["metric"]["partition"], r["value"][1]) for r in ups) == [
            (str(i), "1") for i in range(parts)
        ]
        targets = prometheus.api("targets")["activeTargets"]
        assert len(targets) == parts and {(t["health"], t["lastError"]) for t in targets} == {("up", "")}
        assert (
            prometheus_counter(prometheus, "prometheus_target_scrapes_sample_duplicate_timestamp_total") == 0
        )
        assert prometheus_counter(prometheus, "prometheus_target_scrapes_sample_out_of_order_total") == 0
        # Each partitioned scrape closes its connection, so the balancer spreads them.
        assert set(balancer.connections) == {p.target for p in procs}, balancer.connections
        assert sum(balancer.connections.values()) >= 2 * parts
    finally:
        if prometheus is not None:
            prometheus.stop()
        if balancer is not None:
            balancer.stop()
        for proc in procs:
            proc.stop()
        redis.close()
