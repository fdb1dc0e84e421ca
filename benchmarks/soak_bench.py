"""Soak benchmark: does memory only grow? RSS slopes of shards and aggregator over time.

Setup (one run): the simulator with every example config and a workload (`--scale`
copies of the example objects, `--mongodbs` per namespace), a redis-server, `--shards`
shard processes (a static ring) and one aggregator, all with their default settings.
For `--minutes`:

- churn: `--rate` object changes per second on the target kinds: updates (the
  simulator's churn) and, `--replace` per second, an object deleted and a copy of it
  created under a new name and uid (oldest first), so that the object count stays
  flat while uids come and go. `--sim-churn` uses the simulator's own random
  creates and deletes instead (10% each): kinds with few objects then drift upwards
  (a kind never drops below 2 objects but may grow without bound), and the series
  count with them;
- a config edit every `--config-every` seconds, in a cycle: a metric's HELP text
  changes; a metric with a name never used before is added; it is removed again
  (its family is retired). Every edit restarts the kind's reflector (a relist);
- a gzip scrape of the aggregator every `--scrape-every` seconds (the series count
  is taken from it).

Every `--sample-every` seconds: each shard's and the aggregator's RSS (VmRSS, and
RssAnon: without the pages of mapped files, such as code first run late), Redis'
`used_memory`, the entries of the `{p}:retired` hash. Figures: the least-squares slope
(MB per hour) of each after `--warmup` minutes, over the whole remaining time and over
each quarter of it (growth that levels off shows shrinking slopes), and of the lowest sample of each 5
minutes (the shards' heap saws by a few MB as glibc grows and trims it: a leak raises
the floor it trims down to), and the levels minute by minute to read it from.

`--code DIR` runs the shards and the aggregator from another checkout (e.g. an export
of main, `git archive main | tar -x -C DIR`) with the same interpreter and the same
simulator, to compare two versions under the same load.

    .venv/bin/python benchmarks/soak_bench.py [--minutes 30] [--warmup 5] [--rate 500] [--replace 25]
        [--shards 2] [--config-every 120] [--scrape-every 2] [--seed 1] [--sim-churn] [--code DIR]
"""

from __future__ import annotations

import argparse
import collections
import copy
import gzip
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.shard_bench import ready, rss_kb  # noqa: E402
from kubesim import SimProcess  # noqa: E402
from panopticon.store.layout import Layout  # noqa: E402
from tests.chaos.suite import CHURNED  # noqa: E402
from tests.support.redis_server import RedisServer, free_port  # noqa: E402

REPLACED = (("kubedb.com/v1", "MongoDB"), ("v1", "Pod"))
"""Kinds whose objects are replaced (deleted, and copied under a new uid)."""
EDITED = "dpl-metrics-config"
"""The config the edits cycle through (Deployments are churned)."""
CONFIGS = "/objects?apiVersion=metrics.appscode.com/v1alpha1&kind=MetricsConfiguration"


@dataclass
class Samples:
    """One quantity over time: (seconds since the start, value)."""

    points: list[tuple[float, float]] = field(default_factory=list)

    def slope_per_hour(self, since: float, until: float = float("inf")) -> float:
        window = [(t, v) for t, v in self.points if since <= t <= until]
        if len(window) < 3:
            return float("nan")
        return statistics.linear_regression([t / 3600 for t, _ in window], [v for _, v in window]).slope

    def floor_slope_per_hour(self, since: float, until: float, window: float = 300.0) -> float:
        """The slope of each `window`'s lowest sample: the heap saws by a few MB as
        glibc grows and trims it, and a leak raises the floor it trims down to."""
        floors: list[tuple[float, float]] = []
        start = since
        while start + window <= until + 1e-6:
            inside = [v for t, v in self.points if start <= t < start + window]
            if inside:
                floors.append((start + window / 2, min(inside)))
            start += window
        if len(floors) < 3:
            return float("nan")
        return statistics.linear_regression([t / 3600 for t, _ in floors], [v for _, v in floors]).slope

    def at(self, t: float) -> float:
        """The median of the samples within 30 s of `t` (RSS jitters by a few pages)."""
        near = [v for s, v in self.points if abs(s - t) <= 30]
        return statistics.median(near) if near else float("nan")


