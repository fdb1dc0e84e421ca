"""Multi-process deployments for tests: shard processes, and the ground truth to check them.

`ShardProcess` runs `python -m shard` against a simulator and a redis-server, as a
StatefulSet pod would (index given, count from the StatefulSet). `expected_lines`
renders, offline and in this process, what the configs in the simulator produce from
the objects in the simulator; `stored_lines` reads what the shards wrote. Both are
multisets of exposition lines, so a duplicate, a missing, or a stale series all show.
An aggregate family is compared as served (its partials combined): the shards store
one partial per bucket, the offline render one per object, and both combine alike.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from kubesim import SimProcess
from panopticon.render.combine import combine
from panopticon.render.offline import render_exposition
from panopticon.render.program import Program
from panopticon.render.related import Needs, RelatedIndex
from panopticon.sharding.limits import order_key
from panopticon.store.layout import Layout
from panopticon.store.redisstore import RedisOptions, RedisStore
from shard.configs import ConfigSet
from tests.support import aio
from tests.support.redis_server import RedisServer, free_port

Lines = collections.Counter[str]


NAMESPACE = "panopticon"
STATEFULSET = "panopticon-shard"
"""Where the multi-process tests put the shard StatefulSet the shards watch for the ring."""


def statefulset(replicas: int) -> dict[str, Any]:
    """The shard StatefulSet as the simulator holds it (only its replicas matter)."""
    labels = {"app": STATEFULSET}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": STATEFULSET, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "serviceName": STATEFULSET,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "shard", "image": "x"}]},
            },
        },
    }


class ShardProcess:
    def __init__(
        self,
        index: int,
        *,
        kubeconfig: Path,
        redis_url: str,
        statefulset: str = "panopticon-shard",
        namespace: str = "panopticon",
        log_dir: Path,
        extra: tuple[str, ...] = (),
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """`cwd` and `env` run another tree's shard (`python -m` looks in the working
        directory first, then PYTHONPATH): the upgrade test's previous version."""
        self.index = index
        self.cwd, self.env = cwd, env
        self.port = free_port()
        self.args = [
            sys.executable, "-m", "shard", "--kubeconfig", str(kubeconfig), "--redis", redis_url,
            "--shard-index", str(index), "--statefulset", statefulset, "--namespace", namespace,
            "--port", str(self.port), "--host", "127.0.0.1", "--flush-interval", "0.02",
            "--heartbeat-interval", "0.5", "--status-interval", "1", *extra,
        ]  # fmt: skip
        self.log_path = log_dir / f"shard-{index}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ShardProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env or os.environ.copy(), cwd=self.cwd
        )
        log.close()
        return self

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"shard {self.index} exited {self.proc.returncode}: {self.tail()}")
            if self.ready():
                return
            time.sleep(0.1)
        raise TimeoutError(f"shard {self.index} not ready after {timeout}s: {self.tail()}")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        proc.terminate()
        try:
            return proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(10)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextmanager
def sharded_cluster(
    ops: list[dict[str, Any]], logs: Path, *, shards: int = 2
) -> Iterator[tuple[SimProcess, RedisServer, list[ShardProcess]]]:
    """A real redis-server, an empty simulator holding what `ops` create (one bulk call,
    every op must succeed) and `shards` shard processes, ready; all stopped on exit,
    shards the caller added to the list included."""
    redis = RedisServer()
    redis.start()
    sim = SimProcess(["--scale", "0", "--namespaces", "0", "--mongodbs", "0"]).start()
    started: list[ShardProcess] = []
    try:
        result = sim.admin.bulk(ops)
        assert {r["code"] for r in result["results"]} == {200}, result
        started += [
            ShardProcess(i, kubeconfig=sim.kubeconfig_path, redis_url=redis.url, log_dir=logs).start()
            for i in range(shards)
        ]
        for shard in started:
            shard.wait_ready()
        yield sim, redis, started
    finally:
        for shard in started:
            shard.stop()
        sim.stop()
        redis.close()


def _get(sim: SimProcess, path: str) -> Any:
    request = urllib.request.Request(sim.url + path, headers={"Authorization": f"Bearer {sim.token}"})
    with urllib.request.urlopen(request, timeout=30) as r:
        return orjson.loads(r.read())


