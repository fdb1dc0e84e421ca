"""An object deleted and created again under the same name is never served twice (issue 14).

The new object has a new uid, so its bucket is usually another shard's. Before the
fix, the new uid's owner wrote its series while the old uid's owner had not applied
the delete yet, and every scrape in between served both: here the old owner is
frozen (SIGSTOP: a shard stalled, restarting or far behind), so the overlap lasted
as long as the freeze. Now the new owner, which saw the DELETED in its own watch,
deletes the old uid's series before it writes the new ones.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from kubesim import SimProcess
from panopticon.sharding.ring import Ring
from tests.chaos.inflight import InFlight, check_exposition
from tests.support.cluster import NAMESPACE, AggregatorProcess, ShardProcess, converge
from tests.support.redis_server import RedisServer

NAME = "web"
REF = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": NAME, "namespace": NAMESPACE}


def web(replicas: int) -> dict[str, Any]:
    labels = {"app": NAME}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "serviceName": NAME,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        },
    }


def uid_of_web(sim: SimProcess) -> str:
    request = urllib.request.Request(
        f"{sim.url}/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/{NAME}",
        headers={"Authorization": f"Bearer {sim.token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        return str(orjson.loads(r.read())["metadata"]["uid"])


def scrape(aggregator: AggregatorProcess) -> str:
    with urllib.request.urlopen(f"http://{aggregator.target}/metrics", timeout=20) as r:
        return str(r.read().decode())


def test_a_recreated_object_whose_old_owner_lags_is_never_served_twice(tmp_path: Path) -> None:
    redis = RedisServer()
    redis.start()
    sim = SimProcess(["--with-configs", "--scale", "1", "--mongodbs", "10", "--seed", "7"])
    sim.start()
    shards: list[ShardProcess] = []
    aggregator: AggregatorProcess | None = None
    frozen: ShardProcess | None = None
    try:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        sim.admin.bulk([{"op": "create", "object": namespace}, {"op": "create", "object": web(1)}])
        common = {"kubeconfig": sim.kubeconfig_path, "redis_url": redis.url, "log_dir": tmp_path}
        shards = [ShardProcess(i, extra=("--shards", "2"), **common).start() for i in range(2)]
        for shard in shards:
            shard.wait_ready()
        aggregator = AggregatorProcess(redis_url=redis.url, log_dir=tmp_path).start()
        converge(sim, redis.url, what="first sync")

        ring = Ring(2, 1)
        old_owner = ring.owner_of_uid(uid_of_web(sim))
        frozen = shards[old_owner]
        assert frozen.proc is not None
        os.kill(frozen.proc.pid, signal.SIGSTOP)

        # Delete and create again until the new uid lands on the running shard (the
        # frozen one applies nothing meanwhile: every uid it skipped is dead too).
        for _ in range(30):
            sim.admin.bulk([{"op": "delete", **REF}])
            sim.admin.bulk([{"op": "create", "object": web(2)}])
            if ring.owner_of_uid(uid_of_web(sim)) != old_owner:
                break
        else:
            raise AssertionError("30 recreations all landed on the frozen shard")

        counts = InFlight()
        new_served = 0
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            body = scrape(aggregator)
            check_exposition(body, counts)
            new_served += any(
                line.startswith("kube_statefulset_replicas{") and f'statefulset="{NAME}"' in line
                for line in body.splitlines()
                if line.endswith(" 2")
            )
            time.sleep(0.1)
        assert new_served, "the new object's series were never served while its old owner was frozen"
        assert counts.duplicate_series == 0, f"{counts.duplicate_series} duplicate series: {counts.examples}"
        assert counts.invalid == 0, counts.examples

        os.kill(frozen.proc.pid, signal.SIGCONT)
        frozen = None
        converge(sim, redis.url, what="after the old owner caught up")
        buried = sum(
            float(line.rsplit(" ", 1)[1])
            for shard in shards
            for line in shard.metrics().splitlines()
            if line.startswith("panopticon_shard_predecessors_buried_total")
        )
        assert buried >= 1
    finally:
        if frozen is not None and frozen.proc is not None:
            os.kill(frozen.proc.pid, signal.SIGCONT)
        if aggregator is not None:
            aggregator.stop()
        for shard in shards:
            shard.stop()
        sim.stop()
        redis.close()
