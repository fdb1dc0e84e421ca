"""Fencing that survives a recreated StatefulSet or reused static ring flags (issue 14, item 3).

A StatefulSet deleted and created again (`kubectl delete sts --cascade=orphan`, a
Helm or Argo replace, a reinstall over a kept Redis) starts again at
`metadata.generation` 1, below the generation every bucket owner in the store
carries; `--shards` changed with `--ring-generation` kept (or lowered) is the same
trap. The shards must go on owning and writing their ring's buckets, and a shard
that owns none of them must say so (not ready, self-metrics) rather than serve
frozen series as if all were well.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubesim import SimProcess
from tests.shard.test_cluster import scale, start
from tests.support.cluster import NAMESPACE, STATEFULSET, ShardProcess, converge, statefulset
from tests.support.cluster import churn as churn_kinds
from tests.support.redis_server import RedisServer

Cluster = tuple[SimProcess, RedisServer, dict[int, ShardProcess], Path]


TARGETS = ("pods", "deployments.apps", "mongodbs.kubedb.com", "mysqls.kubedb.com")
"""What the churn mutates: target kinds, never the shards' own StatefulSet."""


def churn(sim: SimProcess, events: int, *, seed: int) -> None:
    churn_kinds(sim, events, seed=seed, rate=1000, resources=TARGETS)


def gauge(shard: ShardProcess, name: str) -> float:
    for line in shard.metrics().splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} in shard {shard.index}'s metrics")


def readiness(shard: ShardProcess) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{shard.port}/readyz", timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def recreate_statefulset(sim: SimProcess, replicas: int) -> None:
    """`kubectl delete sts --cascade=orphan` and apply it again: a new uid, generation 1."""
    ref = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": STATEFULSET, "namespace": NAMESPACE}
    sim.admin.bulk([{"op": "delete", **ref}])
    sim.admin.bulk([{"op": "create", "object": statefulset(replicas)}])


def statefulset_generation(sim: SimProcess) -> int:
    items = sim.admin.call("GET", f"/objects?apiVersion=apps/v1&kind=StatefulSet&namespace={NAMESPACE}")[
        "items"
    ]
    (sts,) = [o for o in items if o["metadata"]["name"] == STATEFULSET]
    return int(sts["metadata"]["generation"])


