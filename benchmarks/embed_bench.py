"""The embeddable library (`panopticon.embed`): memory per object, loop stalls, event → /metrics.

Setup (one run): the simulator as a child process pinned to core 0 with N
MongoDB-like objects and one probe ConfigMap; this process, pinned to core 1, runs an
`Exporter` on uvloop as an operator would (the KubeDB MongoDB config, and a
one-series config of the probe), serving /metrics on a free port. A monitor task
sleeps 1 ms at a time and records how much CPU the loop's thread spent between two
of its wake-ups: the longest time the exporter (or anything else on the loop) held
the loop at once, what an operator's handlers would have waited. Wall-clock
lateness is printed too; on a shared machine it also counts time the process was
not scheduled. Clients (scrapes, the probe) run in processes of their own.

Figures, each beside a baseline from the same run:

- loop holds: worst and 99.9th percentile while the loop is idle (the baseline),
  during the initial sync, during full scrapes, and during churn; the cyclic GC's
  collections are timed apart, full and young (`--freeze`: `gc.freeze()` after the imports;
  `--freeze-started`: after `start()` returned, once loading the kubeconfig has
  imported the `kubernetes` package), and one full collection right after the sync
  is timed with the number of objects it walked;
- sync: seconds from `start()` to `ready`, and this process' CPU seconds; a scrape's
  CPU seconds in this process too (on a shared machine, wall seconds mostly say how
  busy the other processes were);
- memory: RSS after the sync (after a collection and `malloc_trim`) minus RSS just
  before `start()`, per object and per series; beside it, the exposition's own bytes
  per object (one full scrape): what the lines weigh as text;
- latency at R events/s: the simulator updates the MongoDBs at R/s (updates only)
  while a probe process writes the probe ConfigMap every 100 ms and polls
  `/metrics?name[]=kube_configmap_bench_probe` every 5 ms until the new value shows
  (the probe's change travels its own watch, through the loop busy with the R/s);
  the probe's own watch of the ConfigMap gives the baseline (the API server's
  delivery of the same change). Both count from the moment the PATCH was sent; the
  poll's period bounds the resolution (5 ms);
- `stop()`: the loop's holds while the exporter forgets its objects, and its CPU.

`--attribute MS` says where the loop's holds over MS ms go (`HoldSampler`): it
slows the loop a little, so figures of holds come from runs without it.

    .venv/bin/python benchmarks/embed_bench.py [--objects 100000] [--rate 1000] [--seconds 20] [--scrapes 3]
        [--freeze-started] [--attribute 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubesim import SimProcess  # noqa: E402
from panopticon.embed import Exporter  # noqa: E402

CONFIG = ROOT / "panopticon/data/examples/metricsconfigurations/kubedb/kubedb-com-mongodb.yaml"
PROBE_FAMILY = "kube_configmap_bench_probe"
PROBE_NAMESPACE, PROBE_NAME = "bench-probe", "probe"
PROBE_CONFIG: dict[str, Any] = {
    "apiVersion": "metrics.appscode.com/v1alpha1",
    "kind": "MetricsConfiguration",
    "metadata": {"name": "bench-probe"},
    "spec": {
        "targetRef": {"apiVersion": "v1", "kind": "ConfigMap"},
        "metrics": [
            {
                "name": "bench_probe",
                "help": "The value the benchmark's probe last wrote.",
                "type": "gauge",
                "metricValue": {"valueFromPath": ".data.probe"},
            }
        ],
    },
}
PROBE_PATH = f"/api/v1/namespaces/{PROBE_NAMESPACE}/configmaps"
RUSAGE_THREAD = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
"""The loop thread's own usage (Linux); elsewhere the process'."""
POLL = 0.005
"""Seconds between two polls of the probe family: the latency's resolution."""


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def settle_memory() -> None:
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class StallMonitor:
    """Sleeps `tick` seconds at a time and records, per wake-up, how late it was (wall
    seconds) and how much CPU the loop's thread spent since it went to sleep: the
    longest time the loop ran other code without coming back to its timers. On a
    shared machine the wall figure also counts time the process was not scheduled;
    the CPU figure does not. Collections of the cyclic GC are timed apart (CPU)."""

    def __init__(self, tick: float = 0.001) -> None:
        self.tick = tick
        self.late: list[float] = []
        self.busy: list[float] = []
        self.gc_pauses: list[float] = []
        self.young_pauses: list[float] = []
        self.long: list[tuple[float, int, int]] = []
        """Holds over 3 ms: CPU seconds, page faults, involuntary context switches (the
        kernel's split of user and system time is by ticks: too coarse for a hold)."""
        self._gc_started = 0.0
        self._task: asyncio.Task[None] | None = None
        self.beat = time.thread_time()
        """The loop thread's CPU time when the monitor last went to sleep (read by
        `HoldSampler`'s thread)."""

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.create_task(self._run())

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.thread_time()
        elif info.get("generation") == 2:
            self.gc_pauses.append(time.thread_time() - self._gc_started)
        else:
            self.young_pauses.append(time.thread_time() - self._gc_started)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        usage = resource.getrusage
        while True:
            before, cpu, used = loop.time(), time.thread_time(), usage(RUSAGE_THREAD)
            self.beat = cpu
            await asyncio.sleep(self.tick)
            busy = time.thread_time() - cpu
            self.busy.append(busy)
            self.late.append(loop.time() - before - self.tick)
            if busy > 0.003:
                now = usage(RUSAGE_THREAD)
                self.long.append((busy, now.ru_minflt - used.ru_minflt, now.ru_nivcsw - used.ru_nivcsw))

    async def reset(self) -> None:
        """Start a new phase: the wake-up pending now still measures the previous one."""
        await asyncio.sleep(0.01)
        self.report()

    def report(self) -> str:
        late, busy, pauses, young = self.late, self.busy, self.gc_pauses, self.young_pauses
        self.late, self.busy, self.gc_pauses, self.young_pauses = [], [], [], []
        long, self.long = sorted(self.long, reverse=True)[:3], []
        if not busy:
            return "no samples"
        gc_text = f"; full GC pauses: {len(pauses)}, worst {max(pauses) * 1000:.1f} ms" if pauses else ""
        if young:
            gc_text += f"; young GC pauses: {len(young)}, worst {max(young) * 1000:.1f} ms"
        over = sum(1 for b in busy if b > 0.003)
        kernel = ", ".join(f"{b * 1000:.1f} ms ({f} page faults, {c} preemptions)" for b, f, c in long)
        return (
            f"loop held (CPU) worst {max(busy) * 1000:.1f} ms, p99.9 {quantile(busy, 0.999) * 1000:.1f} ms, "
            f"{over} over 3 ms{'; the longest: ' + kernel if kernel else ''}; "
            f"wall lateness worst {max(late) * 1000:.0f} ms ({len(busy)} wake-ups){gc_text}"
        )


