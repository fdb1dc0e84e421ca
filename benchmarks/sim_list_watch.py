"""Simulator LIST and WATCH throughput, server pinned to one core, client on another.

    .venv/bin/python benchmarks/sim_list_watch.py [--pods 100000] [--seed 1] [--repeat 3]

Starts `panopticon sim` as its own process pinned to CPU 0 (this process, the
client, pins itself to CPU 1), loads a seeded native workload of `--pods` pods
(about 4.4 KiB of JSON each, managedFields included) and measures with aiohttp:

- LIST of every pod: unpaged, paged with limit=500, and gzipped (client asks for it);
- WATCH: replay of a burst of MODIFIED events from the ring, the initial events
  of a watch-list, and live updates made through the admin API while watching;
- the ceiling: a plain aiohttp handler on the same core returning a pre-built body of
  the unpaged LIST's size (bytes/s), so LIST figures read as a fraction of it.

Targets (issue 3): LIST >= 50,000 objects/s, WATCH >= 20,000 events/s to one client.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from kubesim import AdminClient, SimProcess

SERVER_CPU, CLIENT_CPU = 0, 1
TOKEN = "panopticon-sim-token"
BUMP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bump", "namespace": "default"}}


def pin(pid: int, cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > cpu:  # type: ignore[operator]
        os.sched_setaffinity(pid, {cpu})


async def timed(fn: Callable[[], Awaitable[int]], repeat: int) -> tuple[float, int]:
    """Median seconds of `repeat` runs of `fn`, and what it counted."""
    times, count = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        count = await fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), count


async def list_all(session: aiohttp.ClientSession, *, limit: int = 0, gzip: bool = False) -> tuple[int, int]:
    """Pages and body bytes of a full LIST of pods (following continue tokens).

    The client only counts bytes (a streaming read, no JSON decoding), so the
    figure is the server's; `count_items` checks the content once, untimed.
    """
    headers = {"Accept-Encoding": "gzip" if gzip else "identity"}
    pages = size = 0
    token = ""
    while True:
        params = {"limit": str(limit)} if limit else {}
        if token:
            params["continue"] = token
        async with session.get("/api/v1/pods", params=params, headers=headers) as resp:
            head = b""
            async for chunk in resp.content.iter_any():
                if len(head) < 4096:
                    head += chunk[:4096]
                size += len(chunk)
        pages += 1
        token = continue_token(head) if limit else ""
        if not token:
            return pages, size


def continue_token(head: bytes) -> str:
    """`metadata.continue` from the first bytes of a list (metadata precedes items)."""
    meta_end = head.find(b',"items":[')
    meta: dict[str, dict[str, str]] = orjson.loads(head[:meta_end] + b"}")
    return meta["metadata"].get("continue", "")


async def count_items(session: aiohttp.ClientSession, *, limit: int = 0) -> int:
    """Pods in a full LIST, counted by their one `"generateName":` each (streamed: a
    500 MiB list decoded at once would cost the client gigabytes)."""
    marker = b'"generateName":'
    items, token = 0, ""
    while True:
        params = {"limit": str(limit)} if limit else {}
        if token:
            params["continue"] = token
        head = tail = b""
        async with session.get("/api/v1/pods", params=params) as resp:
            async for chunk in resp.content.iter_any():
                if len(head) < 4096:
                    head += chunk[:4096]
                data = tail + chunk
                items += data.count(marker)
                tail = data[-(len(marker) - 1) :]
        token = continue_token(head) if limit else ""
        if not token:
            return items


async def count_events(resp: aiohttp.ClientResponse, want: int, since: float) -> tuple[int, float]:
    """Read until `want` events arrived; returns (events, seconds since `since`).

    Events are newline-framed, so counting b"\n" counts them whatever the chunking
    (a multi-byte marker could straddle two chunks).
    """
    seen = 0
    async for chunk in resp.content.iter_any():
        seen += chunk.count(b"\n")
        if seen >= want:
            break
    elapsed = time.perf_counter() - since
    resp.close()  # drop the connection: a half-read watch must not go back to the pool
    return seen, elapsed


def start_baseline(size: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, __file__, "--baseline-server", str(size)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE)


async def baseline(size: int, repeat: int) -> float:
    """Seconds to fetch a pre-built body of `size` bytes from plain aiohttp on the server core."""
    proc = start_baseline(size)
    try:
        pin(proc.pid, SERVER_CPU)
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().split()[1]
        async with aiohttp.ClientSession(url, auto_decompress=False) as session:

            async def fetch() -> int:
                n = 0
                async with session.get("/", headers={"Accept-Encoding": "identity"}) as resp:
                    async for chunk in resp.content.iter_any():
                        n += len(chunk)
                return n

            seconds, _ = await timed(fetch, repeat)
        return seconds
    finally:
        proc.terminate()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def serve_baseline(size: int) -> None:
    body = memoryview(b"x" * size)

    async def handler(request: web.Request) -> web.StreamResponse:
        # The same write pattern as the simulator's big lists: 1 MiB pieces, Content-Length.
        resp = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": str(size)})
        await resp.prepare(request)
        for i in range(0, size, 1 << 20):
            await resp.write(body[i : i + (1 << 20)])
        await resp.write_eof()
        return resp

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(f"READY http://127.0.0.1:{port}", flush=True)
        await asyncio.Event().wait()

    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


async def bench(args: argparse.Namespace) -> None:
    pin(0, CLIENT_CPU)
    sim_args = [
        "--seed",
        str(args.seed),
        "--scale",
        "0",
        "--namespaces",
        "0",
        "--nodes",
        "0",
        "--compaction-window",
        "0",
    ]
    with SimProcess(sim_args, timeout=120) as proc:
        pin(proc.proc.pid, SERVER_CPU)  # type: ignore[union-attr]
        admin = AdminClient(proc.url, proc.token, timeout=600)
        per_ns = 1000
        namespaces = max(1, args.pods // per_ns)
        t = time.perf_counter()
        spec = {
            "namespaces": namespaces,
            "deployments": 10,
            "pods_per_deployment": per_ns // 10,
            "services": 0,
            "configmaps": 0,
            "secrets": 0,
            "mongodbs": 0,
            "nodes": 10,
            "seed": args.seed,
        }
        admin.load_workload(native=spec)
        load_s = time.perf_counter() - t
        pods = admin.state()["objects"]["pods"]
        headers = {"Authorization": f"Bearer {proc.token}"}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
        async with aiohttp.ClientSession(
            proc.url, headers=headers, auto_decompress=True, timeout=timeout
        ) as session:
            unpaged_s, (_, size) = await timed_pair(lambda: list_all(session), args.repeat)
            paged_s, (n_pages, _) = await timed_pair(lambda: list_all(session, limit=500), args.repeat)
            async with aiohttp.ClientSession(
                proc.url, headers=headers, auto_decompress=False, timeout=timeout
            ) as raw:
                bumps = itertools.count()

                async def cold() -> tuple[int, int]:
                    bump = {**BUMP, "data": {"n": str(next(bumps))}}
                    admin.bulk([{"op": "apply", "object": bump}])  # a new revision: no cached gzip
                    return await list_all(raw, gzip=True)

                gzip_s, (_, gz_size) = await timed_pair(cold, args.repeat)
                cached_s, _ = await timed_pair(lambda: list_all(raw, gzip=True), args.repeat)
            assert await count_items(session) == await count_items(session, limit=500) == pods
            assert n_pages == -(-pods // 500), n_pages
            names = await pod_names(session)
            replay = await watch_replay(session, admin, names)
            initial = await watch_list_initial(session, pods)
            live = await watch_live(session, admin, names, min(pods, 20_000))
        ceiling_s = await baseline(size, args.repeat)
    report(
        args,
        pods=pods,
        size=size,
        load_s=load_s,
        unpaged_s=unpaged_s,
        paged_s=paged_s,
        gzip_s=gzip_s,
        gz_size=gz_size,
        cached_s=cached_s,
        replay=replay,
        initial=initial,
        live=live,
        ceiling_s=ceiling_s,
    )


async def timed_pair(
    fn: Callable[[], Awaitable[tuple[int, int]]], repeat: int
) -> tuple[float, tuple[int, int]]:
    result: tuple[int, int] = (0, 0)

    async def run() -> int:
        nonlocal result
        result = await fn()
        return result[0]

    seconds, _ = await timed(run, repeat)
    return seconds, result


async def pod_names(session: aiohttp.ClientSession) -> list[tuple[str, str]]:
    async with session.get("/api/v1/pods") as resp:
        items = orjson.loads(await resp.read())["items"]
    return [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items]


def annotate(pods: list[tuple[str, str]], n: int, tag: str) -> list[dict[str, object]]:
    """`n` bulk patch operations, cycling over `pods`."""
    return [
        {
            "op": "patch",
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": ns,
            "name": name,
            "patch": {"metadata": {"annotations": {"bench": f"{tag}-{i}"}}},
        }
        for i, (ns, name) in zip(range(n), itertools.cycle(pods), strict=False)
    ]


async def watch_replay(
    session: aiohttp.ClientSession, admin: AdminClient, pods: list[tuple[str, str]]
) -> tuple[int, float]:
    """Update every pod (one bulk admin call), then watch from before: the burst comes from the ring."""
    start_rv = admin.state()["revision"]
    await asyncio.to_thread(admin.bulk, annotate(pods, len(pods), "replay"))
    params = {"watch": "1", "resourceVersion": str(start_rv), "timeoutSeconds": "600"}
    since = time.perf_counter()
    async with session.get("/api/v1/pods", params=params) as resp:
        return await count_events(resp, len(pods), since)


async def watch_list_initial(session: aiohttp.ClientSession, pods: int) -> tuple[int, float]:
    params = {
        "watch": "1",
        "sendInitialEvents": "true",
        "allowWatchBookmarks": "true",
        "resourceVersionMatch": "NotOlderThan",
        "resourceVersion": "",
        "timeoutSeconds": "600",
    }
    since = time.perf_counter()
    async with session.get("/api/v1/pods", params=params) as resp:
        return await count_events(resp, pods, since)


async def watch_live(
    session: aiohttp.ClientSession, admin: AdminClient, pods: list[tuple[str, str]], n: int
) -> tuple[int, float]:
    """Watch while the admin API applies `n` updates in one bulk call.

    Mutation and delivery share the server's core, so this is bound by the write path.
    """
    params = {"watch": "1", "resourceVersion": str(admin.state()["revision"]), "timeoutSeconds": "600"}
    ops = annotate(pods, n, "live")
    async with session.get("/api/v1/pods", params=params) as resp:
        since = time.perf_counter()
        counting = asyncio.create_task(count_events(resp, n, since))
        await asyncio.to_thread(admin.bulk, ops)
        return await counting


def report(args: argparse.Namespace, **m: Any) -> None:
    pods, size = int(m["pods"]), int(m["size"])
    mib = size / 2**20
    per_pod = size / pods
    print(f"workload: {pods:,} pods, unpaged LIST {mib:,.1f} MiB ({per_pod:,.0f} B/pod)")
    print(f"load through the admin API: {m['load_s']:.1f} s")
    print(f"{'measure':<46}{'per second':>14}{'seconds':>10}")
    rows: list[tuple[str, float, float]] = [
        ("LIST unpaged (objects)", pods, m["unpaged_s"]),
        ("LIST limit=500 (objects)", pods, m["paged_s"]),
        (f"LIST gzip level 1, {m['gz_size'] / 2**20:,.0f} MiB (objects)", pods, m["gzip_s"]),
        ("LIST gzip, same snapshot again (objects)", pods, m["cached_s"]),
        ("LIST unpaged (MiB)", mib, m["unpaged_s"]),
        ("ceiling: plain aiohttp, same bytes (MiB)", mib, m["ceiling_s"]),
        ("WATCH replay from the ring (events)", *m["replay"]),
        ("WATCH watch-list initial events (events)", *m["initial"]),
        ("WATCH live bulk updates (events)", *m["live"]),
    ]
    for label, n, seconds in rows:
        print(f"{label:<46}{n / seconds:>14,.0f}{seconds:>10.3f}")
    print(f"LIST unpaged as a share of the ceiling: {m['ceiling_s'] / m['unpaged_s']:.0%}")
    print("targets: LIST >= 50,000 objects/s, WATCH >= 20,000 events/s")
    print(f"server pinned to CPU {SERVER_CPU}, client to CPU {CLIENT_CPU}")
    flags = f"--pods {args.pods} --seed {args.seed} --repeat {args.repeat}"
    print(f"reproduce: .venv/bin/python benchmarks/sim_list_watch.py {flags}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-server", type=int, metavar="SIZE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        serve_baseline(args.baseline_server)
        return
    asyncio.run(bench(args))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
