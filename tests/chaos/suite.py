"""The chaos suite: random disruptions under churn, then a ground-truth comparison.

Runs the simulator, a redis-server and a StatefulSet's worth of shard processes, keeps
objects churning, and for `--duration` seconds applies seeded random disruptions:
SIGKILL of a shard (restarted a moment later), Redis restarted empty, watch
connections dropped, in-band 410s and compaction forcing relists, stalled watches,
scaling the StatefulSet up or down (shards started or stopped accordingly), one
group-version's discovery failing for a while (a shard restarted meanwhile), and
the StatefulSet deleted with `--cascade=orphan` and created again (a new uid,
generation 1; its shards keep running). Then
churn stops, the shards of the final ring are all running, and the store must equal
the offline render line for line: zero missing, duplicate or stale series.

    .venv/bin/python -m tests.chaos.suite --duration 120 --seed 1 [--report report.json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from panopticon.sim import SimProcess
from tests.support.cluster import (
    NAMESPACE,
    STATEFULSET,
    ShardProcess,
    converge,
    describe_difference,
    expected_lines,
    statefulset,
    stored_lines,
)
from tests.support.redis_server import RedisServer

ACTIONS = (
    "kill",
    "redis_restart",
    "drop_watches",
    "expire_watches",
    "compact",
    "stall",
    "scale",
    "reconfigure",
    "discovery_outage",
    "recreate_statefulset",
)
CHURNED = (
    "pods", "deployments.apps", "mongodbs.kubedb.com", "postgreses.kubedb.com", "mysqls.kubedb.com",
    "redises.kubedb.com", "elasticsearches.kubedb.com", "kafkas.kubedb.com",
)  # fmt: skip
"""Resources the churn mutates: target kinds, but not the shards' own StatefulSet
(deleting it would leave new shards without a ring). Configs change through the
`reconfigure` action instead, at a pace that leaves some to render."""


@dataclass
class Report:
    seed: int
    duration: float
    churn_rate: float
    actions: dict[str, int] = field(default_factory=dict)
    churn_events: int = 0
    final_shards: int = 0
    series: int = 0
    missing: int = 0
    unexpected: int = 0
    duplicated: int = 0
    converged_after: float = 0.0
    ok: bool = False


class Chaos:
    def __init__(
        self, *, seed: int, churn_rate: float, logs: Path, min_shards: int = 2, max_shards: int = 5
    ) -> None:
        self.rng = random.Random(seed)
        self.churn_rate = churn_rate
        self.logs = logs
        self.min_shards, self.max_shards = min_shards, max_shards
        self.redis = RedisServer()
        self.sim = SimProcess(["--with-configs", "--scale", "2", "--seed", str(seed), "--mongodbs", "30"])
        self.shards: dict[int, ShardProcess] = {}
        self.replicas = 3
        self.removed: list[dict[str, object]] = []
        self.report = Report(seed=seed, duration=0, churn_rate=churn_rate)

    def start(self) -> None:
        self.redis.start()
        self.sim.start()
        self.sim.admin.bulk(
            [
                {
                    "op": "create",
                    "object": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
                },
                {"op": "create", "object": statefulset(self.replicas)},
            ]
        )
        for i in range(self.replicas):
            self._start_shard(i)
        for shard in self.shards.values():
            shard.wait_ready()

    def _start_shard(self, index: int) -> None:
        self.shards[index] = ShardProcess(
            index, kubeconfig=self.sim.kubeconfig_path, redis_url=self.redis.url, log_dir=self.logs
        ).start()

    def _scale(self, replicas: int) -> None:
        self.sim.admin.bulk(
            [
                {
                    "op": "patch",
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "name": STATEFULSET,
                    "namespace": NAMESPACE,
                    "patch": {"spec": {"replicas": replicas}},
                }
            ]
        )
        for i in range(replicas, self.replicas):
            self.shards.pop(i).stop()
        for i in range(self.replicas, replicas):
            self._start_shard(i)
        self.replicas = replicas

    def act(self, action: str) -> None:
        self.report.actions[action] = self.report.actions.get(action, 0) + 1
        admin = self.sim.admin
        if action == "kill":
            index = self.rng.choice(sorted(self.shards))
            self.shards[index].kill()
            time.sleep(self.rng.uniform(0.2, 2.0))
            self._start_shard(index)
        elif action == "redis_restart":
            self.redis.restart_empty()
        elif action == "drop_watches":
            admin.close_watches(self.rng.choice(["eof", "abort"]))
        elif action == "expire_watches":
            admin.inject_watch_error(410)
        elif action == "compact":
            admin.compact()
        elif action == "stall":
            admin.stall_watches(self.rng.uniform(0.5, 3.0))
        elif action == "scale":
            choices = [n for n in range(self.min_shards, self.max_shards + 1) if n != self.replicas]
            self._scale(self.rng.choice(choices))
        elif action == "reconfigure":
            self._reconfigure()
        elif action == "discovery_outage":
            self._discovery_outage()
        elif action == "recreate_statefulset":
            self._recreate_statefulset()

    def _discovery_outage(self) -> None:
        """One group-version's discovery document answers 503 for a while, and a shard
        starts meanwhile: its kinds there cannot be resolved (their series must stay)."""
        group_version = self.rng.choice(["kubedb.com/v1", "apps/v1", "v1"])
        self.sim.admin.fail_discovery(group_version, seconds=self.rng.uniform(3.0, 10.0))
        index = self.rng.choice(sorted(self.shards))
        self.shards[index].kill()
        self._start_shard(index)

    def _recreate_statefulset(self) -> None:
        """`kubectl delete sts --cascade=orphan`, then apply it again: the pods keep
        running; the StatefulSet has a new uid and starts again at generation 1."""
        ref = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": STATEFULSET, "namespace": NAMESPACE}
        self.sim.admin.bulk([{"op": "delete", **ref}])
        time.sleep(self.rng.uniform(0.0, 2.0))
        self.sim.admin.bulk([{"op": "create", "object": statefulset(self.replicas)}])

    def _reconfigure(self) -> None:
        """Delete a config, bring a deleted one back, or change a metric's HELP."""
        configs = self.sim.admin.call(
            "GET", "/objects?apiVersion=metrics.appscode.com/v1alpha1&kind=MetricsConfiguration"
        )
        live = configs["items"]
        choice = self.rng.random()
        if self.removed and (choice < 0.4 or not live):
            body = self.removed.pop(self.rng.randrange(len(self.removed)))
            self.sim.admin.bulk([{"op": "create", "object": body}])
        elif live and choice < 0.7:
            body = self.rng.choice(live)
            ref = {"apiVersion": body["apiVersion"], "kind": body["kind"], "name": body["metadata"]["name"]}
            self.sim.admin.bulk([{"op": "delete", **ref}])
            self.removed.append(
                {k: v for k, v in body.items() if k != "status"} | {"metadata": {"name": ref["name"]}}
            )
        elif live:
            body = self.rng.choice(live)
            body["spec"]["metrics"][0]["help"] = f"changed by chaos {self.rng.getrandbits(16)}"
            self.sim.admin.bulk([{"op": "update", "object": body}])

    def run(self, duration: float) -> Report:
        started = time.monotonic()
        self.sim.admin.start_churn(self.churn_rate, seed=self.rng.getrandbits(16), resources=list(CHURNED))
        while time.monotonic() - started < duration:
            time.sleep(self.rng.uniform(1.0, 4.0))
            self.act(self.rng.choice(ACTIONS))
        churn = self.sim.admin.call("GET", "/churn")["churn"] or {}
        self.sim.admin.stop_churn()
        self.report.churn_events = int(
            churn.get("updates", 0) + churn.get("deletes", 0) + churn.get("creates", 0)
        )
        self.report.duration = time.monotonic() - started
        self.sim.admin.clear_faults()
        for shard in self.shards.values():
            shard.wait_ready(timeout=120)
        self.report.final_shards = self.replicas
        settle = time.monotonic()
        try:
            lines = converge(self.sim, self.redis.url, timeout=120, what="after chaos")
            self.report.ok = True
            self.report.series = sum(lines.values())
        except AssertionError:
            expected, stored = expected_lines(self.sim), stored_lines(self.redis.url)
            self.report.series = sum(expected.values())
            self.report.missing = sum((expected - stored).values())
            self.report.unexpected = sum((stored - expected).values())
            self.report.duplicated = sum(1 for n in stored.values() if n > 1)
            print(describe_difference(expected, stored), file=sys.stderr)
        self.report.converged_after = time.monotonic() - settle
        return self.report

    def stop(self) -> None:
        for shard in self.shards.values():
            shard.stop()
        self.sim.stop()
        self.redis.close()


def run(duration: float, seed: int, churn_rate: float, logs: Path | None = None) -> Report:
    chaos = Chaos(seed=seed, churn_rate=churn_rate, logs=logs or Path(tempfile.mkdtemp(prefix="pan-chaos-")))
    try:
        chaos.start()
        return chaos.run(duration)
    finally:
        chaos.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of disruptions")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--churn", type=float, default=200.0, help="object changes per second")
    parser.add_argument("--report", type=Path, help="also write the report here as JSON")
    args = parser.parse_args()
    report = run(args.duration, args.seed, args.churn)
    text = json.dumps(asdict(report), indent=2)
    print(text)
    if args.report:
        args.report.write_text(text + "\n")
    verdict = "PASS" if report.ok else "FAIL"
    print(
        f"{verdict}: {sum(report.actions.values())} disruptions in {report.duration:.0f}s under "
        f"{report.churn_events} churn events; {report.series} series, {report.missing} missing, "
        f"{report.unexpected} unexpected, {report.duplicated} duplicated; converged "
        f"{report.converged_after:.1f}s after the last disruption"
    )
    print(f"reproduce: .venv/bin/python -m tests.chaos.suite --duration {args.duration:g} --seed {args.seed}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
