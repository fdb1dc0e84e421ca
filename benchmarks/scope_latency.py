"""Scoping and joins under churn (issue 17): latency from an API change to /metrics, sharded.

A redis-server, the simulator, `--shards` shard processes (a StatefulSet's worth) and an
aggregator process. While the simulator churns `--widgets` Widgets (a CRD kind with a
config of its own, so every shard watches, renders and writes them) at `--churn`
events per second (updates, deletes and creates, the simulator's default mix), this
measures, per change, the time from just before the admin call that makes it to the end
of the first scrape of the aggregator's /metrics that shows its whole effect:

- scope (`--trials` of each), on config `scoped` (Pods; `selector` scope=in,
  `namespaceSelector` stage=on, `filter` phase != 'Failed'): a Pod relabelled out of
  the selector and back in; the Namespace of `--scoped` Pods relabelled out of the
  namespaceSelector and back in (all its Pods' series gone, all back); a Pod's
  status.phase flipped to Failed and back (the filter);
- re-render after a related change (`--related-trials` of each), on config `joined`
  (Pods; `team` from their Namespace, `zone` from their Node, `tier` from their owning
  Deployment through a ReplicaSet): `--dependents` Pods share one Namespace, one Node
  and one Deployment; the Namespace's team, the Node's zone and the Deployment's tier
  change, each until every dependent's series in /metrics carries the new value.

Another config targets Pods without a selector, so the shards filter the scoped config
after the watch (every Pod is received). The latencies are upper bounds: the first
matching scrape's end (a scrape of the whole exposition takes tens of milliseconds,
reported as `scrape`), polled back to back. The churn rate reached is measured from the
simulator's counters over the measuring time and printed beside the target; on a loaded
machine the simulator may fall short of it.

    .venv/bin/python benchmarks/scope_latency.py [--shards 2] [--churn 2000] [--widgets 2000]
        [--dependents 1000] [--trials 10] [--related-trials 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubesim import SimProcess  # noqa: E402
from tests.panopticon.kube.test_discovery import widget, widget_crd  # noqa: E402
from tests.support.cluster import NAMESPACE, AggregatorProcess, ShardProcess, statefulset  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

CONFIGS = "metrics.appscode.com/v1alpha1"
TIMEOUT = 60.0
"""Seconds a change may take before it counts as not applied (reported, not waited out)."""


def _config(
    name: str, api_version: str, kind: str, metrics: list[dict[str, Any]], **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": CONFIGS,
        "kind": "MetricsConfiguration",
        "metadata": {"name": name},
        "spec": {"targetRef": {"apiVersion": api_version, "kind": kind}, **spec, "metrics": metrics},
    }


def _gauge(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "help": name, "type": "gauge", "metricValue": {"value": 1}, **fields}


def _join(key: str, path: str, source: str) -> dict[str, str]:
    return {"key": key, "valuePath": path, "from": source}


WIDGETS_CONFIG = _config(
    "widgets", "example.com/v1", "Widget", [_gauge("size", metricValue={"valueFromPath": ".spec.size"})]
)
SCOPED = _config(
    "scoped",
    "v1",
    "Pod",
    [_gauge("scoped")],
    selector={"matchLabels": {"scope": "in"}},
    namespaceSelector={"matchLabels": {"stage": "on"}},
    filter={"params": [{"key": "phase", "valuePath": ".status.phase"}], "expression": "phase != 'Failed'"},
)
JOINED = _config(
    "joined",
    "v1",
    "Pod",
    [
        _gauge(
            "joined",
            labels=[
                _join("team", ".metadata.labels.team", "namespace"),
                _join("zone", ".metadata.labels.zone", "node"),
                _join("tier", ".metadata.labels.tier", "owner:apps/v1/Deployment"),
            ],
        )
    ],
)
OBJECT_PODS = "scope-pods"
"""Namespace of the Pods relabelled and filtered one at a time (staged)."""
SCOPED_NS = "scope-ns"
"""Namespace relabelled in and out of the namespaceSelector."""
DEPENDENTS_NS = "dep"


def _namespace(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def _pod(name: str, namespace: str, labels: dict[str, str], **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if "owner" in extra:
        meta["ownerReferences"] = [extra["owner"]]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"nodeName": extra.get("node", "n-other"), "containers": [{"name": "c", "image": "x"}]},
        "status": {"phase": "Running"},
    }


def workload(shards: int, widgets: int, scoped: int, dependents: int) -> list[dict[str, Any]]:
    """The simulator's objects, as one bulk call's create ops."""
    selector = {"matchLabels": {"app": "web"}}
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    deployment_ref = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "uid": "dep-web",
        "controller": True,
    }
    rs_ref = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web-1",
        "uid": "rs-web",
        "controller": True,
    }
    objects: list[dict[str, Any]] = [
        _namespace(NAMESPACE, {}),
        statefulset(shards),
        widget_crd(),
        WIDGETS_CONFIG,
        SCOPED,
        JOINED,
        _namespace(OBJECT_PODS, {"stage": "on"}),
        _namespace(SCOPED_NS, {"stage": "on"}),
        _namespace(DEPENDENTS_NS, {"team": "t0"}),
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n-dep", "labels": {"zone": "z0"}}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": DEPENDENTS_NS,
                "uid": "dep-web",
                "labels": {"tier": "v0"},
            },
            "spec": {"replicas": dependents, "selector": selector, "template": template},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": "web-1",
                "namespace": DEPENDENTS_NS,
                "uid": "rs-web",
                "ownerReferences": [deployment_ref],
            },
            "spec": {"replicas": dependents, "selector": selector, "template": template},
        },
    ]
    objects += [widget(f"w{i}", i) for i in range(widgets)]
    objects += [_pod(f"sp-{i}", OBJECT_PODS, {"scope": "in"}) for i in range(scoped)]
    objects += [_pod(f"sn-{i}", SCOPED_NS, {"scope": "in"}) for i in range(scoped)]
    objects += [
        _pod(f"web-1-{i}", DEPENDENTS_NS, {"app": "web"}, node="n-dep", owner=rs_ref)
        for i in range(dependents)
    ]
    return [{"op": "create", "object": obj} for obj in objects]


class Bench:
    def __init__(self, sim: SimProcess, aggregator: AggregatorProcess) -> None:
        self.sim = sim
        self.url = f"http://{aggregator.target}/metrics"
        self.scrapes: list[float] = []

    def scrape(self) -> list[str]:
        started = time.monotonic()
        with urllib.request.urlopen(self.url, timeout=30) as r:
            text = r.read().decode()
        self.scrapes.append(time.monotonic() - started)
        return text.splitlines()

    def wait(self, check: Callable[[list[str]], bool], timeout: float = TIMEOUT) -> float | None:
        """Seconds from now to the end of the first scrape `check` accepts (None: timed out)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if check(self.scrape()):
                return time.monotonic() - started
        return None

    def change(self, op: dict[str, Any], check: Callable[[list[str]], bool]) -> float | None:
        """Latency of one change: from just before the admin call to the first scrape
        showing it (the call's own time included, as an API server's would be)."""
        started = time.monotonic()
        result = self.sim.admin.bulk([op])
        if {r["code"] for r in result["results"]} != {200}:
            raise RuntimeError(f"change refused: {result}")
        waited = self.wait(check, TIMEOUT - (time.monotonic() - started))
        return None if waited is None else time.monotonic() - started

    def churned(self) -> int:
        stats = self.sim.admin.call("GET", "/churn")["churn"] or {}
        return int(stats.get("updates", 0) + stats.get("deletes", 0) + stats.get("creates", 0))