class HoldSampler:
    """Attribution of the loop's long holds (`--attribute MS`), for this benchmark only:
    a thread that wakes every `period` seconds and, while the loop's thread has
    spent more than `threshold` seconds of CPU since the monitor went to sleep (the
    loop is held), takes the stack of the loop's thread, weighed by the CPU that
    thread spent since the sampler last looked. The thread needs the GIL to look,
    so the switch interval is lowered to `period`: the loop's thread gives the GIL
    up that often (a little slower, but a hold is seen in the code that makes it).
    A stack of `run` alone is the loop's own C code (uvloop, libuv, the kernel's
    socket calls), which runs without the GIL. `report` prints, per phase, the
    holds over the threshold and where their CPU went, by the innermost frames."""

    def __init__(self, monitor: StallMonitor, threshold: float, period: float = 0.0005) -> None:
        self.monitor = monitor
        self.threshold = threshold
        self.period = period
        self.samples: list[tuple[float, float, tuple[str, ...]]] = []
        self._target = threading.get_ident()
        self._clock = time.pthread_getcpuclockid(self._target)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hold sampler", daemon=True)

    def start(self) -> None:
        sys.setswitchinterval(self.period)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with contextlib.suppress(OSError):  # the other core: the loop's thread is pinned to core 1
            os.sched_setaffinity(threading.get_native_id(), {0})
        last = time.clock_gettime(self._clock)
        while not self._stop.wait(self.period):
            beat = self.monitor.beat
            now = time.clock_gettime(self._clock)
            spent, last = now - last, now
            if now - beat <= self.threshold:
                continue
            frame = sys._current_frames().get(self._target)
            stack: list[str] = []
            while frame is not None and len(stack) < 40:
                code = frame.f_code
                where = code.co_filename.replace(str(ROOT) + "/", "").rsplit("site-packages/", 1)[-1]
                stack.append(f"{where}:{frame.f_lineno} {code.co_name}")
                frame = frame.f_back
            self.samples.append((beat, spent, tuple(stack)))

    def report(self, depth: int = 6, top: int = 8) -> str:
        samples, self.samples = self.samples, []
        holds: Counter[float] = Counter()
        places: Counter[tuple[str, ...]] = Counter()
        for beat, spent, stack in samples:
            holds[beat] += spent
            places[stack[:depth]] += spent
        if not holds:
            return "no hold over the threshold was sampled"
        total = sum(places.values()) or 1.0
        longest = ", ".join(f"{v * 1000:.1f}" for v in sorted(holds.values(), reverse=True)[:5])
        lines = [
            f"{len(holds)} holds over {self.threshold * 1000:.0f} ms sampled ({len(samples)} samples, "
            f"{total * 1000:.0f} ms CPU); the most sampled in one: {longest} ms"
        ]
        for stack, spent in places.most_common(top):
            lines.append(f"  {spent * 1000:.1f} ms CPU ({spent / total:.0%}):")
            lines.extend(f"      {frame}" for frame in stack)
        for beat, _ in holds.most_common(3):
            lines.append(f"  the hold of {holds[beat] * 1000:.1f} ms sampled:")
            for b, spent, stack in samples:
                if b == beat:
                    lines.append(f"    {spent * 1000:.1f} ms: " + " < ".join(stack[:depth]))
        return "\n".join(lines)


