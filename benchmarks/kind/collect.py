"""Measure one exporter run on the kind cluster and write results/<name>.json.

run.sh starts the exporter's processes (Panopticon's shards and aggregator, or
kube-state-metrics shards) and then this script with their scrape URLs, readiness
URLs and process ids. Every --interval seconds it scrapes all --target URLs at once
(one Prometheus scrape of the exporter: KSM shards are scraped separately, Panopticon's
aggregator serves everything) and samples the processes. Phases:

1. sync: from launch (--started) until the sample count has held for
   --stable-scrapes scrapes and every --ready URL answers 200. The time to the first
   complete scrape is when the first scrape that already had that final count ended,
   counted from launch;
2. steady: --steady seconds with nothing changing;
3. churn: churn.py at the preset's rate for its seconds, then until stable again;
4. fault (with --fault): faults.sh, then until the count is back to what it was
   before and the readiness URLs answer: the recovery time.

Per phase: scrape latency p50/p99/max, /metrics bytes as sent (gzip) and decoded,
samples, failed scrapes; CPU seconds, CPU cores and RSS of each process from
/proc/<pid> (a container whose pid is not visible: `docker stats`); and API server
figures from `kubectl get --raw /metrics` (differences over the phase):
apiserver_request_total for LIST and WATCH by resource, apiserver_request_duration_seconds
sum and count of LIST, apiserver_watch_events_total and apiserver_watch_events_sizes by
resource, and apiserver_storage_objects at the phase's end. Those are cluster-wide: the
controllers' own requests are in them too.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from kind_cluster import DEFAULT_CLUSTER, HERE, KIND_TOOLS, kubeconfig_for, require_tools
from probes import (
    Proc,
    ProcSample,
    Scrape,
    all_ready,
    apiserver_snapshot,
    container_pid,
    figures_delta,
    scrape,
)
from workload_presets import load_preset

# --- phases ----------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


@dataclass(slots=True)
class Phase:
    name: str
    started: float
    scrapes: list[Scrape] = field(default_factory=list)
    procs_before: dict[str, ProcSample | None] = field(default_factory=dict)
    procs_after: dict[str, ProcSample | None] = field(default_factory=dict)
    rss_peak: dict[str, float] = field(default_factory=dict)
    apiserver: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def stable_count(self, n: int) -> int | None:
        """The sample count of the last `n` scrapes when they all succeeded and agree."""
        last = self.scrapes[-n:]
        if len(last) < n or not all(s.ok for s in last) or len({s.samples for s in last}) != 1:
            return None
        return last[0].samples

    def summary(self) -> dict[str, Any]:
        ok = [s for s in self.scrapes if s.ok]
        seconds = time.time() - self.started
        procs = {}
        for role, after in self.procs_after.items():
            before = self.procs_before.get(role)
            cpu = (
                after.cpu_seconds - before.cpu_seconds
                if after and before and after.cpu_seconds is not None and before.cpu_seconds is not None
                else None
            )
            procs[role] = {
                "cpu_seconds": None if cpu is None else round(cpu, 3),
                "cpu_cores": None if cpu is None else round(cpu / seconds, 4),
                "rss_mb_peak": round(self.rss_peak.get(role, 0.0), 1),
                "rss_mb_end": None if after is None else round(after.rss_mb, 1),
            }
        latencies = [s.seconds for s in ok]
        return {
            "seconds": round(seconds, 3),
            "scrapes": len(self.scrapes),
            "failed_scrapes": len(self.scrapes) - len(ok),
            "errors": sorted({s.error for s in self.scrapes if s.error})[:5],
            "scrape_seconds": {
                "p50": percentile(latencies, 0.5),
                "p99": percentile(latencies, 0.99),
                "max": max(latencies, default=None),
            },
            "metrics_bytes": {
                "decoded_p50": percentile([float(s.body_bytes) for s in ok], 0.5),
                "wire_p50": percentile([float(s.wire_bytes) for s in ok], 0.5),
            },
            "samples": {
                "last": ok[-1].samples if ok else None,
                "max": max((s.samples for s in ok), default=None),
            },
            "processes": procs,
            "apiserver": self.apiserver,
            **self.extra,
            "raw_scrapes": [[s.at, round(s.seconds, 4), s.body_bytes, s.samples, s.ok] for s in self.scrapes],
        }


class Collector:
    def __init__(self, args: argparse.Namespace, session: aiohttp.ClientSession, procs: list[Proc]) -> None:
        self.args = args
        self.session = session
        self.procs = procs
        self.t0: float = args.started

    def _sample_procs(self, phase: Phase) -> dict[str, ProcSample | None]:
        samples = {p.role: p.sample() for p in self.procs}
        for role, s in samples.items():
            if s is not None:
                phase.rss_peak[role] = max(phase.rss_peak.get(role, 0.0), s.rss_mb)
        return samples

    async def phase(
        self,
        name: str,
        *,
        done: Callable[[Phase], bool] | None,
        limit: float,
        helper: tuple[str, ...] = (),
    ) -> Phase:
        """Scrape every interval until `done(phase)` (checked once the `helper` command,
        started with the phase, has exited; `completed` says whether it came true) or for
        `limit` seconds at most (without `done`: for `limit` seconds). API server figures
        are taken at both ends; the helper's JSON result goes to `phase.extra[helper_key]`."""
        phase = Phase(name, time.time())
        before = await apiserver_snapshot(self.args.kubeconfig)
        phase.procs_before = self._sample_procs(phase)
        background = await asyncio.create_subprocess_exec(*helper, stdout=subprocess.PIPE) if helper else None
        deadline = time.monotonic() + limit
        while True:
            tick = time.monotonic()
            phase.scrapes.append(await scrape(self.session, self.args.target, self.t0))
            phase.procs_after = self._sample_procs(phase)
            finished = background is None or background.returncode is not None
            if done is not None and finished and (await self.ready()) and done(phase):
                phase.extra["completed"] = True
                break
            if time.monotonic() > deadline:
                if done is not None:
                    phase.extra["completed"] = False
                if background is not None and background.returncode is None:
                    background.terminate()
                break
            await asyncio.sleep(max(0.0, self.args.interval - (time.monotonic() - tick)))
        phase.apiserver = figures_delta(before, await apiserver_snapshot(self.args.kubeconfig))
        if background is not None:
            phase.extra[name] = await helper_result(background)
        return phase

    async def ready(self) -> bool:
        return await all_ready(self.session, self.args.ready) if self.args.ready else True

    def stable(self, phase: Phase) -> bool:
        return phase.stable_count(self.args.stable_scrapes) is not None

    async def run(self) -> dict[str, Any]:
        args = self.args
        phases: dict[str, Any] = {}
        sync = await self.phase("sync", done=self.stable, limit=args.sync_timeout)
        final = sync.stable_count(args.stable_scrapes)
        first = next((s for s in sync.scrapes if s.ok and s.samples == final), None)
        phases["sync"] = {
            "time_to_first_complete_scrape_s": first.at if first and final is not None else None,
            **sync.summary(),
        }
        steady = await self.phase("steady", done=None, limit=args.steady)
        phases["steady"] = steady.summary()
        if args.churn_rate > 0 and args.churn_seconds > 0:
            phase = await self.phase(
                "churn",
                done=self.stable,
                limit=args.churn_seconds + args.sync_timeout,
                helper=(
                    sys.executable, str(HERE / "churn.py"), "--preset", args.preset, "--kubeconfig",
                    args.kubeconfig, "--rate", f"{args.churn_rate:g}", "--seconds", f"{args.churn_seconds:g}",
                ),
            )  # fmt: skip
            phases["churn"] = phase.summary()
        if args.fault:
            baseline = phases["churn"]["samples"]["last"] if "churn" in phases else steady.stable_count(1)
            phase = await self.phase(
                "fault",
                done=lambda p: p.stable_count(args.stable_scrapes) == baseline,
                limit=args.fault_timeout,
                helper=("bash", str(HERE / "faults.sh"), args.fault, "--name", args.cluster),
            )
            completed = phase.extra["completed"]
            phase.extra["recovery_s"] = round(time.time() - phase.started, 3) if completed else None
            phases["fault"] = phase.summary()
        return phases