class Scraper(threading.Thread):
    """A gzip scrape every `every` seconds; keeps the last series count."""

    def __init__(self, url: str, every: float) -> None:
        super().__init__(daemon=True, name="scraper")
        self.url, self.every = url, every
        self.series = self.scrapes = self.failures = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            request = urllib.request.Request(self.url, headers={"Accept-Encoding": "gzip"})
            try:
                with urllib.request.urlopen(request, timeout=30) as r:
                    body = r.read()
                    if r.headers.get("Content-Encoding") == "gzip":
                        body = gzip.decompress(body)
            except OSError:
                self.failures += 1
                continue
            self.series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
            self.scrapes += 1


class ConfigEditor:
    """Edits `EDITED` in a cycle: HELP text, a new metric (a name never used before),
    that metric removed."""

    def __init__(self, sim: SimProcess) -> None:
        self.sim = sim
        self.edits = 0
        self.added = ""

    def edit(self) -> str:
        (body,) = [c for c in self.sim.admin.call("GET", CONFIGS)["items"] if c["metadata"]["name"] == EDITED]
        metrics: list[dict[str, Any]] = body["spec"]["metrics"]
        step = self.edits % 3
        self.edits += 1
        if step == 0:
            metrics[0]["help"] = f"Number of desired pods of a deployment (edit {self.edits})."
            what = "help changed"
        elif step == 1:
            added = copy.deepcopy(metrics[0])
            self.added = added["name"] = f"kube_deployment_soak_{self.edits}_replicas"
            metrics.append(added)
            what = f"metric {self.added} added"
        else:
            body["spec"]["metrics"] = [m for m in metrics if m["name"] != self.added]
            what = f"metric {self.added} removed"
        self.sim.admin.bulk([{"op": "update", "object": body}])
        return what


def _ref(obj: dict[str, Any]) -> dict[str, str]:
    meta = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": meta["name"],
        "namespace": meta.get("namespace", ""),
    }


class Replacer:
    """Replaces objects oldest first: each replacement deletes one and creates a copy
    under a new name (and so a new uid), keeping the count of each kind flat."""

    def __init__(self, sim: SimProcess) -> None:
        self.sim = sim
        self.live: collections.deque[dict[str, Any]] = collections.deque()
        for api_version, kind in REPLACED:
            self.live.extend(sim.admin.call("GET", f"/objects?apiVersion={api_version}&kind={kind}")["items"])
        # Finalizers would keep deleted objects (nothing here removes them): drop them.
        with_finalizers = [obj for obj in self.live if obj["metadata"].get("finalizers")]
        patch = {"metadata": {"finalizers": None}}
        sim.admin.bulk([{"op": "patch", **_ref(obj), "patch": patch} for obj in with_finalizers])
        self.replaced = 0
        self.failures = 0

    def replace(self, count: int) -> None:
        ops: list[dict[str, Any]] = []
        for _ in range(min(count, len(self.live))):
            old = self.live.popleft()
            ops.append({"op": "delete", **_ref(old)})
            self.replaced += 1
            dropped = ("uid", "resourceVersion", "creationTimestamp", "finalizers")
            meta = {k: v for k, v in old["metadata"].items() if k not in dropped}
            meta["name"] = f"{meta['name'].rsplit('-soak', 1)[0]}-soak{self.replaced}"
            new = {k: v for k, v in old.items() if k != "status"} | {"metadata": meta}
            ops.append({"op": "create", "object": new})
            self.live.append(new)
        if not ops:
            return
        try:
            self.sim.admin.bulk(ops)
        except OSError:
            # The simulator did not answer in time (a loaded machine): these objects
            # may or may not have been replaced; the soak goes on.
            self.failures += 1


