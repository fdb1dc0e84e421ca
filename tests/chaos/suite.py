"""The chaos suite: random disruptions under churn, checked during and after.

Runs the simulator, a redis-server (or, with `--redis-cluster`, a three-node Redis
Cluster), a StatefulSet's worth of shard processes and an aggregator process, keeps
objects churning, and for `--duration` seconds applies seeded random disruptions
(`ACTIONS`):

- `kill`: SIGKILL of a shard, restarted 0.2-2 s later;
- `redis_restart`: Redis restarted empty (on a cluster: one node, the others keep
  their data and the store's epoch may live on one of them);
- `redis_restore`: Redis restarted from a snapshot taken at least one action earlier
  (on a cluster: one node from its own snapshot), so it comes back with less than it
  acknowledged: series of objects deleted or updated since, families since removed.
  It is also the last disruption of every run, so that no later one hides it;
- `drop_watches`, `expire_watches` (in-band 410s), `compact`: watches end, relists;
- `stall`: watches deliver nothing for 0.5-3 s;
- `scale`: the StatefulSet scaled up or down, shards started or stopped;
- `reconfigure`: a config deleted, brought back, or a metric's HELP changed;
- `discovery_outage`: one group-version's discovery failing for a while (a shard
  restarted meanwhile);
- `recreate_statefulset`: the StatefulSet deleted with `--cascade=orphan` and created
  again (a new uid, generation 1; its shards keep running).

Besides the example configs, the workload has the extensions' configs (`FEATURE_CONFIGS`):
Pod labels joined from the Namespace, the Node and the owning Deployment, a
`namespaceSelector`, aggregate families (count by a joined label and by phase, sum by
namespace) and a capped config (`limits.series`, some of the Pods kept). Between the
disruptions the suite keeps changing what they read (`RelatedChurn`, about 4 changes a
second): Namespaces relabelled (team, stage), Node zones, Deployment tiers, Pods moved
to another ReplicaSet or orphaned, ReplicaSets to another Deployment; and it keeps at
least `MIN_PODS` Pods (copies of live ones), which the churn's deletes would run down.

During the disruptions the in-flight checks (`tests.chaos.inflight`) scrape the
aggregator and read the store over and over: valid exposition, no duplicate series
or family, no object's series stored more than `STALE_BOUND` seconds after it was
deleted, no 200 lacking a whole family while every shard reported synced. Then churn
stops, the shards of the final ring are all running, and both the store and the
offline render: the store line for line (zero missing, duplicate or stale; a capped
config's objects kept as the offline render keeps them), the aggregator's scrape
series for series (aggregate families combined, as `panopticon render` combines
them) and each family's HELP/TYPE header.

    .venv/bin/python -m tests.chaos.suite --duration 120 --seed 1 [--redis-cluster] [--report r.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kubesim import SimProcess
from tests.chaos.inflight import STALE_BOUND, InFlight, InFlightChecker
from tests.support.cluster import (
    NAMESPACE,
    STATEFULSET,
    AggregatorProcess,
    ShardProcess,
    converge,
    describe_difference,
    expected_lines,
    render_truth,
    statefulset,
    stored_lines,
)
from tests.support.redis_server import RedisClusterServers, RedisServer

ACTIONS = (
    "kill",
    "redis_restart",
    "redis_restore",
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


def _pod_config(name: str, metrics: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "metrics.appscode.com/v1alpha1",
        "kind": "MetricsConfiguration",
        "metadata": {"name": name},
        "spec": {"targetRef": {"apiVersion": "v1", "kind": "Pod"}, **spec, "metrics": metrics},
    }


_TEAM = {"key": "team", "valuePath": ".metadata.labels.team", "from": "namespace"}
_RESTARTS = {
    "field": {"path": ".status.containerStatuses", "type": "Array"},
    "metricValue": {"valueFromPath": ".status.containerStatuses[*].restartCount"},
}
CAP = 16
MIN_PODS = 20
"""The churn's creates and deletes are a random walk that can leave 1 Pod of 28 after
two minutes; below this many, `RelatedChurn` creates copies of live Pods (which the
churn then leaves alone: it mutates the objects it started with and its own copies)."""
FEATURE_CONFIGS = [
    _pod_config(
        "chaos-joins",
        [
            {
                "name": "chaos_joined",
                "help": "Pod with its namespace's team, its node's zone, its Deployment's tier and name.",
                "type": "gauge",
                "labels": [
                    _TEAM,
                    {"key": "zone", "valuePath": ".metadata.labels.zone", "from": "node"},
                    {"key": "tier", "valuePath": ".metadata.labels.tier", "from": "owner:apps/v1/Deployment"},
                    {"key": "deployment", "valuePath": ".metadata.name", "from": "owner:apps/v1/Deployment"},
                ],
                "metricValue": {"value": 1},
            }
        ],
    ),
    _pod_config(
        "chaos-staged",
        [
            {
                "name": "chaos_staged",
                "help": "Pods of staged namespaces.",
                "type": "gauge",
                "metricValue": {"value": 1},
            }
        ],
        namespaceSelector={"matchLabels": {"stage": "on"}},
    ),
    _pod_config(
        "chaos-aggregates",
        [
            {
                "name": "chaos_team_pods",
                "help": "Pods per team of their namespace.",
                "type": "gauge",
                "aggregate": {"function": "count", "by": ["team"]},
                "labels": [_TEAM],
                "metricValue": {"value": 1},
            },
            {
                "name": "chaos_phase_pods",
                "help": "Pods per phase.",
                "type": "gauge",
                "aggregate": {"function": "count", "by": ["phase"]},
                "labels": [{"key": "phase", "valuePath": ".status.phase"}],
                "metricValue": {"value": 1},
            },
            {
                "name": "chaos_restarts",
                "help": "Container restarts per namespace.",
                "type": "gauge",
                "aggregate": {"function": "sum", "by": ["namespace"]},
                **_RESTARTS,
            },
        ],
    ),
    _pod_config(
        "chaos-capped",
        [
            {
                "name": "chaos_capped_info",
                "help": "Capped Pod info.",
                "type": "gauge",
                "metricValue": {"value": 1},
            },
            {"name": "chaos_capped_restarts", "help": "Capped Pod restarts.", "type": "gauge", **_RESTARTS},
        ],
        limits={"series": CAP},
    ),
]
"""The extensions' configs (joins, namespaceSelector, aggregates, a cap), beside the
simulator's example configs; `RelatedChurn` changes what they read."""