async def helper_result(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    """The JSON line a helper (churn.py, faults.sh) printed last, with its exit status."""
    out, _ = await proc.communicate()
    lines = [line for line in out.decode(errors="replace").splitlines() if line.startswith("{")]
    result = orjson.loads(lines[-1]) if lines else {}
    return {**result, "exit_status": proc.returncode}


# --- the run ----------------------------------------------------------------------


def parse_procs(specs: list[str], *, containers: bool) -> list[Proc]:
    procs = []
    for spec in specs:
        role, _, value = spec.partition("=")
        if not value:
            raise SystemExit(f"collect.py: expected ROLE=VALUE, got {spec!r}")
        if containers:
            procs.append(Proc(role, container_pid(value), value))
        else:
            procs.append(Proc(role, int(value)))
    return procs


def context(args: argparse.Namespace, *, sharding: bool) -> dict[str, Any]:
    """What the figures depend on: versions, gates, host, workload."""
    preset = load_preset(args.preset)
    try:
        version = orjson.loads(
            subprocess.run(
                ["kubectl", "--kubeconfig", args.kubeconfig, "version", "-o", "json"],
                capture_output=True,
                check=False,
            ).stdout
            or b"{}"
        )
    except orjson.JSONDecodeError:
        version = {}
    return {
        "exporter": args.exporter,
        "shards": args.shards,
        "preset": preset.name,
        "workload": preset.workload,
        "sim_command": preset.sim_command(sharding=sharding),
        "cluster": args.cluster,
        "kubernetes": (version.get("serverVersion") or {}).get("gitVersion"),
        "kubectl": (version.get("clientVersion") or {}).get("gitVersion"),
        "host": {"cpus": os.cpu_count(), "machine": platform.machine(), "system": platform.platform()},
        "started": args.started,
        "interval_s": args.interval,
        "command": sys.argv,
    }


async def measure(args: argparse.Namespace, procs: list[Proc]) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=max(30.0, args.interval * 6))
    async with aiohttp.ClientSession(auto_decompress=False, timeout=timeout) as session:
        gates = (await apiserver_snapshot(args.kubeconfig)).get("gates", {})
        phases = await Collector(args, session, procs).run()
    return {"feature_gates": gates, "phases": phases}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--target", action="append", default=[], help="a /metrics URL of the exporter (repeat)"
    )
    parser.add_argument("--ready", action="append", default=[], help="a readiness URL (repeat)")
    parser.add_argument("--proc", action="append", default=[], help="ROLE=PID of a process to measure")
    parser.add_argument(
        "--container", action="append", default=[], help="ROLE=NAME of a container to measure"
    )
    parser.add_argument("--exporter", default="panopticon", help="panopticon or ksm (a label in the results)")
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--preset", default="small")
    parser.add_argument(
        "--started", type=float, help="epoch seconds when the exporter was launched (default: now)"
    )
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between scrapes (default 5)")
    parser.add_argument(
        "--stable-scrapes", type=int, default=3, help="equal sample counts that make it complete"
    )
    parser.add_argument("--sync-timeout", type=float, default=900.0)
    parser.add_argument("--steady", type=float, default=60.0, help="seconds of the steady phase (default 60)")
    parser.add_argument(
        "--churn-rate", type=float, help="events/s (default: the preset's; 0: no churn phase)"
    )
    parser.add_argument("--churn-seconds", type=float, help="default: the preset's")
    parser.add_argument(
        "--fault", choices=("restart", "apiserver"), help="run faults.sh MODE after the churn"
    )
    parser.add_argument("--fault-timeout", type=float, default=600.0)
    parser.add_argument("--cluster", default=DEFAULT_CLUSTER)
    parser.add_argument("--kubeconfig", help="the cluster's kubeconfig (default: the kind cluster's)")
    parser.add_argument(
        "--out", help="results file (default results/<preset>-<exporter>-s<shards>-<time>.json)"
    )
    args = parser.parse_args(argv)

    require_tools(("kubectl",) if args.kubeconfig and not (args.fault or args.container) else KIND_TOOLS)
    args.kubeconfig = kubeconfig_for(args.kubeconfig, args.cluster)
    if not args.target:
        parser.error("at least one --target URL is needed")
    preset = load_preset(args.preset)
    args.started = time.time() if args.started is None else args.started
    args.churn_rate = preset.churn_rate if args.churn_rate is None else args.churn_rate
    args.churn_seconds = preset.churn_seconds if args.churn_seconds is None else args.churn_seconds
    procs = parse_procs(args.proc, containers=False) + parse_procs(args.container, containers=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(args.started))
    out = Path(args.out or HERE / "results" / f"{preset.name}-{args.exporter}-s{args.shards}-{stamp}.json")

    measured = asyncio.run(measure(args, procs))
    result = {
        **context(args, sharding=measured["feature_gates"].get("ShardedListAndWatch", False)),
        **measured,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    sync = result["phases"]["sync"]
    print(
        f"{out}: first complete scrape after {sync['time_to_first_complete_scrape_s']} s; "
        f"steady scrape p50 {result['phases']['steady']['scrape_seconds']['p50']} s",
        file=sys.stderr,
    )
    return 0 if sync.get("completed") else 1


if __name__ == "__main__":
    sys.exit(main())
