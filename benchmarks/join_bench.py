"""Joined labels (`from`, issue 17): render throughput with joins vs without, and
memory per joined object, in the same run.

Objects: the simulator's native workload (kubesim.natives: Namespaces, Nodes,
Deployments, their ReplicaSets and Pods with controller ownerReferences, spec.nodeName);
each Namespace gets a `team` label and each Node a zone label, so every join resolves.

Render (one program, `Program.render` per Pod, best of R, objects per second):
- `joins`: the issue's Pod `info` metric: team from the Namespace, zone from the Node,
  deployment from the owner chain (Pod -> ReplicaSet -> Deployment);
- `local`: the same three labels read on the Pod itself (no `from`): what a label
  costs without a join;
- `none`: the metric without those labels.

Memory (tracemalloc, bytes per related object): what a `RelatedIndex` keeps per
Namespace, Node, Deployment (records) and ReplicaSet (a chain link), against the same
objects kept whole (what a cache of full related objects would hold).

    .venv/bin/python benchmarks/join_bench.py [--namespaces 20] [--deployments 25] [--nodes 100]
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import orjson

from kubesim.natives import WorkloadSpec, native_objects
from panopticon.render.program import Program, compile_config
from panopticon.render.related import Needs, RelatedIndex

ZONE = "topology.kubernetes.io/zone"
LABELS = [
    {"key": "team", "valuePath": ".metadata.labels.team", "from": "namespace"},
    {"key": "zone", "valuePath": f".metadata.labels['{ZONE}']", "from": "node"},
    {"key": "deployment", "valuePath": ".metadata.name", "from": "owner:apps/v1/Deployment"},
]


def config(labels: list[dict[str, Any]]) -> Program:
    body = {
        "apiVersion": "metrics.appscode.com/v1alpha1",
        "kind": "MetricsConfiguration",
        "metadata": {"name": "pods"},
        "spec": {
            "targetRef": {"apiVersion": "v1", "kind": "Pod"},
            "metrics": [
                {
                    "name": "info",
                    "help": "Pod info with its namespace's team and its owning Deployment",
                    "type": "gauge",
                    "labels": labels,
                    "metricValue": {"value": 1},
                }
            ],
        },
    }
    compiled = compile_config(body)
    assert compiled.program is not None, compiled.errors
    return compiled.program


def workload(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    spec = WorkloadSpec(
        namespaces=args.namespaces,
        deployments=args.deployments,
        pods_per_deployment=args.pods,
        services=0,
        configmaps=0,
        secrets=0,
        mongodbs=0,
        nodes=args.nodes,
    )
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for i, obj in enumerate(native_objects(spec)):
        labels = obj["metadata"].setdefault("labels", {})
        if obj["kind"] == "Namespace":
            labels["team"] = f"team-{i % 7}"
        elif obj["kind"] == "Node":
            labels[ZONE] = f"zone-{i % 3}"
        by_kind.setdefault(obj["kind"], []).append(obj)
    return by_kind


def best_of(repeats: int, fn: Callable[[], int]) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def allocated(build: Callable[[], Any]) -> tuple[int, Any]:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--deployments", type=int, default=25, help="per namespace, one ReplicaSet each")
    parser.add_argument("--pods", type=int, default=4, help="per deployment")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--core", type=int, default=1, help="CPU to pin to (-1: no pinning)")
    args = parser.parse_args()
    if args.core >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    by_kind = workload(args)
    pods = by_kind["Pod"]
    joins = config(LABELS)
    local = config([{k: v for k, v in label.items() if k != "from"} for label in LABELS])
    none = config([])
    index = RelatedIndex(Needs.of([joins.joins]), complete=True)
    for kind in ("Namespace", "Node", "Deployment", "ReplicaSet"):
        for obj in by_kind[kind]:
            index.apply("ADDED", obj)
    sample = joins.render(pods[0], related=index).families
    assert 'team="' in next(iter(sample.values())) and 'deployment="' in next(iter(sample.values())), sample

    def render(program: Program) -> Callable[[], int]:
        return lambda: sum(len(program.render(p, related=index).families) for p in pods)

    print(f"{len(pods)} Pods; interpreter {sys.executable} ({sys.version.split()[0]})")
    # Interleaved (none, local, joins, none, ...), best of R each: a neighbour's load on
    # this shared machine then weighs on all three alike.
    times = {"none": float("inf"), "local": float("inf"), "joins": float("inf")}
    programs = {"none": none, "local": local, "joins": joins}
    for _ in range(args.repeats):
        for name, program in programs.items():
            times[name] = min(times[name], best_of(1, render(program)))
    for name, t in times.items():
        ratio = "" if name == "joins" else f"   joins take {times['joins'] / t:.2f}x its time"
        print(f"  {name:6s} {len(pods) / t:10,.0f} Pods/s  {t / len(pods) * 1e6:6.2f} us/Pod{ratio}")

    print("memory per related object (tracemalloc):")
    for kind in ("Namespace", "Node", "Deployment", "ReplicaSet"):
        objects = [orjson.loads(orjson.dumps(o)) for o in by_kind[kind]]
        projected, _ = allocated(lambda objects=objects: _fed(joins, objects))
        whole, _ = allocated(lambda objects=objects: copy.deepcopy(objects))
        n = len(objects)
        print(f"  {kind:11s} x{n:5d}: index {projected / n:7.0f} B/object   whole {whole / n:7.0f} B/object")
    return 0


def _fed(program: Program, objects: list[dict[str, Any]]) -> RelatedIndex:
    index = RelatedIndex(Needs.of([program.joins]), complete=True)
    for obj in objects:
        index.apply("ADDED", obj)
    return index


if __name__ == "__main__":
    raise SystemExit(main())