def timed_full_collection() -> str:
    """One full collection, timed (CPU), and what it had to walk: the tracked objects
    outside the permanent generation and the references they hold."""
    tracked = gc.get_objects()
    references = sum(len(gc.get_referents(o)) for o in tracked)
    count = len(tracked)
    del tracked
    started = time.thread_time()
    gc.collect()
    took = time.thread_time() - started
    return f"one full collection {took * 1000:.1f} ms ({count} tracked objects, {references} references)"


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def percentiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (
        f"p50 {statistics.median(values) * 1000:.1f} ms, p99 {quantile(values, 0.99) * 1000:.1f} ms, "
        f"max {max(values) * 1000:.1f} ms ({len(values)} changes)"
    )


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def scrapes(url: str, count: int) -> dict[str, Any]:
    """`count` full scrapes as Prometheus asks (gzip), from the client process."""
    out: dict[str, Any] = {"seconds": []}
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            started = time.perf_counter()
            async with session.get(url, headers={"Accept-Encoding": "gzip"}) as response:
                body = await response.read()  # aiohttp inflates
            out["seconds"].append(time.perf_counter() - started)
    out["bytes"] = len(body)
    out["series"] = sum(1 for line in body.split(b"\n") if line and not line.startswith(b"#"))
    return out


async def client(*arguments: str) -> asyncio.subprocess.Process:
    """Start this script's client role (scrapes, probe) in a process of its own on core 0,
    so that its work is not done on the measured loop. It waits for `go` (`run`): starting
    a process holds the loop for several ms (fork), which is the benchmark's, not the
    exporter's, so it happens before the phase's monitoring starts."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, *arguments, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    with contextlib.suppress(OSError):
        os.sched_setaffinity(proc.pid, {0})
    return proc


async def run(proc: asyncio.subprocess.Process) -> Any:
    """Let a started client go, and read its result."""
    out, _ = await proc.communicate(b"go\n")
    return json.loads(out)


async def measure(args: argparse.Namespace, sim: SimProcess) -> None:
    monitor = StallMonitor()
    monitor.start()
    sampler = HoldSampler(monitor, args.attribute / 1000) if args.attribute else None
    if sampler is not None:
        sampler.start()

    def attribution() -> None:
        if sampler is not None:
            print(sampler.report())

    await asyncio.sleep(3)
    print(f"idle loop (baseline): {monitor.report()}")
    attribution()

    exporter = Exporter(configs=[CONFIG, PROBE_CONFIG], kubeconfig=str(sim.kubeconfig_path))
    settle_memory()
    rss_before = rss_bytes()
    await monitor.reset()  # the constructor compiled the configs on this loop: not the sync's
    if sampler is not None:
        sampler.report()
    cpu, started = cpu_seconds(), time.perf_counter()
    await exporter.start()
    if args.freeze_started:
        gc.freeze()
    await exporter.wait_ready()
    sync_wall, sync_cpu = time.perf_counter() - started, cpu_seconds() - cpu
    print(f"initial sync: {monitor.report()}")
    attribution()
    objects = args.objects + 1
    print(f"sync: {objects} objects ready in {sync_wall:.1f} s, {sync_cpu:.1f} CPU s in this process")
    print(f"after the sync: {timed_full_collection()}")
    settle_memory()
    held = rss_bytes() - rss_before
    port = await exporter.serve(port=0, host="127.0.0.1")
    url = f"http://127.0.0.1:{port}/metrics"
    scraper = await client("--scrapes-of", url, "--count", str(args.scrapes))
    await asyncio.sleep(1)  # its imports, on the other core
    await monitor.reset()
    if sampler is not None:
        sampler.report()
    scrape_cpu = cpu_seconds()
    scraped = await run(scraper)
    scrape_cpu = (cpu_seconds() - scrape_cpu) / args.scrapes
    print(f"{args.scrapes} full scrapes: {monitor.report()}")
    attribution()
    size, series = scraped["bytes"], scraped["series"]
    best = min(scraped["seconds"])
    print(
        f"scrape: {series} series, {size / 1e6:.1f} MB uncompressed, best {best:.2f} s (gzip), "
        f"{scrape_cpu:.2f} CPU s each in this process"
    )
    print(
        f"memory: {held / 1e6:.0f} MB held after sync: {held / objects:.0f} bytes per object, "
        f"{held / max(series, 1):.0f} per series; the exposition itself is {size / objects:.0f} bytes "
        f"per object (held / exposition {held / max(size, 1):.2f})"
    )
    prober = await client(
        "--probe", url, "--sim", sim.url, "--token", sim.token, "--seconds", str(args.seconds)
    )
    await asyncio.sleep(1)
    sim.admin.start_churn(
        args.rate,
        seed=3,
        resources=["mongodbs.kubedb.com"],
        duration=args.seconds + 2,
        mix={"update": 1.0, "delete": 0.0, "create": 0.0},
    )
    await monitor.reset()
    if sampler is not None:
        sampler.report()
    result = await run(prober)
    during = monitor.report()
    churn = sim.admin.call("GET", "/churn")["churn"]
    print(f"churn: {churn['updates']} updates, {churn['updates'] / (args.seconds + 2):.0f}/s")
    print(f"during churn and probe polls: {during}")
    attribution()
    print(f"event -> /metrics (PATCH sent -> value served): {percentiles(result['metrics'])}")
    print(f"baseline, event -> the probe's own watch: {percentiles(result['watch'])}")
    await monitor.reset()
    stop_cpu = cpu_seconds()
    await exporter.stop()
    stop_cpu = cpu_seconds() - stop_cpu
    await asyncio.sleep(0.01)  # the monitor's pending wake-up
    print(f"stop ({stop_cpu:.2f} CPU s): {monitor.report()}")
    attribution()
    if sampler is not None:
        sampler.stop()


async def probe(url: str, sim_url: str, token: str, seconds: float) -> dict[str, list[float]]:
    """Patch the probe object every 100 ms; time its new value in a watch and in /metrics."""
    headers = {"Authorization": f"Bearer {token}"}
    seen: dict[str, float] = {}
    results: dict[str, list[float]] = {"metrics": [], "watch": []}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def watch() -> None:
            params = {"watch": "true", "fieldSelector": f"metadata.name={PROBE_NAME}"}
            async with session.get(sim_url + PROBE_PATH, params=params, timeout=None) as response:
                async for line in response.content:
                    event = orjson.loads(line)
                    value = event["object"].get("data", {}).get("probe")
                    if value is not None and value not in seen:
                        seen[value] = time.perf_counter()

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.5)
        deadline = time.monotonic() + seconds
        round_ = 0
        while time.monotonic() < deadline:
            round_ += 1
            value = str(1000 + round_)
            patch = {"data": {"probe": value}}
            sent = time.perf_counter()
            async with session.patch(
                f"{sim_url}{PROBE_PATH}/{PROBE_NAME}",
                data=orjson.dumps(patch),
                headers={"Content-Type": "application/merge-patch+json"},
            ) as response:
                response.raise_for_status()
            line = f" {value}\n".encode()
            while True:
                async with session.get(url, params={"name[]": PROBE_FAMILY}) as response:
                    body = await response.read()
                if body.endswith(line):
                    results["metrics"].append(time.perf_counter() - sent)
                    break
                await asyncio.sleep(POLL)
            if value in seen:
                results["watch"].append(seen[value] - sent)
            await asyncio.sleep(max(0.0, 0.1 - (time.perf_counter() - sent)))
        watcher.cancel()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="churn: updates per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="churn and probe duration")
    parser.add_argument("--scrapes", type=int, default=3)
    parser.add_argument(
        "--freeze", action="store_true", help="gc.freeze() after the imports, as an operator may"
    )
    parser.add_argument(
        "--freeze-started",
        action="store_true",
        help="gc.freeze() once start() returned (the kubeconfig's imports done), as an operator may",
    )
    parser.add_argument(
        "--attribute",
        type=float,
        metavar="MS",
        default=0.0,
        help="sample the stack of the loop's thread during every hold longer than MS ms and print "
        "where the samples were, per phase (a thread of the benchmark's; it slows the loop a little)",
    )
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    parser.add_argument("--scrapes-of", dest="scrape_url", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--sim", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe or args.scrape_url:
        sys.stdin.readline()  # `go` (see `client`)
    if args.probe:
        print(json.dumps(asyncio.run(probe(args.probe, args.sim, args.token, args.seconds))))
        return
    if args.scrape_url:
        print(json.dumps(asyncio.run(scrapes(args.scrape_url, args.count))))
        return
    if args.freeze:
        gc.collect()
        gc.freeze()
    sim_args = ["--bench-mongodbs", str(args.objects), "--namespaces", "0", "--mongodbs", "0", "--scale", "0"]
    sim_args += ["--nodes", "0"]
    command = " ".join(["benchmarks/embed_bench.py", *sys.argv[1:]])
    print(f"command: .venv/bin/python {command}  (python {sys.version.split()[0]}, uvloop)")
    with SimProcess(sim_args, timeout=600) as sim:
        assert sim.proc is not None
        with contextlib.suppress(OSError):
            os.sched_setaffinity(sim.proc.pid, {0})
            os.sched_setaffinity(0, {1})
        probe_object = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": PROBE_NAME, "namespace": PROBE_NAMESPACE},
            "data": {"probe": "0"},
        }
        sim.admin.bulk([{"op": "create", "object": probe_object}])
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(measure(args, sim))


if __name__ == "__main__":
    main()