def _resource(sim: SimProcess, api_version: str, kind: str) -> tuple[str, bool] | None:
    root = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    try:
        doc = _get(sim, root)
    except OSError:
        return None
    for res in doc.get("resources", []):
        if res.get("kind") == kind and "/" not in res["name"]:
            return f"{root}/{res['name']}", bool(res["namespaced"])
    return None


@dataclass
class Truth:
    """What the simulator's objects should render to, at one moment."""

    lines: Lines
    """The series lines the shards store (an aggregate family's per-object partials),
    after each capped config's cap."""
    families: set[str]
    """Families with at least one series."""
    headers: dict[str, bytes]
    """Family -> its text-format HELP/TYPE header, as the aggregator serves it."""
    uids: set[str]
    """Objects of the configured kinds."""
    served: Lines = field(default_factory=collections.Counter)
    """The series lines a scrape serves: as `lines`, but each aggregate family's groups
    (its partials combined) instead of its partials."""
    aggregates: set[str] = field(default_factory=set)
    """The aggregate families among `families`."""
    dropped: dict[str, int] = field(default_factory=dict)
    """Capped config -> series its cap leaves out."""


def render_truth(sim: SimProcess) -> Truth:
    """What the configs in the simulator render from its objects, computed offline as
    `panopticon render` does (`render_exposition`: joins read from the related objects
    given beside the targets, caps applied in the shards' keep order, aggregates
    combined for `served`)."""
    configs = ConfigSet()
    for crd in _get(sim, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]:
        configs.schemas.add_crd(crd)
    for body in _get(sim, "/apis/metrics.appscode.com/v1alpha1/metricsconfigurations")["items"]:
        configs.upsert(body)
    truth = Truth(collections.Counter(), set(), {}, set())
    by_target = configs.programs_by_target()
    objects: list[dict[str, Any]] = []
    fetched: set[tuple[str, str]] = set()
    for target in by_target:
        found = _resource(sim, target.api_version, target.kind)
        if found is None or (target.group, target.kind) in fetched:
            continue
        fetched.add((target.group, target.kind))
        for obj in _get(sim, found[0])["items"]:
            uid = obj.get("metadata", {}).get("uid")
            if isinstance(uid, str):
                truth.uids.add(uid)
            # LIST items lack apiVersion and kind. Each kind once: render_exposition gives an
            # object to every program of its group and kind, whatever their version (the
            # simulator serves the same body at every version, so the shards' per-version
            # watches render the same lines).
            objects.append({**obj, "apiVersion": target.api_version, "kind": target.kind})
    programs = [p for ps in by_target.values() for p in ps]
    objects += _related(sim, programs, objects, fetched)
    expo = render_exposition(configs.resolution, objects, order=order_key)
    for family, chunks in expo.lines.items():
        text = "".join(chunks)
        if text:
            served = expo.served(family).decode().splitlines()
            truth.families.add(family)
            truth.served.update(served)
            if expo.families[family].header.aggregate is not None:
                # The shards store one partial per bucket, the offline render one per
                # object: compared combined (`stored_lines` combines them alike).
                truth.aggregates.add(family)
                truth.lines.update(served)
            else:
                truth.lines.update(text.splitlines())
    truth.dropped = {config: count.dropped for config, count in expo.limits.items()}
    registry = configs.registry()
    truth.headers = {family: registry[family].text_header for family in truth.families if family in registry}
    return truth


def _related(
    sim: SimProcess, programs: list[Program], targets: list[dict[str, Any]], fetched: set[tuple[str, str]]
) -> list[dict[str, Any]]:
    """The related objects joined labels read, from the simulator, as documents beside
    the targets (kinds in `fetched` are among them already): the joined kinds, then
    every kind an owner chain passes through (as the shards learn them)."""
    needs = Needs.of(p.joins for p in programs)
    if not needs.paths:
        return []
    index = RelatedIndex(needs)
    joined = [
        (source, obj)
        for program in programs
        if program.joins is not None
        for obj in targets
        if program.matches(obj)
        for source in program.joins.sources
    ]
    out: list[dict[str, Any]] = []
    todo = set(needs.versions.items())
    while todo:
        (group, kind), api_version = todo.pop()
        index.watched.add((group, kind))
        found = _resource(sim, api_version, kind)
        for item in _get(sim, found[0])["items"] if found else []:
            obj = {**item, "apiVersion": api_version, "kind": kind}  # LIST items lack them
            index.apply("ADDED", obj)
            if (group, kind) not in fetched:
                out.append(obj)
        for source, obj in joined:
            index.record(source, obj)  # records the chain kinds not fetched yet
        todo |= {((v.rpartition("/")[0], k), v) for v, k in index.unwatched}
        index.unwatched.clear()
    return out


