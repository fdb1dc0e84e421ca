"""A target kind whose discovery fails while a shard starts (issue 14, item 2).

An aggregated API server down, or one group-version's discovery document failing:
the kind cannot be resolved, but it is not gone. Its stored series must survive
(garbage collection must not take its families for dead), the shard must say it is
not ready, and the kind must come back by itself once discovery answers again, with
no unrelated config or CRD event to trigger it.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

from kubesim import SimProcess
from tests.support.cluster import ShardProcess, converge, stored_lines
from tests.support.redis_server import RedisServer

GROUP_VERSION = "kubedb.com/v1"
"""MongoDB, MySQL, Redis ... of the example workload: families `kubedb_*`."""


def readiness(shard: ShardProcess) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{shard.port}/readyz", timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, "not listening yet"


def gauge(shard: ShardProcess, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in shard.metrics().splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def test_a_kind_whose_discovery_fails_at_start_keeps_its_series_and_returns_by_itself(
    tmp_path: Path,
) -> None:
    redis = RedisServer()
    redis.start()
    sim = SimProcess(["--with-configs", "--scale", "1", "--mongodbs", "20", "--seed", "4"])
    sim.start()
    shard: ShardProcess | None = None
    try:
        common = {"kubeconfig": sim.kubeconfig_path, "redis_url": redis.url, "log_dir": tmp_path}
        shard = ShardProcess(0, extra=("--shards", "1"), **common).start()
        shard.wait_ready()
        before = converge(sim, redis.url, what="first run")
        kubedb = {line for line in before if line.startswith("kubedb_")}
        assert len(kubedb) > 20
        shard.stop()

        # The shard restarts while kubedb.com/v1's discovery document answers 503.
        outage = 12.0
        sim.admin.fail_discovery(GROUP_VERSION, seconds=outage)
        failing_until = time.monotonic() + outage
        shard = ShardProcess(0, extra=("--shards", "1"), **common).start()
        seen_unready = False
        while time.monotonic() < failing_until - 2:
            status, text = readiness(shard)
            if status == 503 and "discovery" in text:
                seen_unready = True
            assert status != 200, f"ready while {GROUP_VERSION} cannot be resolved: {text}"
            stored = stored_lines(redis.url)
            lost = [line for line in kubedb if line not in stored]
            assert not lost, f"{len(lost)} series of an unresolved kind deleted, e.g. {lost[:3]}"
            time.sleep(0.5)
        assert seen_unready, shard.tail()
        assert gauge(shard, 'panopticon_shard_unresolved_kinds{reason="discovery_failed"}') >= 1

        # The fault ends; nothing else happens in the cluster. The kind comes back.
        shard.wait_ready(timeout=60)
        converge(sim, redis.url, what="after the discovery outage")
        assert gauge(shard, 'panopticon_shard_unresolved_kinds{reason="discovery_failed"}') == 0
    finally:
        if shard is not None:
            shard.stop()
        sim.stop()
        redis.close()
