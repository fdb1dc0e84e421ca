"""A target kind's CRD deleted under a running shard, then installed again.

The simulator deletes a CRD as the API server does (DELETED for every custom
resource, then the type leaves discovery and its paths answer 404). The shard must
say so in the config's status (`TargetNotFound`) within the status interval, stop
asking for the missing kind (no 404 logged in a loop), and when the CRD returns,
serve the kind's series again within 5 seconds, not after the reflector's backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesim import SimProcess
from tests.panopticon.kube.test_discovery import widget, widget_crd
from tests.support.cluster import ShardProcess, _get, stored_lines
from tests.support.redis_server import RedisServer

CONFIGS = "/apis/metrics.appscode.com/v1alpha1/metricsconfigurations"
STATUS_INTERVAL = 2.0


CONFIG = {
    "apiVersion": "metrics.appscode.com/v1alpha1",
    "kind": "MetricsConfiguration",
    "metadata": {"name": "widgets"},
    "spec": {
        "targetRef": {"apiVersion": "example.com/v1", "kind": "Widget"},
        "metrics": [
            {
                "name": "size",
                "help": "Widget size.",
                "type": "gauge",
                "metricValue": {"valueFromPath": ".spec.size"},
            }
        ],
    },
}


def ready(sim: SimProcess) -> dict[str, Any]:
    status = _get(sim, f"{CONFIGS}/widgets").get("status") or {}
    return next((c for c in status.get("conditions", []) if c.get("type") == "Ready"), {})


def eventually(check: Callable[[], bool], what: str, timeout: float) -> float:
    """Seconds until `check()` held; fails after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[SimProcess, RedisServer, ShardProcess]]:
    redis = RedisServer()
    redis.start()
    sim = SimProcess(["--scale", "0", "--namespaces", "0", "--mongodbs", "0"])
    sim.start()
    result = sim.admin.bulk(
        [
            {"op": "create", "object": widget_crd()},
            {"op": "create", "object": widget("w1", 3)},
            {"op": "create", "object": CONFIG},
        ]
    )
    assert [r["code"] for r in result["results"]] == [200, 200, 200], result
    shard = ShardProcess(
        0,
        kubeconfig=sim.kubeconfig_path,
        redis_url=redis.url,
        log_dir=tmp_path,
        extra=("--shards", "1", "--status-interval", str(STATUS_INTERVAL)),
    ).start()
    try:
        yield sim, redis, shard
    finally:
        shard.stop()
        sim.stop()
        redis.close()


def widget_series(redis: RedisServer) -> set[str]:
    return {line for line in stored_lines(redis.url) if line.startswith("example_com_widget_size")}


def test_a_deleted_target_crd_is_reported_and_its_return_picked_up_at_once(
    cluster: tuple[SimProcess, RedisServer, ShardProcess],
) -> None:
    sim, redis, shard = cluster
    shard.wait_ready()
    eventually(lambda: bool(widget_series(redis)), "the widget's series", 30)
    eventually(lambda: ready(sim).get("reason") == "Rendering", "a Ready status", 30)

    sim.admin.bulk([{"op": "delete", "apiVersion": "apiextensions.k8s.io/v1",
                     "kind": "CustomResourceDefinition", "name": "widgets.example.com"}])  # fmt: skip
    took = eventually(
        lambda: ready(sim).get("reason") == "TargetNotFound", "TargetNotFound", STATUS_INTERVAL + 10
    )
    assert ready(sim)["status"] == "False"
    assert took <= STATUS_INTERVAL + 5, took
    eventually(lambda: not widget_series(redis), "the deleted widgets' series to go", 10)
    # No 404 loop: the kind is no longer asked for while it does not exist.
    before = shard.tail(10_000).count("widgets.example.com/v1")
    time.sleep(4)
    assert shard.tail(10_000).count("widgets.example.com/v1") - before == 0, shard.tail(20)

    returned = time.monotonic()
    sim.admin.bulk([{"op": "create", "object": widget_crd()}, {"op": "create", "object": widget("w2", 5)}])
    eventually(lambda: bool(widget_series(redis)), "the widget's series back", 5)
    assert time.monotonic() - returned < 5
    assert [line.split("}")[0] for line in widget_series(redis)] == [
        'example_com_widget_size{widget="w2",namespace="default"'
    ]
    eventually(lambda: ready(sim).get("reason") == "Rendering", "Ready again", STATUS_INTERVAL + 10)