def _patch(
    api_version: str, kind: str, name: str, patch: dict[str, Any], namespace: str = ""
) -> dict[str, Any]:
    ref = {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        **({"namespace": namespace} if namespace else {}),
    }
    return {"op": "patch", **ref, "patch": patch}


def scoped_pods(lines: list[str], namespace: str) -> set[str]:
    marker = f'namespace="{namespace}"'
    return {
        line.split('pod="', 1)[1].split('"', 1)[0]
        for line in lines
        if line.startswith("kube_pod_scoped{") and marker in line
    }


def joined_with(lines: list[str], label: str) -> int:
    return sum(1 for line in lines if line.startswith("kube_pod_joined{") and label in line)


def scope_trials(bench: Bench, trials: int, scoped: int) -> dict[str, list[float | None]]:
    out: dict[str, list[float | None]] = {}
    every = {f"sn-{i}" for i in range(scoped)}

    def record(what: str, latency: float | None) -> None:
        out.setdefault(what, []).append(latency)

    for t in range(trials):
        pod = f"sp-{t % scoped}"

        def has(lines: list[str], pod: str = pod) -> bool:
            return pod in scoped_pods(lines, OBJECT_PODS)

        def lacks(lines: list[str], pod: str = pod) -> bool:
            return pod not in scoped_pods(lines, OBJECT_PODS)

        labels = {"metadata": {"labels": {"scope": "out"}}}
        record("object relabelled out", bench.change(_patch("v1", "Pod", pod, labels, OBJECT_PODS), lacks))
        labels = {"metadata": {"labels": {"scope": "in"}}}
        record("object relabelled in", bench.change(_patch("v1", "Pod", pod, labels, OBJECT_PODS), has))
        stage = {"metadata": {"labels": {"stage": "off"}}}
        record(
            f"namespace out ({scoped} pods)",
            bench.change(
                _patch("v1", "Namespace", SCOPED_NS, stage), lambda x: not scoped_pods(x, SCOPED_NS)
            ),
        )
        stage = {"metadata": {"labels": {"stage": "on"}}}
        record(
            f"namespace in ({scoped} pods)",
            bench.change(
                _patch("v1", "Namespace", SCOPED_NS, stage), lambda x: scoped_pods(x, SCOPED_NS) == every
            ),
        )
        phase = {"status": {"phase": "Failed"}}
        record("filter turns false", bench.change(_patch("v1", "Pod", pod, phase, OBJECT_PODS), lacks))
        phase = {"status": {"phase": "Running"}}
        record("filter turns true", bench.change(_patch("v1", "Pod", pod, phase, OBJECT_PODS), has))
    return out


