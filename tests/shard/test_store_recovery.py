"""Redis coming back with less than it acknowledged, with shard processes running.

A snapshot is taken, the objects change (creates, updates and deletes, all written
and acknowledged), then Redis goes back to the snapshot: restarted from it (a new
run id, as after a crash or a failover), or reloaded in place (the same run id, so
only the shards' write counters can tell). Either way the store must converge to
exactly the offline render: the lost updates rewritten, the series of objects
deleted since the snapshot removed, the families registered again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubesim import SimProcess
from tests.shard.test_cluster import churn
from tests.support.cluster import (
    NAMESPACE,
    ShardProcess,
    converge,
    expected_lines,
    statefulset,
    stored_lines,
)
from tests.support.redis_server import RedisServer

Setup = tuple[SimProcess, RedisServer, list[ShardProcess]]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Setup]:
    redis = RedisServer(extra=("--enable-debug-command", "local"))
    redis.start()
    sim = SimProcess(["--with-configs", "--scale", "1", "--seed", "21", "--mongodbs", "20"])
    sim.start()
    shards: list[ShardProcess] = []
    try:
        sim.admin.bulk(
            [
                {
                    "op": "create",
                    "object": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
                },
                {"op": "create", "object": statefulset(2)},
            ]
        )
        for index in (0, 1):
            shard = ShardProcess(index, kubeconfig=sim.kubeconfig_path, redis_url=redis.url, log_dir=tmp_path)
            shards.append(shard.start())
        for shard in shards:
            shard.wait_ready()
        yield sim, redis, shards
    finally:
        for shard in shards:
            shard.stop()
        sim.stop()
        redis.close()


def counter(shard: ShardProcess, name: str) -> float:
    found = re.search(rf"^{name}_total (\S+)$", shard.metrics(), re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def changed_since_snapshot(sim: SimProcess, redis: RedisServer) -> Path:
    """Snapshot the converged store, then change objects (written and acknowledged)
    so that the snapshot holds series of deleted and updated objects, and lacks new ones."""
    snapshot_lines = converge(sim, redis.url, timeout=60, what="before the snapshot")
    snapshot = redis.snapshot()
    churn(sim, 600, rate=600, seed=5)
    now = converge(sim, redis.url, timeout=60, what="after the changes")
    assert snapshot_lines - now, "the changes left nothing stale in the snapshot"
    assert now - snapshot_lines, "the changes added nothing the snapshot lacks"
    time.sleep(1.5)  # a few heartbeats: the write counters are read as they are now
    return snapshot


@pytest.mark.slow
def test_redis_restarted_from_an_older_snapshot_converges_to_the_offline_render(running: Setup) -> None:
    sim, redis, shards = running
    snapshot = changed_since_snapshot(sim, redis)
    redis.restart_from(snapshot)
    converge(sim, redis.url, timeout=45, what="after restarting Redis from the older snapshot")
    for shard in shards:
        assert counter(shard, "panopticon_shard_store_restarts") >= 1
        assert counter(shard, "panopticon_shard_store_rewrites") >= 1
    assert stored_lines(redis.url) == expected_lines(sim)


@pytest.mark.slow
def test_an_older_snapshot_loaded_under_the_same_run_id_is_caught_by_the_write_counters(
    running: Setup,
) -> None:
    sim, redis, shards = running
    run_id = redis.command("INFO", "server")
    snapshot = changed_since_snapshot(sim, redis)
    redis.reload_from(snapshot)
    assert _run_id(redis.command("INFO", "server")) == _run_id(run_id)
    converge(sim, redis.url, timeout=45, what="after reloading the older snapshot in place")
    assert sum(counter(shard, "panopticon_shard_store_lost_write_slots") for shard in shards) >= 1
    for shard in shards:
        assert counter(shard, "panopticon_shard_store_restarts") == 0


def _run_id(info: str) -> str:
    found = re.search(r"^run_id:(\w+)", info, re.MULTILINE)
    assert found, info
    return found.group(1)


@pytest.mark.slow
def test_a_snapshot_from_before_an_empty_restart_loses_the_registry_of_a_deleted_config(
    running: Setup,
) -> None:
    """The snapshot holds an older epoch token (taken before Redis restarted empty)
    and the families of a config deleted since: they must not be served again."""
    sim, redis, _ = running
    converge(sim, redis.url, timeout=60, what="before the snapshot")
    snapshot = redis.snapshot()
    redis.restart_empty()
    configs = sim.admin.call(
        "GET", "/objects?apiVersion=metrics.appscode.com/v1alpha1&kind=MetricsConfiguration"
    )
    doomed = next(c for c in configs["items"] if c["spec"]["targetRef"]["kind"] == "Deployment")
    sim.admin.bulk(
        [
            {
                "op": "delete",
                "apiVersion": doomed["apiVersion"],
                "kind": doomed["kind"],
                "name": doomed["metadata"]["name"],
            }
        ]
    )
    converge(sim, redis.url, timeout=60, what="after the restart and the config's deletion")
    time.sleep(1.5)
    redis.restart_from(snapshot)
    converge(sim, redis.url, timeout=45, what="after restarting Redis from the snapshot of the older epoch")