class RelatedChurn:
    """Changes to what the joins, the namespaceSelector and the aggregates read, at
    random from `rng`: a Namespace's team and stage labels, a Node's zone, a
    Deployment's tier, a Pod's controller (another ReplicaSet, or none), a
    ReplicaSet's controller (another Deployment); and a copy of a Pod while fewer than
    `MIN_PODS` are left."""

    CHANGES = ("namespace", "namespace", "node", "deployment", "pod_owner", "pod_owner", "replicaset_owner")

    def __init__(self, sim: SimProcess, rng: random.Random) -> None:
        self.sim = sim
        self.rng = rng
        self.counts: dict[str, int] = {}
        self.created = 0

    def objects(self, api_version: str, kind: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.sim.admin.call(
            "GET", f"/objects?apiVersion={api_version}&kind={kind}"
        )["items"]
        return items

    def _patch(self, api_version: str, kind: str, obj: dict[str, Any], patch: dict[str, Any]) -> None:
        meta = obj["metadata"]
        ref = {"apiVersion": api_version, "kind": kind, "name": meta["name"]}
        if meta.get("namespace"):
            ref["namespace"] = meta["namespace"]
        self.sim.admin.bulk([{"op": "patch", **ref, "patch": patch}])  # 404 if churn deleted it: fine

    def change(self) -> None:
        pods = self.objects("v1", "Pod")
        if 0 < len(pods) < MIN_PODS:
            self._clone_pod(self.rng.choice(pods))
        what = self.rng.choice(self.CHANGES)
        rng = self.rng
        if what == "namespace":
            namespaces = [n for n in self.objects("v1", "Namespace") if n["metadata"]["name"] != NAMESPACE]
            labels = {"team": rng.choice(["a", "b", "c", None]), "stage": rng.choice(["on", None])}
            self._patch("v1", "Namespace", rng.choice(namespaces), {"metadata": {"labels": labels}})
        elif what == "node":
            labels = {"zone": rng.choice(["z1", "z2", None])}
            self._patch(
                "v1", "Node", rng.choice(self.objects("v1", "Node")), {"metadata": {"labels": labels}}
            )
        elif what == "deployment":
            labels = {"tier": rng.choice(["front", "back", None])}
            deployments = self.objects("apps/v1", "Deployment")
            if deployments:
                self._patch(
                    "apps/v1", "Deployment", rng.choice(deployments), {"metadata": {"labels": labels}}
                )
        elif what == "pod_owner":
            owners = self.objects("apps/v1", "ReplicaSet")
            if pods:
                refs = (
                    [_controller("ReplicaSet", rng.choice(owners))] if owners and rng.random() < 0.8 else []
                )
                self._patch("v1", "Pod", rng.choice(pods), {"metadata": {"ownerReferences": refs}})
        elif what == "replicaset_owner":
            sets, owners = self.objects("apps/v1", "ReplicaSet"), self.objects("apps/v1", "Deployment")
            if sets and owners:
                refs = [_controller("Deployment", rng.choice(owners))]
                self._patch(
                    "apps/v1", "ReplicaSet", rng.choice(sets), {"metadata": {"ownerReferences": refs}}
                )
        self.counts[what] = self.counts.get(what, 0) + 1

    def _clone_pod(self, pod: dict[str, Any]) -> None:
        """A copy of `pod` under a new name (the simulator gives it a uid)."""
        meta = {
            k: v
            for k, v in pod["metadata"].items()
            if k not in ("uid", "resourceVersion", "creationTimestamp")
        }
        self.created += 1
        meta["name"] = f"{meta['name'].rsplit('-r', 1)[0]}-r{self.created}"
        self.sim.admin.bulk([{"op": "create", "object": {**pod, "metadata": meta}}])
        self.counts["pod_created"] = self.counts.get("pod_created", 0) + 1


def _controller(kind: str, owner: dict[str, Any]) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
    }


