"""Shards as separate processes against the simulator and a real redis-server.

At every checkpoint the union of what the shards wrote must equal, line for line,
the offline render of the same configs over the same objects: no duplicate, no
missing and no stale series (architecture invariants 2, 3 and 4), through initial
sync, churn, scaling 3 → 5 → 2, a SIGKILLed shard, a Redis restart and compaction.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesim import SimProcess
from panopticon.store.layout import Layout
from panopticon.store.redisstore import RedisOptions, RedisStore
from tests.support import aio
from tests.support.cluster import NAMESPACE, STATEFULSET, ShardProcess, churn, converge, statefulset
from tests.support.redis_server import RedisServer


def scale(sim: SimProcess, replicas: int) -> None:
    sim.admin.bulk(
        [
            {
                "op": "patch",
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "name": STATEFULSET,
                "namespace": NAMESPACE,
                "patch": {"spec": {"replicas": replicas}},
            }
        ]
    )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[SimProcess, RedisServer, dict[int, ShardProcess], Path]]:
    redis = RedisServer()
    redis.start()
    sim = SimProcess(
        ["--with-configs", "--scale", "3", "--seed", "11", "--mongodbs", "60", "--bookmark-interval", "1"]
    )
    sim.start()
    shards: dict[int, ShardProcess] = {}
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
        yield sim, redis, shards, tmp_path
    finally:
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
def test_the_shards_union_equals_the_offline_render_through_every_disruption(
    cluster: tuple[SimProcess, RedisServer, dict[int, ShardProcess], Path],
) -> None:
    sim, redis, shards, logs = cluster
    for i in range(3):
        start(shards, i, sim, redis, logs)
    for shard in shards.values():
        shard.wait_ready()
    initial = converge(sim, redis.url, what="initial sync")
    assert sum(initial.values()) > 1000

    churn(sim, 5000)
    converge(sim, redis.url, what="after 5,000 random creates, updates and deletes")

    scale(sim, 5)
    for i in (3, 4):
        start(shards, i, sim, redis, logs)
    for i in (3, 4):
        shards[i].wait_ready()
    converge(sim, redis.url, what="scaled 3 -> 5")

    scale(sim, 2)
    for i in (2, 3, 4):
        shards.pop(i).stop()
    churn(sim, 500, seed=2)
    converge(sim, redis.url, what="scaled 5 -> 2")

    shards[1].kill()
    churn(sim, 500, seed=3)
    start(shards, 1, sim, redis, logs)
    shards[1].wait_ready()
    converge(sim, redis.url, what="shard 1 SIGKILLed during churn and restarted")

    redis.restart_empty()
    converge(sim, redis.url, what="Redis restarted empty")

    sim.admin.compact()
    churn(sim, 500, seed=4)
    sim.admin.compact()
    sim.admin.inject_watch_error(410)
    churn(sim, 300, seed=5)
    converge(sim, redis.url, what="compaction and in-band 410s forcing relists")
    relists = sum(
        float(line.rsplit(" ", 1)[1])
        for shard in shards.values()
        for line in shard.metrics().splitlines()
        if line.startswith("panopticon_shard_relists_total")
    )
    assert relists > 0


def test_a_lagging_former_owner_cannot_overwrite_the_new_owner(tmp_path: Path) -> None:
    """Shard 0 keeps a stale ring (one shard, generation 1) while shard 1 runs the new
    one (two shards, generation 2): shard 0's writes to the buckets shard 1 claimed are
    refused, and the store ends up exactly as shard 1 rendered those buckets."""
    redis = RedisServer()
    redis.start()
    sim = SimProcess(["--with-configs", "--scale", "2", "--seed", "7"])
    sim.start()
    procs: list[ShardProcess] = []
    try:
        common = {"kubeconfig": sim.kubeconfig_path, "redis_url": redis.url, "log_dir": tmp_path}
        lagging = ShardProcess(0, extra=("--shards", "1", "--ring-generation", "1"), **common).start()
        procs.append(lagging)
        lagging.wait_ready()
        current = ShardProcess(1, extra=("--shards", "2", "--ring-generation", "2"), **common).start()
        procs.append(current)
        current.wait_ready()
        churn(sim, 1500, seed=9)
        time.sleep(2)
        refused = sum(
            float(line.rsplit(" ", 1)[1])
            for line in lagging.metrics().splitlines()
            if line.startswith("panopticon_shard_writes_refused_total")
        )
        assert refused > 0, lagging.tail()
        # Shard 1's buckets hold what shard 1 rendered; shard 0 still serves the rest.
        converge(sim, redis.url, what="lagging owner fenced out")
    finally:
        for proc in procs:
            proc.stop()
        sim.stop()
        redis.close()


def _configmap_config(name: str, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "metrics.appscode.com/v1alpha1",
        "kind": "MetricsConfiguration",
        "metadata": {"name": name},
        "spec": {"targetRef": {"apiVersion": "v1", "kind": "ConfigMap"}, "metrics": metrics},
    }


def test_what_changed_while_no_shard_ran_leaves_nothing_stale(tmp_path: Path) -> None:
    """While the only shard is down, an object loses the field behind one of its
    families and a config is deleted. After the restart the store matches the
    offline render: the lost family's field and the deleted config's family are gone
    (neither a deleted object nor a config change the shard saw would cover them)."""
    redis = RedisServer()
    redis.start()
    sim = SimProcess(["--scale", "1", "--mongodbs", "0", "--seed", "5"])
    sim.start()
    shard: ShardProcess | None = None
    try:
        size = {
            "name": "cm_size",
            "help": "h",
            "type": "gauge",
            "metricValue": {"valueFromPath": ".data.size"},
        }
        gone = {"name": "cm_gone", "help": "h", "type": "gauge", "metricValue": {"value": 1}}
        configmap = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "sized", "namespace": "default"},
            "data": {"size": "3"},
        }
        sim.admin.bulk(
            [
                {"op": "create", "object": _configmap_config("sizes", [size])},
                {"op": "create", "object": _configmap_config("doomed", [gone])},
                {"op": "create", "object": configmap},
            ]
        )
        common = {"kubeconfig": sim.kubeconfig_path, "redis_url": redis.url, "log_dir": tmp_path}
        shard = ShardProcess(0, extra=("--shards", "1"), **common).start()
        shard.wait_ready()
        before = converge(sim, redis.url, what="first run")
        assert 'kube_configmap_cm_size{configmap="sized",namespace="default"} 3' in before
        assert any(line.startswith("kube_configmap_cm_gone{") for line in before)
        shard.stop()

        patch = {"data": {"size": None}}
        sim.admin.bulk(
            [
                {"op": "patch", "apiVersion": "v1", "kind": "ConfigMap", "name": "sized",
                 "namespace": "default", "patch": patch},
                {"op": "delete", "apiVersion": "metrics.appscode.com/v1alpha1",
                 "kind": "MetricsConfiguration", "name": "doomed"},
            ]
        )  # fmt: skip
        shard = ShardProcess(0, extra=("--shards", "1"), **common).start()
        shard.wait_ready()
        after = converge(sim, redis.url, what="restarted after changes it did not see")
        assert not any("cm_size" in line and "sized" in line for line in after)
        assert not any(line.startswith("kube_configmap_cm_gone") for line in after)
        # Not just unregistered: the deleted config's fields are gone from Redis too.
        assert stored_fields(redis.url, "kube_configmap_cm_gone") == 0
    finally:
        if shard is not None:
            shard.stop()
        sim.stop()
        redis.close()


def test_a_shard_that_was_down_when_a_config_went_collects_its_leftovers(tmp_path: Path) -> None:
    """Shard 1 is down when a config is deleted: shard 0 unregisters the family and
    deletes its own fields, but shard 1's buckets keep theirs until shard 1, back,
    collects them (the family is recorded as retired in the store)."""
    redis = RedisServer()
    redis.start()
    sim = SimProcess(["--scale", "2", "--mongodbs", "0", "--seed", "6"])
    sim.start()
    procs: dict[int, ShardProcess] = {}
    family = "kube_configmap_cm_doomed"
    try:
        doomed = {"name": "cm_doomed", "help": "h", "type": "gauge", "metricValue": {"value": 1}}
        sim.admin.bulk([{"op": "create", "object": _configmap_config("doomed", [doomed])}])
        common = {"kubeconfig": sim.kubeconfig_path, "redis_url": redis.url, "log_dir": tmp_path}
        for index in (0, 1):
            procs[index] = ShardProcess(index, extra=("--shards", "2"), **common).start()
        for proc in procs.values():
            proc.wait_ready()
        converge(sim, redis.url, what="two shards")
        assert stored_fields(redis.url, family) > 1
        procs.pop(1).stop()

        delete = {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration"}
        sim.admin.bulk([{"op": "delete", **delete, "name": "doomed"}])
        converge(sim, redis.url, what="config deleted, shard 1 down")  # unregistered by shard 0
        left = stored_fields(redis.url, family)
        assert left > 0  # shard 1's buckets: nobody else may touch them

        procs[1] = ShardProcess(1, extra=("--shards", "2"), **common).start()
        procs[1].wait_ready()
        assert stored_fields(redis.url, family) == 0
        converge(sim, redis.url, what="shard 1 back")
    finally:
        for proc in procs.values():
            proc.stop()
        sim.stop()
        redis.close()


def stored_fields(redis_url: str, family: str) -> int:
    """How many fields Redis holds for `family`, registered or not."""

    async def count() -> int:
        store = RedisStore.connect(RedisOptions(url=redis_url), Layout())
        try:
            return sum([len(await store.fields(slot, family)) for slot in range(store.layout.slots)])
        finally:
            await store.close()

    return aio.run(count())


def backlog_drops(shard: ShardProcess) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in shard.metrics().splitlines()
        if line.startswith("panopticon_shard_backlog_drops_total")
    )


@pytest.mark.slow
def test_a_backlog_dropped_during_a_redis_outage_is_rewritten_with_nothing_stale(
    cluster: tuple[SimProcess, RedisServer, dict[int, ShardProcess], Path],
) -> None:
    """Redis stops answering (SIGSTOP keeps its data) while objects are created, changed
    and deleted: the shard's held writes outgrow --max-backlog and are dropped, and once
    Redis answers the shard relists, rewrites and collects until nothing differs."""
    sim, redis, shards, logs = cluster
    scale(sim, 1)
    shards[0] = ShardProcess(
        0,
        kubeconfig=sim.kubeconfig_path,
        redis_url=redis.url,
        log_dir=logs,
        extra=("--max-backlog", "200", "--redis-timeout", "0.5"),
    ).start()
    shards[0].wait_ready()
    converge(sim, redis.url, what="initial sync")
    assert redis.proc is not None
    os.kill(redis.proc.pid, signal.SIGSTOP)
    try:
        churn(sim, 1500)
        deadline = time.monotonic() + 30
        while backlog_drops(shards[0]) < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert backlog_drops(shards[0]) >= 1, shards[0].tail()
    finally:
        os.kill(redis.proc.pid, signal.SIGCONT)
    converge(sim, redis.url, what="Redis answering again after the backlog was dropped")