def expected_lines(sim: SimProcess) -> Lines:
    """What the configs in the simulator render from its objects, computed offline."""
    return render_truth(sim).lines


def stored_lines(redis_url: str, layout: Layout | None = None, *, cluster: bool = False) -> Lines:
    """What the shards wrote, as the aggregator would serve it (registered families only)."""

    async def read() -> Lines:
        store = RedisStore.connect(RedisOptions(url=redis_url, cluster=cluster), layout or Layout())
        try:
            lines: Lines = collections.Counter()
            registry = await store.registry()
            partials: dict[str, list[bytes]] = {f: [] for f, entry in registry.items() if entry.aggregate}
            async for family, chunk in store.read_families(sorted(registry)):
                if family in partials:
                    partials[family].append(chunk)
                else:
                    lines.update(chunk.decode().splitlines())
            for family, chunks in partials.items():
                function = registry[family].aggregate
                assert function is not None
                lines.update(combine(function, chunks).decode().splitlines())
            return lines
        finally:
            await store.close()

    return aio.run(read())


def describe_difference(expected: Lines, stored: Lines, limit: int = 5) -> str:
    missing = expected - stored
    extra = stored - expected
    dupes = [line for line, n in stored.items() if n > 1]
    parts = [f"{sum(missing.values())} missing, {sum(extra.values())} unexpected, {len(dupes)} duplicated"]
    parts += [f"  missing: {line}" for line in list(missing)[:limit]]
    parts += [f"  unexpected: {line}" for line in list(extra)[:limit]]
    return "\n".join(parts)


def converge(
    sim: SimProcess, redis_url: str, *, timeout: float = 60.0, what: str = "", cluster: bool = False
) -> Lines:
    """Wait until the store holds exactly the expected lines; raise with the difference if not."""
    deadline = time.monotonic() + timeout
    while True:
        expected = expected_lines(sim)
        stored = stored_lines(redis_url, cluster=cluster)
        if expected == stored:
            return stored
        if time.monotonic() > deadline:
            difference = describe_difference(expected, stored)
            raise AssertionError(f"{what}: store never matched the offline render:\n{difference}")
        time.sleep(0.5)


class AggregatorProcess:
    """`python -m aggregator` on free ports."""

    def __init__(
        self,
        *,
        redis_url: str,
        log_dir: Path,
        name: str = "aggregator",
        extra: tuple[str, ...] = (),
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.cwd, self.env = cwd, env
        self.port = free_port()
        self.telemetry_port = free_port()
        self.args = [
            sys.executable, "-m", "aggregator", "--redis", redis_url, "--host", "127.0.0.1",
            "--port", str(self.port), "--telemetry-port", str(self.telemetry_port), *extra,
        ]  # fmt: skip
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> AggregatorProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.telemetry_port}/readyz", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"aggregator not ready: {self.log_path.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(20)
            self.proc = None


def churn(
    sim: SimProcess, events: int, *, rate: float = 1500, seed: int = 1, resources: Iterable[str] | None = None
) -> None:
    """`events` simulator changes at `rate` per second (of `resources`, else of every
    churned kind), waiting until the churn has finished."""
    only = {"resources": list(resources)} if resources is not None else {}
    sim.admin.start_churn(rate, seed=seed, duration=events / rate, **only)
    deadline = time.monotonic() + events / rate + 30
    while time.monotonic() < deadline:
        state = sim.admin.call("GET", "/churn")["churn"]
        if not state or not state["running"]:
            break
        time.sleep(0.2)
    sim.admin.stop_churn()
