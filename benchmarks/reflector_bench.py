"""Reflector decoding throughput on one core, against baselines over the same streams.

    .venv/bin/python benchmarks/reflector_bench.py [--pods 20000] [--updates 10000] [--seed 1] [--repeat 3]

Starts `panopticon sim` as its own process pinned to CPU 0 (this process, the client,
pins itself to CPU 1) and loads a seeded native workload of `--pods` pods (about
5.4 KB of JSON each, managedFields included). Every method is measured by this
process's CPU time, so the figures are events per second of one core, over two
streams:

1. sync: the initial events of a watch-list of all pods (ADDED x pods, each uid new);
2. watch: `--updates` MODIFIED events replayed from the watch ring (annotations of
   `--hot` pods patched round-robin, as steady-state churn touches the same objects).

Methods, all reading the same bytes:

- `json.loads` and `orjson.loads` per line: the floor of any decoder on aiohttp
  (lines split by the project's splitter);
- `orjson + uid check (1/3 owned)`: the naive sharded path, parse then filter;
- the reflector owning every bucket (splitting, decoding, view diff, events), as a
  target reflector of a single shard;
- the reflector owning 1/3 of the buckets on a server that does not filter: the
  non-owned fast path decides from the raw bytes and skips two thirds unparsed;
- (sync only) the `kubernetes` package's `Watch.stream` (urllib3, V1Pod models)
  over its first `--k8s-events` events.

Target (issue 3): the reflector >= 30,000 events/s on one core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from kubesim import AdminClient, SimProcess
from panopticon.kube.client import KubeClient
from panopticon.kube.credentials import load_credentials
from panopticon.kube.discovery import ResourceRef
from panopticon.kube.lines import LineSplitter
from panopticon.kube.reflector import Reflector
from panopticon.sharding.buckets import BucketSpace, ShardFilter

SERVER_CPU, CLIENT_CPU = 0, 1
PODS = ResourceRef("", "v1", "pods", "Pod", True)
WATCH = {"watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": "600"}
WATCH_LIST = {**WATCH, "sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan"}
SPACE = BucketSpace(1024)
THIRD = ShardFilter(SPACE, frozenset(range(0, 1024, 3)))
ALL = ShardFilter(SPACE, frozenset(range(1024)))  # a shard owning every bucket, as a single shard does

Result = tuple[int, float, float]  # events, CPU seconds, wall seconds
Decode = Callable[[bytes], Any]


def pin(pid: int, cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(pid, {cpu})


def uid_check(line: bytes) -> bool:
    return THIRD.contains(orjson.loads(line)["object"]["metadata"]["uid"])


BASELINES: dict[str, Decode] = {
    "json.loads per line (stdlib)": json.loads,
    "orjson.loads per line": orjson.loads,
    "orjson + uid check (1/3 owned)": uid_check,
}
REFLECTORS: dict[str, ShardFilter | None] = {
    "reflector, all owned": ALL,
    "reflector, 1/3 owned (fast path)": THIRD,
}


async def read_lines(client: KubeClient, params: dict[str, str], decode: Decode, *, count: int) -> Result:
    """Decode `count` object events of one watch, timed from the request."""
    cpu, wall = time.process_time(), time.perf_counter()
    n = 0
    splitter = LineSplitter()
    async with client.stream(PODS.path, params) as resp:
        async for chunk in resp.content.iter_any():
            for line in splitter.feed(chunk):
                if line.startswith(b'{"type":"BOOKMARK"'):
                    continue
                decode(line)
                n += 1
                if n == count:
                    return n, time.process_time() - cpu, time.perf_counter() - wall
    raise RuntimeError(f"the watch ended after {n} of {count} events")


async def reflector_sync(client: KubeClient, shard_filter: ShardFilter | None) -> Result:
    """Lines received until the reflector's first SYNCED (a watch-list)."""
    r = Reflector(client, PODS, shard_filter=shard_filter, seed=1)
    cpu, wall = time.process_time(), time.perf_counter()
    async with contextlib.aclosing(r.events()) as events:
        async for ev in events:
            if ev.type == "SYNCED":
                return r.stats.lines - 1, time.process_time() - cpu, time.perf_counter() - wall
    raise RuntimeError("unreachable")


async def reflector_replay(
    client: KubeClient, shard_filter: ShardFilter | None, churn: Callable[[], Awaitable[str]]
) -> Result:
    """Sync, let `churn` make the updates while not reading, then time their processing
    up to the last one (which is on a pod every filter owns)."""
    r = Reflector(client, PODS, shard_filter=shard_filter, seed=1)
    async with contextlib.aclosing(r.events()) as events:
        async for ev in events:
            if ev.type == "SYNCED":
                break
        last_rv = await churn()
        lines = r.stats.lines
        cpu, wall = time.process_time(), time.perf_counter()
        async for ev in events:
            if ev.rv == last_rv:
                return r.stats.lines - lines, time.process_time() - cpu, time.perf_counter() - wall
    raise RuntimeError("unreachable")