def wait_for(check: object, what: str, timeout: float = 30.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    redis = RedisServer()
    redis.start()
    sim = SimProcess(["--with-configs", "--scale", "2", "--seed", "12", "--mongodbs", "40"])
    sim.start()
    shards: dict[int, ShardProcess] = {}
    try:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        sim.admin.bulk([{"op": "create", "object": namespace}, {"op": "create", "object": statefulset(2)}])
        yield sim, redis, shards, tmp_path
    finally:
        for shard in shards.values():
            shard.stop()
        sim.stop()
        redis.close()


def test_running_shards_follow_a_recreated_statefulset_and_its_later_scale(cluster: Cluster) -> None:
    sim, redis, shards, logs = cluster
    scale(sim, 3)
    scale(sim, 2)
    assert statefulset_generation(sim) == 3
    for i in (0, 1):
        start(shards, i, sim, redis, logs)
    for shard in shards.values():
        shard.wait_ready()
    converge(sim, redis.url, what="two shards, generation 3")

    recreate_statefulset(sim, 2)
    assert statefulset_generation(sim) == 1
    scale(sim, 3)  # generation 2: still below the 3 every owner carries
    start(shards, 2, sim, redis, logs)
    shards[2].wait_ready()
    wait_for(lambda: gauge(shards[0], "panopticon_shard_ring_shards") == 3, "shard 0 to adopt 3 shards")
    for shard in shards.values():
        assert gauge(shard, "panopticon_shard_owned_buckets") > 0, shard.tail()
    churn(sim, 600, seed=21)
    converge(sim, redis.url, what="statefulset recreated, then scaled to 3")


def test_shards_restarted_over_a_kept_redis_own_their_buckets_again(cluster: Cluster) -> None:
    sim, redis, shards, logs = cluster
    scale(sim, 3)
    scale(sim, 2)
    for i in (0, 1):
        start(shards, i, sim, redis, logs)
    for shard in shards.values():
        shard.wait_ready()
    converge(sim, redis.url, what="two shards, generation 3")
    for shard in shards.values():
        shard.stop()

    # A reinstall: the StatefulSet and its pods are new, Redis kept its data.
    recreate_statefulset(sim, 2)
    churn(sim, 300, seed=22)  # what changed while no shard ran
    for i in (0, 1):
        start(shards, i, sim, redis, logs)
    for shard in shards.values():
        shard.wait_ready()
        assert gauge(shard, "panopticon_shard_owned_buckets") > 0, shard.tail()
    converge(sim, redis.url, what="reinstalled over a kept Redis")
    churn(sim, 300, seed=23)
    converge(sim, redis.url, what="churn after the reinstall")


@pytest.mark.parametrize("generations", [(1, 1), (5, 2)], ids=["kept", "lowered"])
def test_static_rings_changed_without_raising_the_generation_are_fenced_anew(
    tmp_path: Path, generations: tuple[int, int]
) -> None:
    before, after = generations
    redis = RedisServer()
    redis.start()
    sim = SimProcess(["--with-configs", "--scale", "2", "--seed", "13", "--mongodbs", "40"])
    sim.start()
    procs: dict[int, ShardProcess] = {}
    common = {"kubeconfig": sim.kubeconfig_path, "redis_url": redis.url, "log_dir": tmp_path}
    try:
        for i in (0, 1):
            flags = ("--shards", "2", "--ring-generation", str(before))
            procs[i] = ShardProcess(i, extra=flags, **common).start()
        for proc in procs.values():
            proc.wait_ready()
        converge(sim, redis.url, what="--shards 2")
        for proc in procs.values():
            proc.stop()
        for i in (0, 1, 2):
            flags = ("--shards", "3", "--ring-generation", str(after))
            procs[i] = ShardProcess(i, extra=flags, **common).start()
        for proc in procs.values():
            proc.wait_ready()
        churn(sim, 600, seed=24)
        converge(sim, redis.url, what=f"--shards 3 at ring generation {after} after {before}")
        for proc in procs.values():
            owned = gauge(proc, "panopticon_shard_owned_buckets")
            assert owned == gauge(proc, "panopticon_shard_ring_buckets") > 0, proc.tail()
    finally:
        for proc in procs.values():
            proc.stop()
        sim.stop()
        redis.close()


def test_a_shard_whose_ring_buckets_another_ring_holds_is_unready(tmp_path: Path) -> None:
    """Shard 1 runs a two-shard ring; a one-shard ring started later takes every bucket.
    Shard 1, refused everywhere, owns none of its ring's buckets: not ready."""
    redis = RedisServer()
    redis.start()
    sim = SimProcess(["--with-configs", "--scale", "2", "--seed", "14", "--mongodbs", "20"])
    sim.start()
    procs: list[ShardProcess] = []
    common = {"kubeconfig": sim.kubeconfig_path, "redis_url": redis.url, "log_dir": tmp_path}
    try:
        stale = ShardProcess(1, extra=("--shards", "2", "--ring-generation", "1"), **common).start()
        procs.append(stale)
        stale.wait_ready()
        newer = ShardProcess(0, extra=("--shards", "1", "--ring-generation", "2"), **common).start()
        procs.append(newer)
        newer.wait_ready()
        churn(sim, 600, seed=25)  # writes to every bucket: shard 1's are refused
        wait_for(lambda: readiness(stale)[0] == 503, "shard 1 to turn unready", timeout=30)
        assert "owns none" in readiness(stale)[1]
        assert gauge(stale, "panopticon_shard_owned_buckets") == 0
        assert gauge(stale, "panopticon_shard_ring_buckets") > 0
        assert gauge(stale, "panopticon_shard_ready") == 0
        converge(sim, redis.url, what="the one-shard ring serves everything")
    finally:
        for proc in procs:
            proc.stop()
        sim.stop()
        redis.close()
