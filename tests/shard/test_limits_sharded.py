"""Series caps over shard processes and Redis, against the simulator.

Two configs target Widgets; one is capped (`spec.limits.series`). Whatever shard owns
which bucket, the store ends up holding exactly what the offline render (with the
same cap) gives: the capped config's first objects in uid-hash order, and every
series of the other config. The status shows `CardinalityLimited` with the counts
summed over the shards, the shards' self-metrics count the series not written, a
rescale from 2 to 3 shards keeps the same series, and deleting objects until the
config fits readmits the objects dropped before and clears the condition.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesim import SimProcess
from panopticon.render.offline import render_exposition
from panopticon.sharding.limits import order_key
from shard.configs import ConfigSet
from tests.panopticon.kube.test_discovery import widget, widget_crd
from tests.shard.test_cluster import scale
from tests.shard.test_target_crd import eventually
from tests.support.cluster import (
    NAMESPACE,
    ShardProcess,
    _get,
    describe_difference,
    sharded_cluster,
    statefulset,
    stored_lines,
)
from tests.support.redis_server import RedisServer

CONFIGS = "/apis/metrics.appscode.com/v1alpha1/metricsconfigurations"
WIDGETS = 60
Lines = collections.Counter[str]
CAP = 50  # two series per widget: 25 widgets
PATH = ".spec.size"
DROPPED = re.compile(r'^panopticon_shard_series_dropped\{config="capped"\} (\S+)$', re.M)


def config(name: str, metrics: int, limits: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "targetRef": {"apiVersion": "example.com/v1", "kind": "Widget"},
        "metrics": [
            {
                "name": f"{name}_{i}",
                "help": "h",
                "type": "gauge",
                "metricValue": {"valueFromPath": ".spec.size"},
            }
            for i in range(metrics)
        ],
    }
    if limits is not None:
        spec["limits"] = limits
    return {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
            "metadata": {"name": name}, "spec": spec}  # fmt: skip


def expected(sim: SimProcess, max_series: int | None = None) -> Lines:
    """The offline render of the simulator's configs and Widgets, caps applied."""
    configs = ConfigSet()
    configs.schemas.add_crd(widget_crd())
    for body in _get(sim, CONFIGS)["items"]:
        configs.upsert(body)
    objects = [
        {**item, "apiVersion": "example.com/v1", "kind": "Widget"}
        for item in _get(sim, "/apis/example.com/v1/widgets")["items"]
    ]
    expo = render_exposition(configs.resolution, objects, max_series_per_config=max_series, order=order_key)
    text = expo.to_bytes().decode()
    return collections.Counter(line for line in text.splitlines() if line and not line.startswith("#"))


def converge(
    sim: SimProcess, redis: RedisServer, what: str, timeout: float = 40.0
) -> collections.Counter[str]:
    state: dict[str, Any] = {}

    def same() -> bool:
        state["want"], state["got"] = expected(sim), stored_lines(redis.url)
        return bool(state["want"] == state["got"])

    try:
        eventually(same, what, timeout)
    except AssertionError as e:
        raise AssertionError(f"{e}:\n{describe_difference(state['want'], state['got'])}") from None
    return state["got"]  # type: ignore[no-any-return]


def condition(sim: SimProcess) -> dict[str, Any]:
    status = _get(sim, f"{CONFIGS}/capped").get("status") or {}
    found = [c for c in status.get("conditions", []) if c.get("type") == "CardinalityLimited"]
    return found[0] if found else {}


