"""Scrape and shard write cost of aggregate families: per-object against per-bucket partials, in one run.

One redis-server holds three stores of the same objects and families, written
directly: under prefix `plain`, each object's own series of each family
(`family{namespace,pod,phase} value`, ~100 B, what a per-object metric stores);
under prefix `agg`, each object's partial aggregate of each family
(`family{namespace,phase} value`, as `aggregate: {function, by: [namespace, phase]}`
stored it before layout 2: the baseline); under prefix `bucket`, each bucket's
partial (`shard.partials`, what a shard stores now). One `python -m aggregator` per
prefix, each pinned to core 0 in turn (Redis and the client share core 1), serves a
full scrape (identity), best of `--repeats`.

Then the shard's side: a `WriteQueue` over a `RedisStore` (owning every bucket)
holding `--write-objects` objects applies `--events` changes of one object each, in
flushes of `--per-flush` events, per object (baseline) and per bucket; best of 3.

Reported: seconds per scrape and their ratios to the plain and the per-object scrape;
the shard's seconds per event and fields written, per bucket against per object.

    .venv/bin/python benchmarks/aggregate_bench.py [--objects 100000] [--families 4] [--function sum]
        [--values small-ints|floats] [--events 20000] [--per-flush 100] [--write-objects 100000]
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
import tracemalloc
from pathlib import Path

import redis

from benchmarks.aggregator_bench import free_port, pin, scrape, start_redis, wait_http
from panopticon.config.aggregatespec import Aggregation
from panopticon.render.exposition import FamilyHeader
from panopticon.store.layout import Layout, RegistryEntry, token
from panopticon.store.redisstore import RedisOptions, RedisStore
from panopticon.text import format_number
from shard.partials import BucketPartials
from shard.writer import WriteQueue

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("Running", "Pending", "Succeeded", "Failed")


def fill(
    port: int, objects: int, families: int, function: str, *, seed: int, floats: bool, by: tuple[str, ...]
) -> None:
    """The stores: per-object series under `plain`, per-object partials under `agg`,
    per-bucket partials under `bucket`."""
    client = redis.Redis(port=port)
    rng = random.Random(seed)
    plain, agg, per_bucket = Layout(prefix="plain"), Layout(prefix="agg"), Layout(prefix="bucket")
    names = [f"bench_pods_{f}" for f in range(families)]
    aggregation = Aggregation(function, by)
    client.hset(
        plain.registry_key,
        mapping={n: RegistryEntry.of(FamilyHeader(n, "Plain."), ["b"]).encode() for n in names},
    )
    for layout in (agg, per_bucket):
        client.hset(
            layout.registry_key,
            mapping={
                n: RegistryEntry.of(FamilyHeader(n, "Agg.", aggregate=aggregation), ["b"]).encode()
                for n in names
            },
        )
    partials = BucketPartials()
    partials.set_functions(dict.fromkeys(names, function))
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
            group = ",".join(f'{k}="{v}"' for k, v in (("namespace", ns), ("phase", phase)) if k in by)
            partial = f"{name}{{{group}}} {1 if function == 'count' else value}\n"
            pending.setdefault(agg.family_key(slot, name), {})[uid] = partial
            partials.take(plain.space.bucket(uid), uid, [(name, partial.encode())], [])
        if i % 20000 == 19999 or i == objects - 1:
            pipe = client.pipeline(transaction=False)
            for key, mapping in pending.items():
                pipe.hset(key, mapping=mapping)
            pipe.execute()
            pending = {}
    by_key: dict[str, dict[str, bytes]] = {}
    for op in partials.ops():
        assert op.value is not None
        key = per_bucket.family_key(per_bucket.slot_of(op.bucket), op.family)
        by_key.setdefault(key, {})[op.uid] = op.value
    pipe = client.pipeline(transaction=False)
    for key, fields in by_key.items():
        pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
    pipe.execute()


async def write_cost(
    port: int,
    prefix: str,
    *,
    per_bucket: bool,
    objects: int,
    events: int,
    per_flush: int,
    function: str,
    seed: int,
    by: tuple[str, ...],
) -> tuple[float, int]:
    """Seconds per event and fields written, for a shard owning every bucket that applies
    `events` changes (one object's 4 families each) in flushes of `per_flush`."""
    layout = Layout(prefix=prefix)
    store = RedisStore.connect(RedisOptions(url=f"redis://127.0.0.1:{port}"), layout)
    try:
        for slot in range(layout.slots):
            await store.claim(slot, 0, 1, list(layout.buckets_of_slot(slot)))
        queue = WriteQueue(store)
        names = [f"bench_write_{f}" for f in range(4)]
        if per_bucket:
            queue.partials.set_functions(dict.fromkeys(names, function))
        rng = random.Random(seed)
        uids = [f"{rng.getrandbits(128):032x}" for _ in range(objects)]
        buckets = [layout.space.bucket(uid) for uid in uids]

        def render(i: int, value: int) -> list[tuple[str, bytes]]:
            pairs = (("namespace", f"ns-{i % 97:02d}"), ("phase", PHASES[value % 4]))
            labels = ",".join(f'{k}="{v}"' for k, v in pairs if k in by)
            return [(n, f"{n}{{{labels}}} {1 if function == 'count' else value}\n".encode()) for n in names]

        for i, uid in enumerate(uids):  # the initial sync: not timed
            queue.add_object(buckets[i], uid, render(i, i % 13), [], at=0.0)
        await queue.flush(token(0, 1))
        written = 0
        started = time.perf_counter()
        for e in range(events):
            i = rng.randrange(objects)
            queue.add_object(buckets[i], uids[i], render(i, rng.randrange(13)), [], at=0.0)
            if e % per_flush == per_flush - 1 or e == events - 1:
                written += (await queue.flush(token(0, 1))).written
        return (time.perf_counter() - started) / events, written
    finally:
        await store.close()


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


def partials_memory(objects: int, function: str, by: tuple[str, ...], seed: int) -> float:
    """Bytes a shard's `BucketPartials` holds per object and aggregate family (4 families;
    the uids themselves are the render table's and not counted)."""
    rng = random.Random(seed)
    space = Layout().space
    uids = [f"{rng.getrandbits(128):032x}" for _ in range(objects)]
    names = [f"bench_pods_{f}" for f in range(4)]
    tracemalloc.start()
    partials = BucketPartials()
    partials.set_functions(dict.fromkeys(names, function))
    for i, uid in enumerate(uids):
        pairs = (("namespace", f"ns-{i % 97:02d}"), ("phase", PHASES[i % 4]))
        labels = ",".join(f'{k}="{v}"' for k, v in pairs if k in by)
        lines = [(n, f"{n}{{{labels}}} {i % 13}\n".encode()) for n in names]
        partials.take(space.bucket(uid), uid, lines, [])
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return held / (objects * len(names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--families", type=int, default=4)
    parser.add_argument("--function", choices=("count", "sum", "min", "max"), default="sum")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--by",
        choices=("namespace,phase", "phase"),
        default="namespace,phase",
        help="the groups: 388 (97 namespaces x 4 phases) or 4",
    )
    parser.add_argument("--events", type=int, default=20_000, help="object changes in the write measurement")
    parser.add_argument("--per-flush", type=int, default=100, help="changes per flush (2,000/s at 50 ms)")
    parser.add_argument("--write-objects", type=int, default=100_000, help="objects the writing shard holds")
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
                by=tuple(args.by.split(",")),
            )
            took = time.perf_counter() - started
            print(f"filled {args.objects} objects x {args.families} families in {took:.1f} s")
            results = {}
            for prefix in ("plain", "agg", "bucket"):
                proc, url = serve(redis_port, prefix)
                try:
                    best = min(asyncio.run(scrape(url, False)) for _ in range(args.repeats))
                    body_lines = asyncio.run(_count_lines(url))
                finally:
                    proc.terminate()
                    proc.wait(10)
                results[prefix] = (best, body_lines, stored_bytes(redis_port, prefix))
            writes: dict[bool, tuple[float, int]] = {}
            for _ in range(3):
                for per_bucket in (False, True):
                    prefix = f"w{int(per_bucket)}{_}"
                    cost = asyncio.run(
                        write_cost(
                            redis_port, prefix, per_bucket=per_bucket, objects=args.write_objects,
                            events=args.events, per_flush=args.per_flush, function=args.function,
                            seed=args.seed, by=tuple(args.by.split(",")),
                        )
                    )  # fmt: skip
                    best_cost = writes.get(per_bucket)
                    writes[per_bucket] = cost if best_cost is None or cost[0] < best_cost[0] else best_cost
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
    print(
        f"per-object aggregate ({args.function} by {args.by}; {args.values}) / plain scrape time: {ratio:.2f}"
    )
    ratio = results["bucket"][0][0] / results["plain"][0][0]
    print(f"per-bucket aggregate / plain scrape time: {ratio:.3f}")
    ratio = results["bucket"][0][0] / results["agg"][0][0]
    print(f"per-bucket / per-object aggregate scrape time: {ratio:.3f}")
    (obj_s, obj_fields), (bkt_s, bkt_fields) = writes[False], writes[True]
    print(
        f"shard writes ({args.events} changes of {args.write_objects} objects x 4 families, "
        f"{args.per_flush} per flush): per object {obj_s * 1e6:.1f} us/change, {obj_fields} fields; "
        f"per bucket {bkt_s * 1e6:.1f} us/change, {bkt_fields} fields; "
        f"per-bucket / per-object time: {bkt_s / obj_s:.2f}"
    )
    memory = partials_memory(args.write_objects, args.function, tuple(args.by.split(",")), args.seed)
    print(f"shard memory for per-bucket partials: {memory:.0f} bytes per object and aggregate family")
    print(f"command: {' '.join([sys.executable, *sys.argv])}")


async def _count_lines(url: str) -> int:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(url) as r:
        text = await r.text()
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


if __name__ == "__main__":
    main()