def related_trials(bench: Bench, trials: int, dependents: int) -> dict[str, list[float | None]]:
    out: dict[str, list[float | None]] = {}
    for t in range(1, trials + 1):
        team = {"metadata": {"labels": {"team": f"t{t}"}}}
        zone = {"metadata": {"labels": {"zone": f"z{t}"}}}
        tier = {"metadata": {"labels": {"tier": f"v{t}"}}}
        changes = [
            ("namespace team", _patch("v1", "Namespace", DEPENDENTS_NS, team), f'team="t{t}"'),
            ("node zone", _patch("v1", "Node", "n-dep", zone), f'zone="z{t}"'),
            ("deployment tier", _patch("apps/v1", "Deployment", "web", tier, DEPENDENTS_NS), f'tier="v{t}"'),
        ]
        for what, op, label in changes:
            latency = bench.change(op, lambda lines, label=label: joined_with(lines, label) == dependents)
            out.setdefault(f"{what} ({dependents} pods)", []).append(latency)
    return out


def describe(latencies: list[float | None]) -> str:
    done = sorted(x for x in latencies if x is not None)
    missed = len(latencies) - len(done)
    if not done:
        return f"all {missed} timed out (> {TIMEOUT:g}s)"
    p90 = done[min(len(done) - 1, round(0.9 * (len(done) - 1)))]
    text = f"min {done[0]:6.2f}  median {statistics.median(done):6.2f}  p90 {p90:6.2f}  max {done[-1]:6.2f}"
    return text + (
        f"  ({missed} of {len(latencies)} timed out > {TIMEOUT:g}s)" if missed else f"  (n={len(done)})"
    )


@dataclass
class Measurement:
    latencies: dict[str, list[float | None]]
    """What changed -> seconds to /metrics per trial (None: timed out)."""
    churn_rate: float
    """Widget events per second the simulator reached while measuring."""
    seconds: float
    scrapes: list[float] = field(default_factory=list)


