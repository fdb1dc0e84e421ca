"""Shard benchmark: initial sync, sustained churn, memory per owned object.

Setup (one run): the simulator pinned to core 0 with N MongoDB-like objects and only
the KubeDB MongoDB MetricsConfiguration; Redis on core 0 too; the shard under test
pinned to core 1. Figures:

- initial sync: seconds from starting the shard process to `/readyz` (every object
  listed, rendered, written and garbage-collected), and the shard's CPU seconds; with
  `--syncs K`, K syncs, each by a fresh shard against an emptied Redis (best, median
  and worst: on this machine one sync's seconds vary by 10-20% between runs);
- memory: the shard's RSS after sync minus the RSS of a baseline shard in the same
  run that owns no bucket (same imports, configs and watches, no objects), per object;
- churn: R events/s on the MongoDB objects for D seconds; the shard's own
  event→Redis latency histogram gives the share of events stored within 250 ms;
- in-process baselines, in the same run and on the shard's core, just before and just
  after the sync: decoding the same objects as watch events with `orjson.loads`, and
  decoding plus rendering them through the same compiled config. The sync's CPU as a multiple of these is what
  compares across machines (this machine's speed varies by 1.5x between sessions);
  what it adds to decode+render is the pipeline: watch, ownership, digests, writes,
  garbage collection, start-up.

With `--shards N` the measured shard is shard 0 of N (a static ring; the others are
not started): it owns about 1/N of the objects and skips the rest unparsed, as each
shard of a scaled-out deployment does. The baselines still cover every object, and
the churn touches every object, so the shard sees about 1/N of the changes.

    .venv/bin/python benchmarks/shard_bench.py [--objects 100000] [--rate 2000] [--seconds 30] [--syncs 1]
        [--shards 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson
import yaml
from redis import Redis

from kubesim import SimProcess

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "panopticon/data/examples/metricsconfigurations/kubedb/kubedb-com-mongodb.yaml"
sys.path.insert(0, str(ROOT))

from shard.configs import ConfigSet  # noqa: E402
from tests.support.cluster import _get, _resource  # noqa: E402
from tests.support.redis_server import RedisServer, free_port  # noqa: E402


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of /proc/PID/status in kB (`RssAnon`: without mapped files)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric(port: int, name: str) -> list[tuple[str, float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = []
    for line in text.splitlines():
        if line.startswith(name):
            key, value = line.rsplit(" ", 1)
            out.append((key, float(value)))
    return out


def p99(before: dict[str, float], after: dict[str, float]) -> str:
    """The histogram bucket holding the 99th percentile of what was observed in between."""
    deltas = sorted(
        ((float(key.split('le="')[1].rstrip('"}')), after[key] - before.get(key, 0.0)) for key in after),
        key=lambda kv: kv[0],
    )
    total = deltas[-1][1]
    if total <= 0:
        return "no observations"
    for bound, count in deltas:
        if count >= 0.99 * total:
            return f"{bound:g}s ({total:.0f} batches)"
    return "+Inf"


class Baselines:
    """Decoding the simulator's objects as watch events, and decoding plus rendering them
    through the same compiled config, timed in this process on the shard's core."""

    def __init__(self, sim: SimProcess) -> None:
        configs = ConfigSet()
        for crd in _get(sim, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]:
            configs.schemas.add_crd(crd)
        for body in _get(sim, "/apis/metrics.appscode.com/v1alpha1/metricsconfigurations")["items"]:
            configs.upsert(body)
        (target, self.programs), *_ = configs.programs_by_target().items()
        api_version, kind = target.api_version, target.kind
        found = _resource(sim, api_version, kind)
        assert found is not None, f"{api_version}/{kind} is not served"
        path, self.namespaced = found
        self.lines = [orjson.dumps({"type": "ADDED", "object": item}) for item in _get(sim, path)["items"]]

    def measure(self) -> tuple[float, float]:
        """(CPU seconds to decode every line, to decode and render every line)."""
        affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {1})
        try:
            started = time.process_time()
            for line in self.lines:
                orjson.loads(line)
            decode = time.process_time() - started
            started = time.process_time()
            for line in self.lines:
                obj = orjson.loads(line)["object"]
                for program in self.programs:
                    program.render(obj, namespaced=self.namespaced)
            return decode, time.process_time() - started
        finally:
            os.sched_setaffinity(0, affinity)


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def start_shard(
    sim: SimProcess, redis: RedisServer, index: int, shards: int, logs: Path
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    log = (logs / f"shard-{index}-of-{shards}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "shard", "--kubeconfig", str(sim.kubeconfig_path), "--redis", redis.url,
         "--shard-index", str(index), "--shards", str(shards), "--host", "127.0.0.1", "--port", str(port),
         "--no-status", "--log-level", "WARNING"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    os.sched_setaffinity(proc.pid, {1})
    return proc, port


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--syncs", type=int, default=1, help="initial syncs (a fresh shard and Redis each)")
    parser.add_argument("--shards", type=int, default=1, help="the measured shard is shard 0 of this many")
    args = parser.parse_args()
    if args.syncs < 1 or args.shards < 1:
        parser.error("--syncs and --shards must be at least 1")
    logs = Path(tempfile.mkdtemp(prefix="pan-shard-bench-"))
    redis = RedisServer()
    redis.start()
    redis_client = Redis.from_url(redis.url)
    assert redis.proc is not None
    os.sched_setaffinity(redis.proc.pid, {0})
    sim_args = ["--bench-mongodbs", str(args.objects), "--namespaces", "1", "--mongodbs", "0"]
    sim_args += [
        "--deployments",
        "0",
        "--services",
        "0",
        "--configmaps",
        "0",
        "--secrets",
        "0",
        "--nodes",
        "0",
    ]
    sim = SimProcess(sim_args, timeout=600)
    sim.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        assert sim.proc is not None
        os.sched_setaffinity(sim.proc.pid, {0})
        config = yaml.safe_load(CONFIG.read_text())
        sim.admin.bulk([{"op": "create", "object": config}])
        counts = sim.admin.state().get("objects", {})
        mongodbs = counts.get("mongodbs.kubedb.com", counts)
        print(f"simulator: {mongodbs} MongoDB objects; config {config['metadata']['name']}")

        baseline, baseline_port = start_shard(sim, redis, 5, 1, logs)  # index >= shards: owns nothing
        procs.append(baseline)
        while not ready(baseline_port):
            time.sleep(0.1)
        time.sleep(1)
        base_rss = rss_kb(baseline.pid)
        # Stopped before the measured shard starts: it shares that shard's core and
        # would otherwise spend it skipping the same list's lines.
        baseline.terminate()
        baseline.wait(20)
        procs.remove(baseline)
        # Timed just before and just after each sync: this machine's speed drifts.
        baselines = Baselines(sim)
        measured = [baselines.measure()]

        # Each sync is a fresh shard against an emptied Redis (the baseline shard's
        # layout, epoch and registry removed too); the last one stays for memory and churn.
        syncs: list[tuple[float, float, float, float]] = []  # seconds, CPU, objects, fields
        shard: subprocess.Popen[bytes] | None = None
        for _ in range(args.syncs):
            if shard is not None:
                shard.terminate()
                shard.wait(20)
                procs.remove(shard)
            redis_client.flushall()
            started = time.perf_counter()
            shard, port = start_shard(sim, redis, 0, args.shards, logs)
            procs.append(shard)
            while not ready(port):
                if shard.poll() is not None:
                    raise RuntimeError((logs / f"shard-0-of-{args.shards}.log").read_text()[-2000:])
                time.sleep(0.05)
            seconds, cpu = time.perf_counter() - started, cpu_seconds(shard.pid)
            owned = sum(v for _, v in metric(port, "panopticon_shard_owned_objects{"))
            fields = sum(v for _, v in metric(port, "panopticon_shard_fields_written_total"))
            syncs.append((seconds, cpu, owned, fields))
            measured.append(baselines.measure())
        assert shard is not None
        time.sleep(1)
        rss = rss_kb(shard.pid)
        for sync_seconds, sync_cpu, owned, fields in syncs:
            print(f"initial sync: {owned:.0f} objects, {fields:.0f} fields in {sync_seconds:.1f}s "
                  f"(shard CPU {sync_cpu:.1f}s, including start-up)")  # fmt: skip
        if len(syncs) > 1:
            walls = sorted(sync[0] for sync in syncs)
            print(f"initial syncs: best {walls[0]:.1f}s, median {statistics.median(walls):.1f}s, "
                  f"worst {walls[-1]:.1f}s of {len(walls)}")  # fmt: skip
        sync_cpu = statistics.median(sync[1] for sync in syncs)
        owned = syncs[-1][2]  # the shard still running
        per_object = (rss - base_rss) * 1024 / max(owned, 1)
        print(f"memory: shard RSS {rss / 1024:.0f} MB, empty baseline {base_rss / 1024:.0f} MB: "
              f"{per_object:.0f} bytes per owned object")  # fmt: skip

        before = dict(metric(port, "panopticon_shard_event_to_store_seconds_bucket"))
        events_before = sum(v for _, v in metric(port, "panopticon_shard_events_total"))
        sim.admin.start_churn(args.rate, seed=3, resources=["mongodbs.kubedb.com"], duration=args.seconds)
        time.sleep(args.seconds + 3)
        churn = sim.admin.call("GET", "/churn")["churn"]
        after = dict(metric(port, "panopticon_shard_event_to_store_seconds_bucket"))
        events = sum(v for _, v in metric(port, "panopticon_shard_events_total")) - events_before
        done = churn["updates"] + churn["deletes"] + churn["creates"]
        rate = done / args.seconds
        print(f"churn: {done} changes at {rate:.0f}/s for {args.seconds:.0f}s; shard saw {events:.0f} events")
        print(f"event->Redis latency (per write batch, from its oldest event): p99 <= {p99(before, after)}")
        decode = sum(d for d, _ in measured) / len(measured)
        render = sum(r for _, r in measured) / len(measured)
        spread = ", ".join(f"{d:.1f}s/{r:.1f}s" for d, r in measured)
        print(f"baselines in this process on the shard's core, {len(baselines.lines)} objects, before and "
              f"after each sync ({spread}): decode {decode:.1f}s, decode+render {render:.1f}s; the sync's "
              f"(median) CPU is {sync_cpu / decode:.1f}x decode, "
              f"{sync_cpu / render:.2f}x decode+render")  # fmt: skip
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(20)
        sim.stop()
        redis_client.close()
        redis.close()
    command = (
        f"benchmarks/shard_bench.py --objects {args.objects} --rate {args.rate:g} --seconds {args.seconds:g}"
        f" --syncs {args.syncs}" + (f" --shards {args.shards}" if args.shards > 1 else "")
    )
    print(f"reproduce: .venv/bin/python {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