@dataclass
class Report:
    seed: int
    duration: float
    churn_rate: float
    actions: dict[str, int] = field(default_factory=dict)
    churn_events: int = 0
    exits_restarted: int = 0
    """Shard processes found exited on their own and started again, as the kubelet
    would (a shard that starts while Redis is unreachable exits with status 2)."""
    final_shards: int = 0
    series: int = 0
    missing: int = 0
    unexpected: int = 0
    duplicated: int = 0
    header_differences: int = 0
    """Families whose HELP/TYPE in the final scrape differ from the offline render's."""
    served_missing: int = 0
    served_unexpected: int = 0
    """Series of the offline render (aggregate families combined) the final scrape
    lacks, and series it has that the offline render does not."""
    aggregate_series: int = 0
    """Of `series` served, those of aggregate families (groups)."""
    capped_dropped: dict[str, int] = field(default_factory=dict)
    """Capped config -> series the offline render's cap leaves out (the store must too)."""
    related_changes: dict[str, int] = field(default_factory=dict)
    """What `RelatedChurn` changed, by kind of change."""
    pods: int = 0
    """Pods at the end (the feature configs' targets)."""
    converged_after: float = 0.0
    redis_cluster: bool = False
    in_flight: InFlight = field(default_factory=InFlight)
    ok: bool = False


