"""Scrape cost of aggregate families, against the same number of plain series, in one run.

One redis-server holds two stores of the same shape (same objects, same families,
same slots), written directly: under prefix `plain`, each object's own series of each
family (`family{namespace,pod,phase} value`, ~100 B, what a per-object metric stores);
under prefix `agg`, each object's partial aggregate of each family
(`family{namespace,phase} value`, as `aggregate: {function, by: [namespace, phase]}`
stores it). One `python -m aggregator` per prefix, each pinned to core 0 in turn
(Redis and the client share core 1), serves a full scrape (identity), best of
`--repeats`; the aggregate scrape reads every partial and serves one line per group.

Reported: seconds per scrape for both, and their ratio (the figure), with stored and
served bytes and lines.

    .venv/bin/python benchmarks/aggregate_bench.py [--objects 100000] [--families 4] [--function sum]
        [--values small-ints|floats]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from benchmarks.aggregator_bench import free_port, pin, scrape, start_redis, wait_http
from panopticon.config.aggregatespec import Aggregation
from panopticon.render.exposition import FamilyHeader
from panopticon.store.layout import Layout, RegistryEntry
from panopticon.text import format_number

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("Running", "Pending", "Succeeded", "Failed")


def fill(port: int, objects: int, families: int, function: str, *, seed: int, floats: bool) -> None:
    """Both stores: per-object series under `plain`, per-object partials under `agg`."""
    client = redis.Redis(port=port)
    rng = random.Random(seed)
    plain, agg = Layout(prefix="plain"), Layout(prefix="agg")
    names = [f"bench_pods_{f}" for f in range(families)]
    aggregation = Aggregation(function, ("namespace", "phase"))
    client.hset(
        plain.registry_key,
        mapping={n: RegistryEntry.of(FamilyHeader(n, "Plain."), ["b"]).encode() for n in names},
    )
    client.hset(
        agg.registry_key,
        mapping={
            n: RegistryEntry.of(FamilyHeader(n, "Agg.", aggregate=aggregation), ["b"]).encode() for n in names
        },
    )
    pending: dict[str, dict[str, str]] = {}
    for i in range(objects):
        uid = f"{rng.getrandbits(128):032x}"
        slot = plain.slot_of(plain.space.bucket(uid))
        ns, phase = f"ns-{i % 97:02d}", PHASES[i % 4]
        value = format_number(i * 0.37) if floats else str(i % 13)
        pod = f"app-{i:07d}-{rng.getrandbits(20):05x}"
        for name in names:
            series = f'{name}{{namespace="{ns}",pod="{pod}",phase="{phase}"}} {value}\n'
            pending.setdefault(plain.family_key(slot, name), {})[uid] = series
            partial = f'{name}{{namespace="{ns}",phase="{phase}"}} {1 if function == "count" else value}\n'
            pending.setdefault(agg.family_key(slot, name), {})[uid] = partial
        if i % 20000 == 19999 or i == objects - 1:
            pipe = client.pipeline(transaction=False)
            for key, mapping in pending.items():
                pipe.hset(key, mapping=mapping)
            pipe.execute()
            pending = {}


def stored_bytes(port: int, prefix: str) -> int:
    client = redis.Redis(port=port)
    return sum(
        int(client.memory_usage(key) or 0)
        for key in client.scan_iter(match=f"{prefix}:{{s*}}:f:*", count=1000)
    )


def serve(redis_port: int, prefix: str) -> tuple[subprocess.Popen[bytes], str]:
    port, telemetry = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--redis", f"redis://127.0.0.1:{redis_port}", "--prefix", prefix,
         "--host", "127.0.0.1", "--port", str(port), "--telemetry-port", str(telemetry)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    pin(proc, 0)
    url = f"http://127.0.0.1:{port}/metrics"
    wait_http(f"http://127.0.0.1:{telemetry}/readyz")
    return proc, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--families", type=int, default=4)
    parser.add_argument("--function", choices=("count", "sum", "min", "max"), default="sum")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--values",
        choices=("small-ints", "floats"),
        default="small-ints",
        help="each object's value: i %% 13 (restarts, replicas: partials repeat) or i * 0.37 (all distinct)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis_port = free_port()
        server = start_redis(redis_port, Path(tmp))
        pin(server, 1)
        try:
            started = time.perf_counter()
            fill(
                redis_port,
                args.objects,
                args.families,
                args.function,
                seed=args.seed,
                floats=args.values == "floats",
            )
            took = time.perf_counter() - started
            print(f"filled {args.objects} objects x {args.families} families in {took:.1f} s")
            results = {}
            for prefix in ("plain", "agg"):
                proc, url = serve(redis_port, prefix)
                try:
                    best = min(asyncio.run(scrape(url, False)) for _ in range(args.repeats))
                    body_lines = asyncio.run(_count_lines(url))
                finally:
                    proc.terminate()
                    proc.wait(10)
                results[prefix] = (best, body_lines, stored_bytes(redis_port, prefix))
        finally:
            server.terminate()
            server.wait(10)
    stored = args.objects * args.families
    print(f"interpreter: {sys.executable} ({sys.version.split()[0]}); stored lines per store: {stored}")
    for prefix, ((seconds, first, size), lines, memory) in results.items():
        print(
            f"{prefix:6} scrape {seconds * 1000:8.1f} ms  first byte {first * 1000:7.1f} ms  "
            f"served {size / 1e6:7.2f} MB in {lines} sample lines  stored {memory / 1e6:6.1f} MB"
        )
    ratio = results["agg"][0][0] / results["plain"][0][0]
    print(f"aggregate ({args.function} by namespace, phase; {args.values}) / plain scrape time: {ratio:.2f}")


async def _count_lines(url: str) -> int:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(url) as r:
        text = await r.text()
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


if __name__ == "__main__":
    main()
