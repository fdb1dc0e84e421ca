"""A rolling upgrade from a previous version to this tree, end to end, checked throughout.

Extracts a previous revision with `git archive REV | tar -x`, runs a real redis-server,
this tree's simulator (configs, churning objects), a StatefulSet's worth of shards and
one aggregator of the OLD version, and waits until the store equals the offline
render. Then it does what the StatefulSet controller does on a pod-template change:
bumps the StatefulSet's generation, replaces the shards highest ordinal first, each
Ready (after its first sync) before the next goes, then replaces the aggregator
(surge one, then stop the old). Meanwhile the in-flight checks scrape continuously
(`tests.upgrade.checks`: the chaos suite's checks plus missing series). At the end the
store and the new aggregator's scrape must equal the offline render: zero missing,
unexpected or duplicated series and no HELP/TYPE difference.

    .venv/bin/python -m tests.upgrade.rolling --from d94eb1e [--shards 3] [--seed 1]
        [--old-deps DIR]   # a directory on the old version's PYTHONPATH, for
                           # dependencies this tree dropped (d94eb1e needs `hashring`:
                           # pip install --target DIR hashring==1.5.1)
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kubesim import SimProcess
from tests.chaos.inflight import STALE_BOUND, InFlight
from tests.chaos.suite import CHURNED, _headers
from tests.support.cluster import (
    NAMESPACE,
    STATEFULSET,
    AggregatorProcess,
    Lines,
    ShardProcess,
    converge,
    describe_difference,
    expected_lines,
    render_truth,
    statefulset,
    stored_lines,
)
from tests.support.redis_server import RedisServer
from tests.upgrade.checks import SETTLE_BOUND, Missing, RollChecker

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FROM = "d94eb1e"
"""The last commit with consistent-hash ring ownership, before contiguous ranges."""


class SetupError(RuntimeError):
    """The previous version cannot be obtained or started (no git, unknown revision,
    a dependency missing): the run cannot say anything about the upgrade."""


def extract(rev: str, dest: Path) -> Path:
    """`git archive REV | tar -x -C dest`; a clear error when git or REV is missing."""
    git = shutil.which("git")
    if git is None:
        raise SetupError("the upgrade test needs `git` on PATH to extract the previous version")
    found = subprocess.run(
        [git, "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        check=False,
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        raise SetupError(
            f"revision {rev} is not in the repository at {ROOT} (a shallow clone? "
            f"`git fetch --unshallow` gives the history the upgrade test needs)"
        )
    dest.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen([git, "-C", str(ROOT), "archive", rev], stdout=subprocess.PIPE) as archive:
        untar = subprocess.run(
            ["tar", "-x", "-C", str(dest)], stdin=archive.stdout, capture_output=True, check=False
        )
    if archive.wait() != 0 or untar.returncode != 0:
        raise SetupError(f"git archive {rev} | tar -x failed: {untar.stderr.decode(errors='replace')}")
    return dest


def environment(tree: Path, extra_path: Path | None = None) -> dict[str, str]:
    """The environment that runs `python -m shard` from `tree` (and nothing of this one)."""
    path = [str(tree)] + ([str(extra_path)] if extra_path else [])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), "PYTHONUNBUFFERED": "1"}


def check_importable(tree: Path, env: dict[str, str]) -> None:
    """Import the old shard and aggregator commands once, so a missing dependency is
    named here instead of as a shard that never gets ready."""
    probe = subprocess.run(
        [sys.executable, "-c", "import shard.command, aggregator.command"],
        cwd=tree,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        raise SetupError(
            f"the previous version at {tree} does not import with this interpreter: {last} "
            f"(a dependency this tree dropped? put it in a directory and pass --old-deps DIR)"
        )


@dataclass
class Handover:
    what: str
    seconds: float
    """From stopping the old process to the new one's readiness."""


@dataclass
class Report:
    from_rev: str
    shards: int
    seed: int
    churn_rate: float
    series_before: int = 0
    handovers: list[Handover] = field(default_factory=list)
    roll_seconds: float = 0.0
    churn_events: int = 0
    series: int = 0
    missing: int = 0
    unexpected: int = 0
    duplicated: int = 0
    header_differences: int = 0
    served_differences: int = 0
    """Lines in which the new aggregator's final scrape differs from the offline render."""
    in_flight: InFlight = field(default_factory=InFlight)
    missing_in_flight: Missing = field(default_factory=Missing)
    ok: bool = False


