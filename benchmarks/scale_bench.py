"""Scale-out: what each of N shards receives and spends to sync, with and without
server-side sharded list/watch (Kubernetes 1.36 `ShardedListAndWatch`), same run.

For each mode (the simulator with `--sharding`, then without) and N in `--shards`
(1, 2, 4, 8): a fresh Redis, the simulator with `--objects` MongoDB objects and the
KubeDB MongoDB config, and N shard processes of a static ring (`--shards N`), each
talking to the simulator through its own byte-counting TCP proxy. Per shard, once
all are ready: objects received (its `panopticon_shard_watch_lines_total`, owned or
not) and bytes received from the API (the proxy's count); and CPU seconds to its
first sync (/proc; the shards run concurrently on this machine's cores, so wall time
is not reported): each shard's CPU is read when its own /readyz first answers 200
(`cpu_when_ready`); "at last ready" is the older reading, all shards' CPU once the
slowest is ready, idle seconds of the early ones included. The shards run with their
deployed timer intervals (`deployed_intervals`). With `--serial`, each shard starts
once the previous one is ready, so that N shards do not share this machine's two
cores while they sync (deployed, each has its own): CPU seconds grow with the
processes sharing a core (caches, switches; this VM's accounting under contention),
which the concurrent runs charge to the N-shard side only. Goals (issue 16) with the
selector applied: objects and bytes per shard ≤ 1.1 × total/N, and the CPU of all N
shards ≤ 1.2 × one shard's.

The project's modules are compiled to bytecode first (`compileall`, into the tree's
gitignored `__pycache__`), as the image does at install time: with
`PYTHONDONTWRITEBYTECODE` set and no bytecode, every shard would compile them from
source again, a start-up cost no deployed shard pays.

    .venv/bin/python benchmarks/scale_bench.py [--objects 100000] [--shards 1 2 4 8]
        [--sharding both|on|off] [--rounds 1] [--serial]
"""

from __future__ import annotations

import argparse
import compileall
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.shard_bench import CONFIG, cpu_seconds  # noqa: E402
from kubesim import SimProcess  # noqa: E402
from tests.support.balancer import Balancer  # noqa: E402
from tests.support.cluster import ShardProcess  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

SIM_ARGS = [
    "--namespaces",
    "1",
    "--mongodbs",
    "0",
    "--deployments",
    "0",
    "--services",
    "0",
    "--configmaps",
    "0",
]
SIM_ARGS += ["--secrets", "0", "--nodes", "0"]


def deployed_intervals() -> tuple[str, ...]:
    """The shard's own defaults for its timers, overriding the test harness' short ones
    (`ShardProcess`: flush 0.02 s, heartbeat 0.5 s, status 1 s), which a deployed shard
    does not run with and which cost CPU while the shard syncs."""
    from shard.command import add_worker_arguments

    parser = argparse.ArgumentParser()
    add_worker_arguments(parser)
    defaults = parser.parse_args([])
    names = ("flush_interval", "heartbeat_interval", "status_interval")
    return tuple(x for n in names for x in (f"--{n.replace('_', '-')}", str(getattr(defaults, n))))


DEPLOYED_INTERVALS = deployed_intervals()