def objects_in(sim: SimProcess) -> int:
    return sum(v for k, v in sim.admin.state().get("objects", {}).items() if k != "events")


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.code: Path | None = args.code.resolve() if args.code else None
        self.logs = Path(tempfile.mkdtemp(prefix="pan-soak-"))
        self.redis = RedisServer()
        workload = ["--mongodbs", str(args.mongodbs)]
        self.sim = SimProcess(
            ["--with-configs", "--scale", str(args.scale), "--seed", str(args.seed), *workload],
            timeout=300,
        )
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.samples: dict[str, Samples] = {}
        self.retired = Samples()
        self.objects = Samples()

    def _spawn(self, name: str, args: list[str], health_port: int) -> None:
        env = dict(os.environ)
        if self.code is not None:
            env["PYTHONPATH"] = str(self.code)
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.code or ROOT,
            )
        self.procs[name] = proc
        deadline = time.monotonic() + 300
        while not ready(health_port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)

    def start(self) -> int:
        """Start everything; return the aggregator's metrics port."""
        self.redis.start()
        self.sim.start()
        kube = ["--kubeconfig", str(self.sim.kubeconfig_path)]
        common = ["--redis", self.redis.url, "--host", "127.0.0.1", "--log-level", "WARNING"]
        for index in range(self.args.shards):
            port = free_port()
            ring = ["--shard-index", str(index), "--shards", str(self.args.shards)]
            self._spawn(f"shard-{index}", ["shard", *kube, *common, *ring, "--port", str(port)], port)
        metrics_port, telemetry_port = free_port(), free_port()
        ports = ["--port", str(metrics_port), "--telemetry-port", str(telemetry_port)]
        self._spawn("aggregator", ["aggregator", *common, *ports], telemetry_port)
        names = [n for name in self.procs for n in (name, f"{name} anon")]
        self.samples = {name: Samples() for name in [*names, "redis used_memory"]}
        return metrics_port

    def sample(self, t: float, client: Redis) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited {proc.returncode}: see {self.logs}")
            self.samples[name].points.append((t, rss_kb(proc.pid) / 1024))
            self.samples[f"{name} anon"].points.append((t, rss_kb(proc.pid, "RssAnon") / 1024))
        used = int(client.info("memory")["used_memory"]) / 2**20
        self.samples["redis used_memory"].points.append((t, used))
        self.retired.points.append((t, client.hlen(Layout().retired_key)))

    def run(self, scraper: Scraper) -> dict[str, Any]:
        args = self.args
        client = Redis.from_url(self.redis.url)
        editor = ConfigEditor(self.sim)
        replacer = Replacer(self.sim)
        if args.sim_churn:
            self.sim.admin.start_churn(args.rate, seed=args.seed, resources=list(CHURNED))
        else:
            updates = {"update": 1.0, "delete": 0.0, "create": 0.0}
            rate = max(args.rate - 2 * args.replace, 0.0)
            self.sim.admin.start_churn(rate, seed=args.seed, resources=list(CHURNED), mix=updates)
        started = time.monotonic()
        total = args.minutes * 60
        next_sample, next_edit, next_report = started, started + args.config_every, started
        try:
            while (now := time.monotonic()) - started < total:
                t = now - started
                if not args.sim_churn:
                    replacer.replace(int(t * args.replace) - replacer.replaced)
                if now >= next_sample:
                    next_sample += args.sample_every
                    self.sample(t, client)
                if now >= next_edit:
                    next_edit += args.config_every
                    try:
                        what = editor.edit()
                    except OSError as e:  # the simulator did not answer in time
                        what = f"edit not made ({e})"
                    print(f"  {t / 60:5.1f} min: config {EDITED}: {what}", flush=True)
                if now >= next_report:
                    next_report += 60
                    self.objects.points.append((t, objects_in(self.sim)))
                    shown = [(n, s) for n, s in self.samples.items() if not n.endswith(" anon")]
                    levels = "  ".join(f"{name} {s.points[-1][1]:6.1f}" for name, s in shown)
                    print(
                        f"  {t / 60:5.1f} min: MB {levels}  objects {self.objects.points[-1][1]:.0f}"
                        f"  series {scraper.series}  retired {self.retired.points[-1][1]:.0f}",
                        flush=True,
                    )
                time.sleep(max(0.0, 1.0 - (time.monotonic() - now)))
            churn = self.sim.admin.call("GET", "/churn")["churn"] or {}
            self.objects.points.append((total, objects_in(self.sim)))
        finally:
            self.sim.admin.stop_churn()
            client.close()
        return {
            "churn": churn,
            "edits": editor.edits,
            "replaced": replacer.replaced,
            "replace_failures": replacer.failures,
        }

    def report(self, done: dict[str, Any], scraper: Scraper) -> None:
        args = self.args
        churn = done["churn"]
        warm, total = args.warmup * 60, args.minutes * 60
        changes = churn.get("updates", 0) + churn.get("deletes", 0) + churn.get("creates", 0)
        print(
            f"churn: {changes} changes by the simulator ({churn.get('creates', 0)} creates, "
            f"{churn.get('deletes', 0)} deletes), {done['replaced']} objects replaced in {total:.0f}s"
            f" ({done['replace_failures']} replacement calls unanswered); "
            f"objects {self.objects.points[0][1]:.0f} -> {self.objects.points[-1][1]:.0f}; "
            f"{done['edits']} config edits; {scraper.scrapes} gzip scrapes ({scraper.failures} failed), "
            f"{scraper.series} series at the end"
        )
        quarter = (total - warm) / 4
        bounds = [warm + i * quarter for i in range(5)]
        print(
            f"slopes after {args.warmup:g} min of warm-up (least squares, MB per hour), then by quarter, and"
            " of the 5-minute minima (the floor):"
        )
        for name, s in self.samples.items():
            quarters = ", ".join(f"{s.slope_per_hour(a, b):+.2f}" for a, b in itertools.pairwise(bounds))
            print(
                f"  {name:18s} {s.slope_per_hour(warm):+7.2f} MB/h  (quarters: {quarters}; floor"
                f" {s.floor_slope_per_hour(warm, total):+.2f});"
                f" {s.at(warm):.1f} MB at {args.warmup:g} min, {s.at(total):.1f} MB at the end"
            )
        print(
            f"  retired families: {self.retired.at(0):.0f} at the start,"
            f" {self.retired.points[-1][1]:.0f} at the end"
        )

    def dump(self, path: Path) -> None:
        """Every sample as JSON: {name: [[seconds, value], ...]}."""
        data = {name: s.points for name, s in self.samples.items()}
        data |= {"retired families": self.retired.points, "objects": self.objects.points}
        path.write_text(json.dumps(data))

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        try:
            for proc in self.procs.values():
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(60)
        finally:
            self.sim.stop()
            self.redis.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0, help="minutes left out of the slopes")
    parser.add_argument("--rate", type=float, default=500.0, help="object changes per second")
    parser.add_argument("--replace", type=float, default=25.0, help="objects replaced per second")
    parser.add_argument("--sim-churn", action="store_true", help="the simulator's random creates and deletes")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--config-every", type=float, default=120.0, help="seconds between config edits")
    parser.add_argument("--scrape-every", type=float, default=2.0)
    parser.add_argument("--sample-every", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=int, default=2, help="copies of each example object")
    parser.add_argument("--mongodbs", type=int, default=200, help="MongoDBs per namespace")
    parser.add_argument("--code", type=Path, help="run shards and aggregator from this checkout")
    parser.add_argument("--samples", type=Path, help="also write every sample here (JSON)")
    args = parser.parse_args()
    if args.warmup >= args.minutes:
        parser.error("--warmup must be shorter than --minutes")
    soak = Soak(args)
    scraper: Scraper | None = None
    try:
        metrics_port = soak.start()
        print(f"code: {soak.code or ROOT}; logs: {soak.logs}")
        print(f"simulator: {objects_in(soak.sim)} objects and the example configs; {args.shards} shards and"
              f" an aggregator ready (interpreter {sys.executable})", flush=True)  # fmt: skip
        scraper = Scraper(f"http://127.0.0.1:{metrics_port}/metrics", args.scrape_every)
        scraper.start()
        done = soak.run(scraper)
        scraper.stopped.set()
        soak.report(done, scraper)
        if args.samples:
            soak.dump(args.samples)
    finally:
        if scraper is not None:
            scraper.stopped.set()
        soak.stop()
    command = (
        f"benchmarks/soak_bench.py --minutes {args.minutes:g} --warmup {args.warmup:g} --rate {args.rate:g}"
        + (" --sim-churn" if args.sim_churn else f" --replace {args.replace:g}")
        + f" --shards {args.shards} --config-every {args.config_every:g} --scrape-every {args.scrape_every:g}"
        + f" --seed {args.seed}"
        + (f" --code {soak.code}" if soak.code else "")
    )
    print(f"reproduce: .venv/bin/python {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
