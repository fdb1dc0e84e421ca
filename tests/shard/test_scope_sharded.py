"""Selectors and filters over two shard processes and Redis, against the simulator.

A config selects Widgets by label and filters them by a status field. Relabelling an
object out of the selector, or changing its status so the filter turns false,
removes its series from the store within 5 seconds; the reverse brings them back;
Widgets outside the scope never get series, whichever shard owns them. The only
config of the kind has a selector, so the API server applies it (relabelled objects
come as DELETED and ADDED events of the selector-filtered watch).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesim import SimProcess
from tests.panopticon.kube.test_discovery import widget, widget_crd
from tests.shard.test_target_crd import eventually
from tests.support.cluster import NAMESPACE, sharded_cluster, statefulset, stored_lines
from tests.support.redis_server import RedisServer

CONFIG = {
    "apiVersion": "metrics.appscode.com/v1alpha1",
    "kind": "MetricsConfiguration",
    "metadata": {"name": "widgets"},
    "spec": {
        "targetRef": {"apiVersion": "example.com/v1", "kind": "Widget"},
        "selector": {"matchLabels": {"team": "a"}},
        "filter": {
            "params": [{"key": "phase", "valuePath": ".status.phase"}],
            "expression": "phase != 'Done'",
        },
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
WIDGETS = 40


def labeled(i: int, team: str, phase: str = "Running") -> dict[str, Any]:
    body = widget(f"w{i}", i)
    body["metadata"]["labels"] = {"team": team}
    body["status"] = {"phase": phase}
    return body


def names(redis: RedisServer) -> set[str]:
    out = set()
    for line in stored_lines(redis.url):
        if line.startswith("example_com_widget_size{"):
            out.add(line.split('widget="', 1)[1].split('"', 1)[0])
    return out


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[SimProcess, RedisServer]]:
    ops: list[dict[str, Any]] = [
        {"op": "create", "object": widget_crd()},
        {
            "op": "create",
            "object": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        },
        {"op": "create", "object": statefulset(2)},
        {"op": "create", "object": CONFIG},
    ]
    ops += [{"op": "create", "object": labeled(i, "a" if i % 2 else "b")} for i in range(WIDGETS)]
    with sharded_cluster(ops, tmp_path) as (sim, redis, _):
        yield sim, redis


def test_relabels_and_filter_changes_move_objects_in_and_out_within_5_seconds(
    cluster: tuple[SimProcess, RedisServer],
) -> None:
    sim, redis = cluster
    selected = {f"w{i}" for i in range(WIDGETS) if i % 2}
    eventually(lambda: names(redis) == selected, "the selected widgets' series", 30)
    # The only config of the kind has a selector: the API server applies it (issue 17),
    # so the shards list and watch the selected widgets only.
    widget_requests = [r for r in sim.admin.requests()["items"] if r["path"].endswith("/widgets")]
    assert widget_requests
    assert {r["query"].get("labelSelector") for r in widget_requests} == {"team=a"}

    def patch(i: int, patch: dict[str, Any]) -> dict[str, Any]:
        ref = {"apiVersion": "example.com/v1", "kind": "Widget", "name": f"w{i}", "namespace": "default"}
        return {"op": "patch", **ref, "patch": patch}

    def apply(*ops: dict[str, Any]) -> None:
        assert {r["code"] for r in sim.admin.bulk(list(ops))["results"]} == {200}

    # Out of the selector (team a -> b), into it (b -> a).
    started = time.monotonic()
    apply(
        patch(1, {"metadata": {"labels": {"team": "b"}}}), patch(2, {"metadata": {"labels": {"team": "a"}}})
    )
    eventually(lambda: names(redis) == (selected - {"w1"}) | {"w2"}, "the relabel to apply", 5)
    assert time.monotonic() - started < 5

    # The filter turns false (Done), then true again. (The simulator's patch writes
    # status too, as the admin API does for tests.)
    apply(patch(3, {"status": {"phase": "Done"}}))
    eventually(lambda: "w3" not in names(redis), "the filtered-out widget's series to go", 5)
    apply(patch(3, {"status": {"phase": "Running"}}))
    eventually(lambda: "w3" in names(redis), "the widget's series back", 5)
    assert names(redis) == (selected - {"w1"}) | {"w2"}