class Rolling:
    def __init__(
        self, *, old: Path, old_env: dict[str, str], report: Report, logs: Path, scale: int = 2
    ) -> None:
        self.old, self.old_env = old, old_env
        self.new_env = environment(ROOT)
        self.report = report
        self.logs = logs
        self.redis = RedisServer()
        self.sim = SimProcess(
            ["--with-configs", "--scale", "2", "--seed", str(report.seed), "--mongodbs", "30"]
        )
        self.shards: dict[int, ShardProcess] = {}
        self.aggregator: AggregatorProcess | None = None
        self.checker: RollChecker | None = None

    def _shard(self, index: int, *, new: bool) -> ShardProcess:
        return ShardProcess(
            index,
            kubeconfig=self.sim.kubeconfig_path,
            redis_url=self.redis.url,
            log_dir=self.logs,
            cwd=ROOT if new else self.old,
            env=self.new_env if new else self.old_env,
        ).start()

    def _aggregator(self, *, new: bool) -> AggregatorProcess:
        return AggregatorProcess(
            redis_url=self.redis.url,
            log_dir=self.logs,
            name="aggregator-new" if new else "aggregator-old",
            cwd=ROOT if new else self.old,
            env=self.new_env if new else self.old_env,
        ).start(timeout=120)

    def start_old(self) -> None:
        self.redis.start()
        self.sim.start()
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        self.sim.admin.bulk(
            [
                {"op": "create", "object": namespace},
                {"op": "create", "object": statefulset(self.report.shards)},
            ]
        )
        for i in range(self.report.shards):
            self.shards[i] = self._shard(i, new=False)
        for shard in self.shards.values():
            shard.wait_ready(timeout=120)
        self.aggregator = self._aggregator(new=False)
        stored = converge(
            self.sim, self.redis.url, timeout=120, what=f"the old version ({self.report.from_rev})"
        )
        self.report.series_before = sum(stored.values())

    def roll(self, *, before: float, after: float) -> None:
        assert self.aggregator is not None
        checker = RollChecker(self.sim, self.redis.url, self.aggregator.target, node_urls=[self.redis.url])
        self.checker = checker
        checker.start()
        self.sim.admin.start_churn(self.report.churn_rate, seed=self.report.seed, resources=list(CHURNED))
        time.sleep(before)
        checker.roll_started = started = time.time()
        template = {"metadata": {"annotations": {"panopticon.test/upgrade": "to-this-tree"}}}
        ref = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": STATEFULSET, "namespace": NAMESPACE}
        self.sim.admin.bulk([{"op": "patch", **ref, "patch": {"spec": {"template": template}}}])
        for i in reversed(range(self.report.shards)):
            begun = time.time()
            self.shards[i].stop()
            self.shards[i] = self._shard(i, new=True)
            self.shards[i].wait_ready(timeout=180)
            self.report.handovers.append(Handover(f"shard {i}", round(time.time() - begun, 2)))
        begun = time.time()
        old, self.aggregator = self.aggregator, self._aggregator(new=True)
        checker.aggregator = self.aggregator.target  # the Service's endpoints move to the new pod
        time.sleep(1.0)  # the old pod's in-flight scrapes finish, as its preStop pause allows
        _retire(old)
        self.report.handovers.append(Handover("aggregator", round(time.time() - begun, 2)))
        checker.roll_ended = time.time()
        self.report.roll_seconds = round(checker.roll_ended - started, 2)
        time.sleep(after)
        churn = self.sim.admin.call("GET", "/churn")["churn"] or {}
        self.sim.admin.stop_churn()
        self.report.churn_events = int(sum(churn.get(k, 0) for k in ("updates", "deletes", "creates")))
        self.report.in_flight = checker.stop()
        if checker.error is not None:
            raise RuntimeError("the in-flight checks failed to run") from checker.error
        self.report.missing_in_flight = checker.judge_missing()

    def finish(self) -> None:
        """The end state: the store, then the new aggregator's scrape, equal the render."""
        report = self.report
        try:
            lines = converge(self.sim, self.redis.url, timeout=120, what="after the upgrade")
            report.series = sum(lines.values())
        except AssertionError:
            expected, stored = expected_lines(self.sim), stored_lines(self.redis.url)
            report.series = sum(expected.values())
            report.missing = sum((expected - stored).values())
            report.unexpected = sum((stored - expected).values())
            report.duplicated = sum(1 for n in stored.values() if n > 1)
            print(describe_difference(expected, stored), file=sys.stderr)
        assert self.aggregator is not None
        body = _scrape(self.aggregator.target)
        served = _samples(body)
        expected = expected_lines(self.sim)
        report.served_differences = sum(((served - expected) + (expected - served)).values())
        truth = {name: header.decode() for name, header in render_truth(self.sim).headers.items()}
        headers = _headers(body)
        report.header_differences = sum(
            1 for f in headers.keys() | truth.keys() if headers.get(f) != truth.get(f)
        )
        flight, missing = report.in_flight, report.missing_in_flight
        report.ok = not (
            report.missing or report.unexpected or report.duplicated or report.header_differences
        ) and not (report.served_differences or flight.violations or missing.violations)

    def stop(self) -> None:
        steps: list[Callable[[], object]] = []
        if self.checker is not None and self.checker.is_alive():
            steps.append(self.checker.stop)
        if self.aggregator is not None:
            steps.append(self.aggregator.stop)
        steps += [shard.stop for shard in self.shards.values()]
        steps += [self.sim.stop, self.redis.close]
        for step in steps:
            try:
                step()
            except Exception as e:  # every process is stopped even if one fails to
                print(f"stopping: {e}", file=sys.stderr)