def watch_lines(shard: ShardProcess) -> float:
    total = 0.0
    for line in shard.metrics().splitlines():
        if line.startswith("panopticon_shard_watch_lines_total"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def kubeconfig_via(sim: SimProcess, address: str, path: Path) -> Path:
    config = yaml.safe_load(Path(sim.kubeconfig_path).read_text())
    server = config["clusters"][0]["cluster"]["server"]
    scheme = server.split("://", 1)[0]
    config["clusters"][0]["cluster"]["server"] = f"{scheme}://{address}"
    path.write_text(yaml.safe_dump(config))
    return path


def cpu_when_ready(procs: list[ShardProcess], timeout: float) -> list[float]:
    """Each shard's CPU seconds when its /readyz first answers 200 (polled every 50 ms).

    Read per shard, not once all are ready: a shard that synced first would otherwise
    count its idle seconds (timers, heartbeats) while it waits for the slowest, a cost
    that grows with the machine's load and the number of shards, not with the sync."""
    found: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    while len(found) < len(procs):
        for i, shard in enumerate(procs):
            if i in found:
                continue
            assert shard.proc is not None
            if shard.proc.poll() is not None:
                raise RuntimeError(f"shard {i} exited {shard.proc.returncode}: {shard.tail()}")
            if shard.ready():
                found[i] = cpu_seconds(shard.proc.pid)
        if time.monotonic() > deadline:
            raise TimeoutError(f"shards {sorted(set(range(len(procs))) - set(found))} not ready")
        time.sleep(0.05)
    return [found[i] for i in range(len(procs))]


def run(objects: int, shards: int, sharding: bool, logs: Path, serial: bool = False) -> list[dict[str, Any]]:
    redis = RedisServer()
    redis.start()
    args = ["--bench-mongodbs", str(objects), *SIM_ARGS, *(["--sharding"] if sharding else [])]
    sim = SimProcess(args, timeout=600).start()
    procs: list[ShardProcess] = []
    proxies: list[Balancer] = []
    try:
        sim.admin.bulk([{"op": "create", "object": yaml.safe_load(CONFIG.read_text())}])
        backend = yaml.safe_load(Path(sim.kubeconfig_path).read_text())["clusters"][0]["cluster"]["server"]
        backend = backend.split("://", 1)[1]
        for i in range(shards):
            proxy = Balancer([backend]).start()
            proxies.append(proxy)
            kubeconfig = kubeconfig_via(sim, proxy.address, logs / f"kubeconfig-{shards}-{i}")
            extra = ("--shards", str(shards), "--ring-generation", "1", *DEPLOYED_INTERVALS)
            procs.append(
                ShardProcess(i, kubeconfig=kubeconfig, redis_url=redis.url, log_dir=logs, extra=extra)
            )
        if serial:  # each shard alone until its first sync, then the next (it stays running)
            at_ready = []
            for shard in procs:
                shard.start()
                at_ready += cpu_when_ready([shard], timeout=900)
        else:
            for shard in procs:
                shard.start()
            at_ready = cpu_when_ready(procs, timeout=900)
        rows = []
        for shard, proxy, cpu in zip(procs, proxies, at_ready, strict=True):
            assert shard.proc is not None
            rows.append(
                {
                    "objects": watch_lines(shard),
                    "bytes": sum(proxy.downstream.values()),
                    "cpu": cpu,
                    "cpu_all_ready": cpu_seconds(shard.proc.pid),
                }
            )
        return rows
    finally:
        for shard in procs:
            shard.stop()
        for proxy in proxies:
            proxy.stop()
        sim.stop()
        redis.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--sharding", choices=("both", "on", "off"), default="both")
    parser.add_argument(
        "--serial",
        action="store_true",
        help="start each shard once the previous one is ready (not N at once on this machine's cores)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every shard count this many times, interleaved; report the least CPU",
    )
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="pan-scale-bench-"))
    for package in ("panopticon", "shard"):  # as the image's install does (module docstring)
        compileall.compile_dir(ROOT / package, quiet=1)
    print(f"python {sys.version.split()[0]}; {args.objects} MongoDB objects; logs in {logs}")
    for sharding in {"both": (True, False), "on": (True,), "off": (False,)}[args.sharding]:
        print(f"\nserver-side sharding {'on (--sharding)' if sharding else 'off'}")
        print(f"{'shards':>6s} {'objects/shard max':>18s} {'x total/N':>9s} {'MB/shard max':>12s} "
              f"{'x total/N':>9s} {'CPU s all':>9s} {'x 1 shard':>9s} {'max/mean':>8s} "
              f"{'at last ready':>13s}")  # fmt: skip
        results: dict[int, list[list[dict[str, Any]]]] = {n: [] for n in args.shards}
        for _ in range(args.rounds):
            for n in args.shards:
                started = time.monotonic()
                results[n].append(run(args.objects, n, sharding, logs, args.serial))
                print(f"  ({n} shards: {time.monotonic() - started:.0f} s)", flush=True)
        single: dict[str, float] = {}
        for n in args.shards:
            # The round with the least total CPU: the load of this machine only ever adds.
            runs = sorted(results[n], key=lambda rows: sum(r["cpu"] for r in rows))
            rows = runs[0]
            most_objects = max(r["objects"] for r in rows)
            most_bytes = max(r["bytes"] for r in rows)
            cpu = sum(r["cpu"] for r in rows)
            late = sum(r["cpu_all_ready"] for r in rows)
            if n == 1 or not single:
                single = {"objects": most_objects, "bytes": most_bytes, "cpu": cpu, "late": late}
            spread = " ".join(f"{sum(r['cpu'] for r in rows):.1f}" for rows in runs)
            print(
                f"{n:6d} {most_objects:18,.0f} {most_objects / (single['objects'] / n):9.2f} "
                f"{most_bytes / 1e6:12.1f} {most_bytes / (single['bytes'] / n):9.2f} "
                f"{cpu:9.1f} {cpu / single['cpu']:9.2f} {max(r['cpu'] for r in rows) / (cpu / n):8.2f} "
                f"{late / single['late']:12.2f}x   (CPU s of each round: {spread})"
            )
    shards = " ".join(map(str, args.shards))
    print(
        f"reproduce: .venv/bin/python benchmarks/scale_bench.py --objects {args.objects} --shards {shards}"
        f" --sharding {args.sharding} --rounds {args.rounds}" + (" --serial" if args.serial else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