def dropped_metric(shards: list[ShardProcess]) -> float:
    total = 0.0
    for shard in shards:
        match = re.search(
            r'^panopticon_shard_series_dropped\{config="capped"\} (\S+)$', shard.metrics(), re.M
        )
        total += float(match.group(1)) if match else 0.0
    return total


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[SimProcess, RedisServer, list[ShardProcess], Path]]:
    ops: list[dict[str, Any]] = [
        {"op": "create", "object": widget_crd()},
        {
            "op": "create",
            "object": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        },
        {"op": "create", "object": statefulset(2)},
        {"op": "create", "object": config("capped", 2, {"series": CAP})},
        {"op": "create", "object": config("free", 1)},
    ]
    ops += [{"op": "create", "object": widget(f"w{i}", i)} for i in range(WIDGETS)]
    with sharded_cluster(ops, tmp_path) as (sim, redis, shards):
        yield sim, redis, shards, tmp_path


def capped_names(lines: collections.Counter[str]) -> set[str]:
    return {
        line.split('widget="', 1)[1].split('"', 1)[0]
        for line in lines
        if line.startswith("example_com_widget_capped_0{")
    }


def test_two_shards_keep_what_the_offline_render_keeps_through_a_rescale_and_deletes(
    cluster: tuple[SimProcess, RedisServer, list[ShardProcess], Path],
) -> None:
    sim, redis, shards, tmp_path = cluster
    stored = converge(sim, redis, "the capped store to match the offline render")
    kept = capped_names(stored)
    assert len(kept) == CAP // 2
    assert sum(1 for line in stored if line.startswith("example_com_widget_free_0{")) == WIDGETS
    dropped = 2 * (WIDGETS - CAP // 2)
    message = f"{dropped} of {2 * WIDGETS} series not written: over the cap of {CAP}"
    eventually(
        lambda: condition(sim).get("message", "").startswith(message), "the CardinalityLimited condition", 20
    )
    assert condition(sim)["status"] == "True" and condition(sim)["reason"] == "SeriesCapReached"
    eventually(lambda: dropped_metric(shards) == dropped, "the shards' dropped-series gauges", 10)

    # 2 -> 3 shards: buckets move, the same objects stay kept.
    scale(sim, 3)
    shards.append(
        ShardProcess(2, kubeconfig=sim.kubeconfig_path, redis_url=redis.url, log_dir=tmp_path).start()
    )
    shards[2].wait_ready()
    assert capped_names(converge(sim, redis, "the store after the rescale")) == kept
    eventually(lambda: dropped_metric(shards) == dropped, "the gauges after the rescale", 10)

    # Delete kept widgets: dropped ones are let in again, first in hash order.
    gone = sorted(kept)[:5]
    deletes = [
        {"op": "delete", "apiVersion": "example.com/v1", "kind": "Widget", "name": n, "namespace": "default"}
        for n in gone
    ]
    assert {r["code"] for r in sim.admin.bulk(deletes)["results"]} == {200}
    after = capped_names(converge(sim, redis, "readmissions after deletes"))
    assert len(after) == CAP // 2 and not after & set(gone) and after > kept - set(gone)

    # Delete until everything fits: the condition clears.
    rest = [f"w{i}" for i in range(WIDGETS) if f"w{i}" not in gone][: WIDGETS - len(gone) - 20]
    deletes = [
        {"op": "delete", "apiVersion": "example.com/v1", "kind": "Widget", "name": n, "namespace": "default"}
        for n in rest
    ]
    assert {r["code"] for r in sim.admin.bulk(deletes)["results"]} == {200}
    assert len(capped_names(converge(sim, redis, "every remaining widget kept"))) == 20
    eventually(lambda: condition(sim).get("status") == "False", "the condition to clear", 20)
    assert condition(sim)["message"] == f"40 series, within the cap of {CAP}"
    eventually(lambda: dropped_metric(shards) == 0, "the gauges to reach 0", 10)

    # The cap removed: the condition and the gauges go.
    patch = {"op": "patch", "apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
             "name": "capped", "patch": {"spec": {"limits": None}}}  # fmt: skip
    assert {r["code"] for r in sim.admin.bulk([patch])["results"]} == {200}
    eventually(lambda: not condition(sim), "the CardinalityLimited condition to go", 20)
    eventually(lambda: all("series_dropped{" not in s.metrics() for s in shards), "the gauges to go", 10)