def _retire(aggregator: AggregatorProcess, grace: float = 60.0) -> None:
    """SIGTERM, then SIGKILL after the pod's grace period (the manifests give 60 s); an
    old aggregator may take its time finishing a scrape on a loaded machine."""
    proc, aggregator.proc = aggregator.proc, None
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _scrape(target: str) -> str:
    with urllib.request.urlopen(f"http://{target}/metrics", timeout=60) as r:
        return str(r.read().decode())


def _samples(body: str) -> Lines:
    return collections.Counter(line for line in body.splitlines() if line and not line.startswith("#"))


def run(
    from_rev: str,
    *,
    shards: int = 3,
    seed: int = 1,
    churn_rate: float = 50.0,
    scale: int = 2,
    before: float = 3.0,
    after: float = 8.0,
    old_deps: Path | None = None,
    logs: Path | None = None,
) -> Report:
    """Extract `from_rev`, run it, roll it to this tree, and report."""
    work = Path(tempfile.mkdtemp(prefix="pan-upgrade-"))
    try:
        old = extract(from_rev, work / "old")
        old_env = environment(old, old_deps)
        check_importable(old, old_env)
        report = Report(from_rev=from_rev, shards=shards, seed=seed, churn_rate=churn_rate)
        rolling = Rolling(old=old, old_env=old_env, report=report, logs=logs or work, scale=scale)
        try:
            rolling.start_old()
            rolling.roll(before=before, after=after)
            rolling.finish()
        finally:
            rolling.stop()
        return report
    finally:
        shutil.rmtree(work / "old", ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--from", dest="from_rev", default=DEFAULT_FROM, help="the previous version's revision"
    )
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--churn", type=float, default=50.0, help="object changes per second")
    parser.add_argument("--old-deps", type=Path, help="added to the old version's PYTHONPATH")
    parser.add_argument("--logs", type=Path, help="keep the processes' logs here")
    parser.add_argument("--report", type=Path, help="also write the report here as JSON")
    args = parser.parse_args()
    try:
        report = run(
            args.from_rev, shards=args.shards, seed=args.seed, churn_rate=args.churn,
            old_deps=args.old_deps, logs=args.logs,
        )  # fmt: skip
    except SetupError as e:
        print(f"upgrade: {e}", file=sys.stderr)
        return 2
    text = json.dumps(asdict(report), indent=2)
    print(text)
    if args.report:
        args.report.write_text(text + "\n")
    flight, gone = report.in_flight, report.missing_in_flight
    handovers = ", ".join(f"{h.what} {h.seconds:.1f}s" for h in report.handovers)
    print(
        f"{'PASS' if report.ok else 'FAIL'}: {report.from_rev} -> this tree, {report.shards} shards, "
        f"{report.series_before} series before; roll {report.roll_seconds:.1f}s ({handovers}) under "
        f"{report.churn_events} churn events; end: {report.series} series, {report.missing} missing, "
        f"{report.unexpected} unexpected, {report.duplicated} duplicated, {report.header_differences} "
        f"headers differing, {report.served_differences} scrape lines differing"
    )
    print(
        f"in flight: {flight.scrapes} scrapes ({flight.scrapes_ok} 200, {flight.scrapes_failed} other); "
        f"{flight.invalid} invalid, {flight.duplicate_series} duplicate series, {flight.duplicate_headers} "
        f"duplicate families, {flight.missing_families} missing families, {flight.stale_objects} objects "
        f"stale > {STALE_BOUND:g}s + roll {report.roll_seconds:.0f}s (oldest {flight.oldest_stale:.1f}s)"
    )
    print(
        f"missing series of live objects: {gone.total} in {gone.scrapes_with_missing} of "
        f"{gone.scrapes_judged} judged scrapes (max {gone.max_per_scrape} per scrape, oldest "
        f"{gone.oldest_missing:.1f}s); {gone.lost} that existed before the roll, {gone.after_settle} "
        f"later than {SETTLE_BOUND:g}s after it"
    )
    deps = f" --old-deps {args.old_deps}" if args.old_deps else ""
    print(
        f"reproduce: .venv/bin/python -m tests.upgrade.rolling --from {report.from_rev} "
        f"--shards {report.shards} --seed {report.seed} --churn {report.churn_rate:g}{deps}"
    )
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