class Redis:
    """The Redis under test: one server, or the nodes of a Redis Cluster."""

    def __init__(self, *, cluster: bool) -> None:
        self.cluster = cluster
        self._cluster = RedisClusterServers(3) if cluster else None
        self.nodes = self._cluster.servers if self._cluster else [RedisServer()]
        self.snapshots: dict[int, Path] = {}
        self.snapshot_due = True

    @property
    def url(self) -> str:
        return self._cluster.url if self._cluster else self.nodes[0].url

    @property
    def flags(self) -> tuple[str, ...]:
        return ("--redis-cluster",) if self.cluster else ()

    def start(self) -> None:
        if self._cluster:
            self._cluster.start()
        else:
            self.nodes[0].start()

    def snapshot(self) -> None:
        """Keep a snapshot of every node (the next `restore` goes back to it)."""
        self.snapshots = {i: node.snapshot() for i, node in enumerate(self.nodes)}
        self.snapshot_due = False

    def restart_empty(self, rng: random.Random) -> None:
        rng.choice(self.nodes).restart_empty()

    def restore(self, rng: random.Random) -> None:
        i = rng.randrange(len(self.nodes))
        self.nodes[i].restart_from(self.snapshots[i])
        self.snapshot_due = True  # a fresh one at the next action: older than what follows

    def close(self) -> None:
        if self._cluster:
            self._cluster.close()
        else:
            self.nodes[0].close()