class Churn:
    """Patches `hot` pods round-robin; the last patch of each round hits an owned pod."""

    def __init__(self, admin: AdminClient, pods: list[dict[str, Any]], *, hot: int, updates: int) -> None:
        owned = [p for p in pods if THIRD.contains(p["metadata"]["uid"])]
        others = [p for p in pods if p is not owned[0]]
        self.admin = admin
        self.targets = [*others[: hot - 1], owned[0]]
        self.updates = updates
        self.round = 0

    def run(self) -> tuple[int, str]:
        """Make the updates; the revision before them and the RV of the last one."""
        self.round += 1
        before = int(self.admin.state()["revision"])
        ops = []
        for i in range(self.updates):
            pod = self.targets[(i - self.updates) % len(self.targets)]  # ends on the owned one
            meta = pod["metadata"]
            ops.append(
                {
                    "op": "patch",
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "patch": {"metadata": {"annotations": {"bench": f"{self.round}-{i}"}}},
                }
            )
        results = self.admin.bulk(ops)["results"]
        assert all(r["code"] == 200 for r in results), results[:3]
        return before, str(results[-1]["resourceVersion"])


async def bench(args: argparse.Namespace) -> None:
    pin(0, CLIENT_CPU)
    sim_args = ["--seed", str(args.seed), "--scale", "0", "--namespaces", "0", "--nodes", "0"]
    sim_args += ["--compaction-window", "0", "--no-gzip", "--bookmark-interval", "3600"]
    with SimProcess(sim_args, timeout=120) as proc:
        assert proc.proc is not None
        pin(proc.proc.pid, SERVER_CPU)
        admin = AdminClient(proc.url, proc.token, timeout=600)
        per_ns = 1000
        spec = {
            "namespaces": max(1, args.pods // per_ns),
            "deployments": 10,
            "pods_per_deployment": per_ns // 10,
            **dict.fromkeys(("services", "configmaps", "secrets", "mongodbs"), 0),
            "nodes": 10,
            "seed": args.seed,
        }
        admin.load_workload(native=spec)
        pods = admin.call("GET", "/objects?apiVersion=v1&kind=Pod")["items"]
        churn = Churn(admin, pods, hot=args.hot, updates=args.updates)
        kubeconfig = str(proc.kubeconfig_path)
        sync_runs: dict[str, list[Result]] = {name: [] for name in (*BASELINES, *REFLECTORS)}
        watch_runs: dict[str, list[Result]] = {name: [] for name in (*BASELINES, *REFLECTORS)}

        async def make_updates() -> str:
            return (await asyncio.to_thread(churn.run))[1]

        async with KubeClient(load_credentials(kubeconfig)) as client:
            for _ in range(args.repeat):  # methods interleaved, so drift hits all alike
                for name, decode in BASELINES.items():
                    sync_runs[name].append(await read_lines(client, WATCH_LIST, decode, count=len(pods)))
                for name, shard_filter in REFLECTORS.items():
                    sync_runs[name].append(await reflector_sync(client, shard_filter))
                for name, decode in BASELINES.items():
                    before, _ = await asyncio.to_thread(churn.run)
                    params = {**WATCH, "resourceVersion": str(before)}
                    watch_runs[name].append(await read_lines(client, params, decode, count=args.updates))
                for name, shard_filter in REFLECTORS.items():
                    watch_runs[name].append(await reflector_replay(client, shard_filter, make_updates))
        sync = {name: median(runs) for name, runs in sync_runs.items()}
        watch = {name: median(runs) for name, runs in watch_runs.items()}
        sync["kubernetes Watch.stream (models)"] = await asyncio.to_thread(
            kubernetes_watch, kubeconfig, min(args.k8s_events, len(pods))
        )
    report(args, f"sync: watch-list of {len(pods)} pods (ADDED, new uids)", sync)
    report(args, f"watch: {args.updates} MODIFIED of {args.hot} hot pods (replayed)", watch)
    print(f"median of {args.repeat} runs by CPU time; kubernetes: one run over {args.k8s_events} events")
    print(
        "reproduce: .venv/bin/python benchmarks/reflector_bench.py "
        f"--pods {args.pods} --updates {args.updates} --hot {args.hot} --seed {args.seed} "
        f"--repeat {args.repeat} --k8s-events {args.k8s_events}"
    )


def kubernetes_watch(kubeconfig: str, limit: int) -> Result:
    """The `kubernetes` package's Watch.stream over the same watch-list (legacy watches
    without an RV are watch-lists on 1.34+ servers), deserialising V1Pod models."""
    import kubernetes

    k8s: Any = kubernetes  # untyped
    api = k8s.client.CoreV1Api(k8s.config.new_client_from_config(config_file=kubeconfig))
    w = k8s.watch.Watch()
    cpu, wall = time.process_time(), time.perf_counter()
    n = 0
    for _ in w.stream(api.list_pod_for_all_namespaces, timeout_seconds=600):
        n += 1
        if n >= limit:
            w.stop()
            break
    return n, time.process_time() - cpu, time.perf_counter() - wall


def median(runs: list[Result]) -> Result:
    return sorted(runs, key=lambda r: r[1])[len(runs) // 2]


def report(args: argparse.Namespace, title: str, results: dict[str, Result]) -> None:
    base = results["orjson.loads per line"]
    base_rate = base[0] / base[1]
    print(f"\n{title}; client on CPU {CLIENT_CPU}, simulator on CPU {SERVER_CPU}")
    print(f"{'method':36} {'events':>7} {'cpu s':>7} {'events/cpu-s':>13} {'vs orjson':>9} {'wall ev/s':>10}")
    for name, (n, cpu, wall) in results.items():
        rate = n / cpu if cpu else float("inf")
        print(f"{name:36} {n:7d} {cpu:7.3f} {rate:13,.0f} {rate / base_rate:8.2f}x {n / wall:10,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=20_000)
    parser.add_argument("--updates", type=int, default=10_000)
    parser.add_argument("--hot", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--k8s-events", type=int, default=2_000)
    args = parser.parse_args()
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