def measure(
    *,
    shards: int = 2,
    churn: float = 2000.0,
    widgets: int = 2000,
    scoped: int = 20,
    dependents: int = 1000,
    trials: int = 10,
    related: int = 5,
    warmup: float = 5.0,
    logs: Path,
) -> Measurement:
    """Start the deployment, churn, make the changes, stop everything."""
    redis = RedisServer()
    redis.start()
    sim = SimProcess(["--scale", "0", "--namespaces", "0", "--mongodbs", "0"], timeout=300).start()
    procs: list[ShardProcess] = []
    aggregator = AggregatorProcess(redis_url=redis.url, log_dir=logs)
    try:
        result = sim.admin.bulk(workload(shards, widgets, scoped, dependents))
        refused = [r for r in result["results"] if r["code"] != 200]
        if refused:
            raise RuntimeError(f"workload refused: {refused[:3]}")
        procs += [
            ShardProcess(i, kubeconfig=sim.kubeconfig_path, redis_url=redis.url, log_dir=logs).start()
            for i in range(shards)
        ]
        for shard in procs:
            shard.wait_ready(timeout=300)
        aggregator.start()
        bench = Bench(sim, aggregator)
        synced = bench.wait(
            lambda lines: (
                joined_with(lines, 'tier="v0"') == dependents
                and len(scoped_pods(lines, SCOPED_NS)) == scoped
                and sum(1 for x in lines if x.startswith("example_com_widget_size{")) == widgets
            ),
            timeout=300,
        )
        if synced is None:
            raise RuntimeError("the initial sync never showed in /metrics")
        sim.admin.start_churn(churn, seed=1, resources=["widgets.example.com"])
        time.sleep(warmup)
        before, started = bench.churned(), time.monotonic()
        bench.scrapes.clear()
        latencies = scope_trials(bench, trials, scoped)
        latencies |= related_trials(bench, related, dependents)
        seconds = time.monotonic() - started
        rate = (bench.churned() - before) / seconds
        sim.admin.stop_churn()
        return Measurement(latencies, rate, seconds, bench.scrapes)
    finally:
        aggregator.stop()
        for shard in procs:
            shard.stop()
        sim.stop()
        redis.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--churn", type=float, default=2000.0, help="Widget changes per second")
    parser.add_argument("--widgets", type=int, default=2000)
    parser.add_argument("--scoped", type=int, default=20, help="Pods of the scoped namespace")
    parser.add_argument(
        "--dependents", type=int, default=1000, help="Pods sharing a Namespace, Node, Deployment"
    )
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--related-trials", type=int, default=5)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of churn before measuring")
    args = parser.parse_args(argv)
    logs = Path(tempfile.mkdtemp(prefix="pan-scope-latency-"))
    load = os.getloadavg()
    print(
        f"python {sys.version.split()[0]} ({sys.executable}); "
        f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; logs in {logs}"
    )
    m = measure(
        shards=args.shards,
        churn=args.churn,
        widgets=args.widgets,
        scoped=args.scoped,
        dependents=args.dependents,
        trials=args.trials,
        related=args.related_trials,
        warmup=args.warmup,
        logs=logs,
    )
    load = os.getloadavg()
    print(
        f"{args.shards} shards, 1 aggregator, Redis; churn: {args.churn:g}/s asked, {m.churn_rate:.0f}/s "
        f"reached over {m.seconds:.0f}s of {args.widgets} Widgets; load after {load[0]:.2f}"
    )
    print(
        f"scrape of /metrics: median {statistics.median(m.scrapes) * 1000:.0f} ms, "
        f"max {max(m.scrapes) * 1000:.0f} ms ({len(m.scrapes)} scrapes)"
    )
    print("latency from the API change to /metrics, seconds:")
    width = max(map(len, m.latencies))
    for what, latencies in m.latencies.items():
        print(f"  {what:<{width}s}  {describe(latencies)}")
    print(
        f"reproduce: .venv/bin/python benchmarks/scope_latency.py --shards {args.shards} "
        f"--churn {args.churn:g} --widgets {args.widgets} --scoped {args.scoped} "
        f"--dependents {args.dependents} --trials {args.trials} --related-trials {args.related_trials}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