class Chaos:
    def __init__(
        self,
        *,
        seed: int,
        churn_rate: float,
        logs: Path,
        min_shards: int = 2,
        max_shards: int = 5,
        redis_cluster: bool = False,
    ) -> None:
        self.rng = random.Random(seed)
        self.churn_rate = churn_rate
        self.logs = logs
        self.min_shards, self.max_shards = min_shards, max_shards
        self.redis = Redis(cluster=redis_cluster)
        self.actions = ACTIONS
        self.aggregator: AggregatorProcess | None = None
        self.checker: InFlightChecker | None = None
        self.sim = SimProcess(["--with-configs", "--scale", "2", "--seed", str(seed), "--mongodbs", "30"])
        self.related = RelatedChurn(self.sim, random.Random(f"related:{seed}"))
        self.shards: dict[int, ShardProcess] = {}
        self.replicas = 3
        self.removed: list[dict[str, object]] = []
        self.report = Report(seed=seed, duration=0, churn_rate=churn_rate, redis_cluster=redis_cluster)

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
                *({"op": "create", "object": body} for body in FEATURE_CONFIGS),
            ]
        )
        for i in range(self.replicas):
            self._start_shard(i)
        for shard in self.shards.values():
            shard.wait_ready()
        self.aggregator = AggregatorProcess(
            redis_url=self.redis.url, log_dir=self.logs, extra=self.redis.flags
        ).start()

    def _start_shard(self, index: int) -> None:
        self.shards[index] = ShardProcess(
            index,
            kubeconfig=self.sim.kubeconfig_path,
            redis_url=self.redis.url,
            log_dir=self.logs,
            extra=self.redis.flags,
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

    def revive(self) -> None:
        """Start again the shard processes that exited on their own."""
        for index, shard in list(self.shards.items()):
            if shard.proc is not None and shard.proc.poll() is not None:
                self.report.exits_restarted += 1
                self._start_shard(index)

    def act(self, action: str) -> None:
        self.report.actions[action] = self.report.actions.get(action, 0) + 1
        admin = self.sim.admin
        if action == "kill":
            index = self.rng.choice(sorted(self.shards))
            self.shards[index].kill()
            time.sleep(self.rng.uniform(0.2, 2.0))
            self._start_shard(index)
        elif action == "redis_restart":
            self.redis.restart_empty(self.rng)
        elif action == "redis_restore":
            self.redis.restore(self.rng)
            if self.checker is not None:
                self.checker.store_restored()
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
        if self.checker is not None:
            self.checker.object_recreated(f'statefulset="{STATEFULSET}",namespace="{NAMESPACE}"')
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
        assert self.aggregator is not None
        cluster = self.redis.cluster
        self.checker = InFlightChecker(
            self.sim,
            self.redis.url,
            self.aggregator.target,
            node_urls=[node.url for node in self.redis.nodes],
            cluster=cluster,
        )
        self.checker.start()
        self.sim.admin.start_churn(self.churn_rate, seed=self.rng.getrandbits(16), resources=list(CHURNED))
        while time.monotonic() - started < duration:
            if self.redis.snapshot_due:
                self.redis.snapshot()
            self._related_churn(self.rng.uniform(1.0, 4.0))
            self.revive()
            self.act(self.rng.choice(self.actions))
        self._bring_back_feature_configs()
        if "redis_restore" in self.actions:
            self._final_restore()
        churn = self.sim.admin.call("GET", "/churn")["churn"] or {}
        self.sim.admin.stop_churn()
        self.report.churn_events = int(
            churn.get("updates", 0) + churn.get("deletes", 0) + churn.get("creates", 0)
        )
        self.report.related_changes = dict(self.related.counts)
        self.report.duration = time.monotonic() - started
        self.report.in_flight = self.checker.stop()
        if self.checker.error is not None:
            raise RuntimeError("the in-flight checks failed to run") from self.checker.error
        self.sim.admin.clear_faults()
        time.sleep(1.0)  # a shard started just before the last disruption may exit now
        self.revive()
        for shard in self.shards.values():
            shard.wait_ready(timeout=120)
        self.report.final_shards = self.replicas
        settle = time.monotonic()
        try:
            lines = converge(self.sim, self.redis.url, timeout=120, what="after chaos", cluster=cluster)
            self.report.series = sum(lines.values())
            self.report.header_differences = self._header_differences()
            self._compare_served()
            self.report.ok = (
                self.report.header_differences == 0
                and self.report.served_missing == 0
                and self.report.served_unexpected == 0
                and self.report.in_flight.violations == 0
            )
        except AssertionError:
            expected, stored = expected_lines(self.sim), stored_lines(self.redis.url, cluster=cluster)
            self.report.series = sum(expected.values())
            self.report.missing = sum((expected - stored).values())
            self.report.unexpected = sum((stored - expected).values())
            self.report.duplicated = sum(1 for n in stored.values() if n > 1)
            print(describe_difference(expected, stored), file=sys.stderr)
        self.report.converged_after = time.monotonic() - settle
        return self.report

    def _bring_back_feature_configs(self) -> None:
        """Create again the feature configs `reconfigure` deleted, under churn, so that
        the end state always has a join, aggregates and a cap to compare."""
        features = {body["metadata"]["name"] for body in FEATURE_CONFIGS}
        back = [body for body in self.removed if body["metadata"]["name"] in features]  # type: ignore[index]
        if back:
            self.removed = [body for body in self.removed if body not in back]
            self.sim.admin.bulk([{"op": "create", "object": body} for body in back])
            self._related_churn(2.0)

    def _related_churn(self, seconds: float) -> None:
        """`seconds` of related changes, one every 0.25 s."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.related.change()
            time.sleep(max(0.0, min(0.25, deadline - time.monotonic())))

    def _compare_served(self, timeout: float = 30.0) -> None:
        """The aggregator's scrape against the offline render, series for series
        (aggregate families as groups), and the caps the offline render applied (the
        store already matched it). Retried for `timeout` seconds: a scrape is not a
        store read (the aggregator's view of the registry follows within a poll)."""
        assert self.aggregator is not None
        deadline = time.monotonic() + timeout
        while True:
            truth = render_truth(self.sim)
            with urllib.request.urlopen(f"http://{self.aggregator.target}/metrics", timeout=60) as r:
                served = collections.Counter(
                    line for line in r.read().decode().splitlines() if line and not line.startswith("#")
                )
            missing, unexpected = truth.served - served, served - truth.served
            if not (missing or unexpected) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.report.served_missing = sum(missing.values())
        self.report.served_unexpected = sum(unexpected.values())
        self.report.aggregate_series = sum(
            n
            for line, n in truth.served.items()
            if line.split("{", 1)[0].split(" ", 1)[0] in truth.aggregates
        )
        self.report.capped_dropped = truth.dropped
        self.report.pods = len(self.related.objects("v1", "Pod"))
        for line in list(missing)[:5]:
            print(f"served lacks: {line}", file=sys.stderr)
        for line in list(unexpected)[:5]:
            print(f"served, not in the offline render: {line}", file=sys.stderr)

    def _final_restore(self) -> None:
        """The last disruption is a restore, under churn, from a snapshot older than
        the last changes, with nothing after it: only the restore's own recovery can
        remove what it brought back (any later kill, scale or empty restart would
        collect it too, and hide a recovery that does nothing)."""
        if self.redis.snapshot_due:
            self.redis.snapshot()
            time.sleep(2.0)  # changes the snapshot lacks
        self.act("redis_restore")
        time.sleep(2.0)

    def _header_differences(self) -> int:
        """Families whose HELP/TYPE header in the aggregator's scrape differs from the
        offline render's (missing, extra or changed), once the series matched."""
        assert self.aggregator is not None
        with urllib.request.urlopen(f"http://{self.aggregator.target}/metrics", timeout=60) as r:
            served = _headers(r.read().decode())
        expected = {name: header.decode() for name, header in render_truth(self.sim).headers.items()}
        differing = {f for f in served.keys() | expected.keys() if served.get(f) != expected.get(f)}
        for family in sorted(differing)[:5]:
            print(f"header of {family}: served {served.get(family)!r}, expected {expected.get(family)!r}")
        return len(differing)

    def stop(self) -> None:
        """Stop every process, each even if stopping another failed."""
        steps: list[Callable[[], object]] = []
        if self.checker is not None and self.checker.is_alive():
            steps.append(self.checker.stop)
        if self.aggregator is not None:
            steps.append(self.aggregator.stop)
        steps += [shard.stop for shard in self.shards.values()]
        steps += [self.sim.stop, self.redis.close]
        failures: list[BaseException] = []
        for step in steps:
            try:
                step()
            except Exception as e:
                failures.append(e)
        if failures:
            raise failures[0]


def _headers(text: str) -> dict[str, str]:
    """Family -> its `# HELP` and `# TYPE` lines, from a text-format exposition."""
    out: dict[str, str] = {}
    for line in text.splitlines(keepends=True):
        if line.startswith(("# HELP ", "# TYPE ")):
            family = line.split(" ", 3)[2]
            out[family] = out.get(family, "") + line
    return out


def run(
    duration: float,
    seed: int,
    churn_rate: float,
    logs: Path | None = None,
    *,
    redis_cluster: bool = False,
    actions: tuple[str, ...] = ACTIONS,
) -> Report:
    chaos = Chaos(
        seed=seed,
        churn_rate=churn_rate,
        logs=logs or Path(tempfile.mkdtemp(prefix="pan-chaos-")),
        redis_cluster=redis_cluster,
    )
    chaos.actions = actions
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
    parser.add_argument("--redis-cluster", action="store_true", help="a three-node Redis Cluster")
    args = parser.parse_args()
    report = run(args.duration, args.seed, args.churn, redis_cluster=args.redis_cluster)
    text = json.dumps(asdict(report), indent=2)
    print(text)
    if args.report:
        args.report.write_text(text + "\n")
    verdict = "PASS" if report.ok else "FAIL"
    flight = report.in_flight
    print(
        f"{verdict}: {sum(report.actions.values())} disruptions in {report.duration:.0f}s under "
        f"{report.churn_events} churn events; {report.series} series, {report.missing} missing, "
        f"{report.unexpected} unexpected, {report.duplicated} duplicated, {report.header_differences} "
        f"headers differing; converged {report.converged_after:.1f}s after the last disruption"
    )
    print(
        f"served: {report.served_missing} missing, {report.served_unexpected} unexpected "
        f"({report.aggregate_series} aggregate groups of {report.pods} Pods); "
        f"capped, series left out: {report.capped_dropped}; "
        f"related changes: {sum(report.related_changes.values())} {report.related_changes}"
    )
    print(
        f"in flight: {flight.scrapes} scrapes ({flight.scrapes_ok} 200, {flight.scrapes_failed} other, "
        f"{flight.scrapes_covered} with every shard synced), {flight.store_reads} store reads; "
        f"{flight.invalid} invalid, {flight.duplicate_series} duplicate series "
        f"({flight.recreated_overlap} of a recreated object), "
        f"{flight.duplicate_headers} duplicate families, {flight.missing_families} missing families, "
        f"{flight.stale_objects} objects stale > {STALE_BOUND:g}s (oldest {flight.oldest_stale:.1f}s)"
    )
    cluster = " --redis-cluster" if args.redis_cluster else ""
    print(
        f"reproduce: .venv/bin/python -m tests.chaos.suite --duration {args.duration:g} "
        f"--seed {args.seed}{cluster}"
    )
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
