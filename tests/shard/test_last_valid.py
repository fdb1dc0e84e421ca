"""Last valid config on a bad edit (as Prometheus keeps its configuration when a
reload fails): the configs' side, the store's record for shards that start later,
and both end to end (two shards over Redis; `panopticon run`)."""

from __future__ import annotations

import copy
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesim import SimProcess
from panopticon.store.layout import Layout
from panopticon.store.memory import MemoryStore
from shard.configs import ConfigSet
from shard.lastvalid import LastValid
from tests.support import aio
from tests.support.cluster import ShardProcess, _get, stored_lines
from tests.support.redis_server import RedisServer, free_port

GROUP = "example.com"
CONFIGS = "/apis/metrics.appscode.com/v1alpha1/metricsconfigurations"


def config(
    generation: int, *, metric: str = "widget_size", path: str = ".spec.size", uid: str = "u1"
) -> dict[str, Any]:
    return {
        "apiVersion": "metrics.appscode.com/v1alpha1",
        "kind": "MetricsConfiguration",
        "metadata": {"name": "widgets", "uid": uid, "generation": generation},
        "spec": {
            "targetRef": {"apiVersion": f"{GROUP}/v1", "kind": "Widget"},
            "metrics": [
                {"name": metric, "help": "Size.", "type": "gauge", "metricValue": {"valueFromPath": path}}
            ],
        },
    }


def widget_crd(*fields: str) -> dict[str, Any]:
    spec = {"type": "object", "properties": {f: {"type": "integer"} for f in fields}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {"kind": "Widget", "plural": "widgets"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec}}},
                }
            ],
        },
    }


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def served_families(configs: ConfigSet) -> list[str]:
    return [
        h.name for programs in configs.programs_by_target().values() for p in programs for h in p.families
    ]


def test_a_bad_edit_keeps_the_last_valid_generation_served_and_the_status_says_which() -> None:
    configs = ConfigSet()
    configs.upsert(config(1))
    state = configs.upsert(config(2, metric="bad name"))
    assert state is not None and not state.valid
    assert served_families(configs) == ["widget_size"]
    status = state.status()
    assert status["observedGeneration"] == 2
    invalid, ready = conditions(status)["Invalid"], conditions(status)["Ready"]
    assert invalid["status"] == "True" and invalid["reason"] == "ValidationFailed"
    assert "spec.metrics[0].name" in invalid["message"]
    assert "serving generation 1, the last valid one" in invalid["message"]
    assert ready["status"] == "True" and ready["reason"] == "ServingLastValid"

    # Another bad edit: still generation 1. A fix: the fix is served.
    configs.upsert(config(3, path="not a path ["))
    assert "serving generation 1" in configs.configs["widgets"].status()["conditions"][1]["message"]
    fixed = configs.upsert(config(4, metric="widget_bytes"))
    assert fixed is not None and fixed.valid and fixed.last_good is None
    assert served_families(configs) == ["widget_bytes"]
    assert conditions(fixed.status())["Invalid"]["status"] == "False"


def test_a_config_that_was_never_valid_serves_nothing() -> None:
    configs = ConfigSet()
    state = configs.upsert(config(1, metric="bad name"))
    assert state is not None and state.served is None and served_families(configs) == []
    assert conditions(state.status())["Ready"] == {
        "type": "Ready",
        "status": "False",
        "reason": "Invalid",
        "message": state.status()["conditions"][0]["message"],
    }
    assert "serving" not in state.status()["conditions"][0]["message"]


def test_a_config_created_again_under_its_name_does_not_inherit_the_old_objects_version() -> None:
    configs = ConfigSet()
    configs.upsert(config(1))
    configs.upsert(config(1, metric="bad name", uid="u2"))  # a new object (missed delete)
    assert served_families(configs) == []


def test_a_crd_change_that_makes_a_served_config_invalid_keeps_it_served() -> None:
    configs = ConfigSet()
    configs.schemas.add_crd(widget_crd("size"))
    assert configs.upsert(config(1)) is not None and served_families(configs) == ["widget_size"]
    configs.schemas.add_crd(widget_crd("length"))  # .spec.size is gone from the schema
    assert configs.recompile() == ["widgets"]
    state = configs.configs["widgets"]
    assert not state.valid and ".spec.size" in conditions(state.status())["Invalid"]["message"]
    assert "serving generation 1" in conditions(state.status())["Invalid"]["message"]
    assert served_families(configs) == ["widget_size"]


def test_a_shard_that_starts_after_the_bad_edit_serves_the_recorded_last_valid_version() -> None:
    async def body() -> None:
        store = MemoryStore(Layout(prefix="t", buckets=64, slots=8))
        early = ConfigSet()
        early_valid = LastValid(store, early)
        await early_valid.save(early.upsert(config(1)))  # type: ignore[arg-type]

        late = ConfigSet()  # started after the edit: sees generation 2 only
        state = late.upsert(config(2, metric="bad name"))
        assert state is not None and served_families(late) == []
        assert await LastValid(store, late).restore(state)
        assert served_families(late) == ["widget_size"]
        assert "serving generation 1" in conditions(state.status())["Invalid"]["message"]

        # The same generation, invalid here only because this shard has a newer CRD.
        newer_crd = ConfigSet()
        newer_crd.schemas.add_crd(widget_crd("length"))
        same = newer_crd.upsert(config(1))
        assert same is not None and not same.valid and served_families(newer_crd) == []
        assert await LastValid(store, newer_crd).restore(same)
        assert served_families(newer_crd) == ["widget_size"]

        # Not another object's version, and nothing once the config is deleted.
        other = ConfigSet()
        assert not await LastValid(store, other).restore(other.upsert(config(2, metric="x y", uid="u9")))  # type: ignore[arg-type]
        await early_valid.forget("widgets")
        again = ConfigSet()
        assert not await LastValid(store, again).restore(again.upsert(config(2, metric="bad name")))  # type: ignore[arg-type]

    aio.run(body())


def test_a_status_write_coming_back_as_an_event_does_not_recompile() -> None:
    configs = ConfigSet()
    first = configs.upsert(config(1))
    with_status = copy.deepcopy(config(1))
    with_status["status"] = {"observedGeneration": 1}
    with_status["metadata"]["resourceVersion"] = "42"
    assert configs.upsert(with_status) is first
    assert first is not None and first.body is with_status


# --- end to end ---------------------------------------------------------------------


def configmap(name: str, size: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": {"size": str(size)},
    }


NAMESPACE = "lastvalid"
SIZES = {
    "apiVersion": "metrics.appscode.com/v1alpha1",
    "kind": "MetricsConfiguration",
    "metadata": {"name": "sizes"},
    "spec": {
        "targetRef": {"apiVersion": "v1", "kind": "ConfigMap"},
        "metrics": [{"name": "configmap_size", "help": "Size.", "type": "gauge",
                     "metricValue": {"valueFromPath": ".data.size"}}],
    },
}  # fmt: skip
BAD_EDIT = {
    "spec": {"metrics": [{"name": "bad name", "help": "Size.", "type": "gauge", "metricValue": {"value": 1}}]}
}
REF = {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration", "name": "sizes"}


def size_lines(lines: Iterable[str]) -> set[str]:
    return {line for line in lines if line.startswith("configmap_size{")}


def expected(sizes: dict[str, int]) -> set[str]:
    return {f'configmap_size{{configmap="{n}",namespace="{NAMESPACE}"}} {s}' for n, s in sizes.items()}


def invalid_condition(sim: SimProcess) -> dict[str, Any]:
    status = _get(sim, f"{CONFIGS}/sizes").get("status") or {}
    found = [c for c in status.get("conditions", []) if c["type"] == "Invalid"]
    return {**found[0], "observedGeneration": status.get("observedGeneration")} if found else {}


def serving_generation_1(sim: SimProcess) -> bool:
    condition = invalid_condition(sim)
    return condition.get("status") == "True" and "serving generation 1" in condition.get("message", "")


@pytest.fixture
def sim() -> Iterator[SimProcess]:
    process = SimProcess(["--scale", "0", "--mongodbs", "0"])
    process.start()
    process.admin.bulk(
        [
            {
                "op": "create",
                "object": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            }
        ]
    )
    try:
        yield process
    finally:
        process.stop()


def test_two_shards_over_redis_keep_serving_the_last_valid_version_and_a_restarted_one_too(
    sim: SimProcess, tmp_path: Path
) -> None:
    redis = RedisServer()
    redis.start()
    sizes = {f"c{i}": i for i in range(8)}
    sim.admin.bulk(
        [{"op": "create", "object": SIZES}]
        + [{"op": "create", "object": configmap(n, s)} for n, s in sizes.items()]
    )
    common: dict[str, Any] = {"kubeconfig": sim.kubeconfig_path, "redis_url": redis.url, "log_dir": tmp_path}
    shards = [ShardProcess(i, extra=("--shards", "2"), **common).start() for i in range(2)]
    try:
        for shard in shards:
            shard.wait_ready()
        eventually(
            lambda: size_lines(stored_lines(redis.url)) == expected(sizes), "the valid config's series"
        )

        sim.admin.bulk([{"op": "patch", **REF, "patch": BAD_EDIT}])
        eventually(lambda: serving_generation_1(sim), "the status of the bad edit")
        assert invalid_condition(sim)["observedGeneration"] == 2
        # Every shard goes on rendering generation 1: a change reaches the store.
        sizes["c0"] = 100
        sim.admin.bulk([{"op": "patch", "apiVersion": "v1", "kind": "ConfigMap", "name": "c0",
                         "namespace": NAMESPACE, "patch": {"data": {"size": "100"}}}])  # fmt: skip
        eventually(
            lambda: size_lines(stored_lines(redis.url)) == expected(sizes), "an update under generation 1"
        )

        # A shard started after the bad edit serves the version the store recorded.
        shards[1].stop()
        shards[1] = ShardProcess(1, extra=("--shards", "2"), **common).start()
        shards[1].wait_ready()
        added = {f"n{i}": 50 + i for i in range(8)}
        sizes.update(added)
        sim.admin.bulk([{"op": "create", "object": configmap(n, s)} for n, s in added.items()])
        eventually(
            lambda: size_lines(stored_lines(redis.url)) == expected(sizes), "new objects under generation 1"
        )
        time.sleep(2)  # a sync and a garbage collection later, still all there
        assert size_lines(stored_lines(redis.url)) == expected(sizes)
    finally:
        for shard in shards:
            shard.stop()
        redis.close()


def test_panopticon_run_keeps_serving_the_last_valid_version(sim: SimProcess, tmp_path: Path) -> None:
    sizes = {f"c{i}": i for i in range(3)}
    sim.admin.bulk(
        [{"op": "create", "object": SIZES}]
        + [{"op": "create", "object": configmap(n, s)} for n, s in sizes.items()]
    )
    port = free_port()
    with (tmp_path / "run.log").open("wb") as log:
        run = subprocess.Popen(
            [sys.executable, "-m", "panopticon", "run", "--kubeconfig", str(sim.kubeconfig_path),
             "--host", "127.0.0.1", "--port", str(port), "--shard-port", str(free_port()),
             "--telemetry-port", str(free_port()), "--status-interval", "1", "--flush-interval", "0.02"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        eventually(lambda: size_lines(scrape(port)) == expected(sizes), "the valid config's series")
        sim.admin.bulk([{"op": "patch", **REF, "patch": BAD_EDIT}])
        eventually(lambda: serving_generation_1(sim), "the status of the bad edit")
        sizes["c1"] = 41
        sim.admin.bulk([{"op": "patch", "apiVersion": "v1", "kind": "ConfigMap", "name": "c1",
                         "namespace": NAMESPACE, "patch": {"data": {"size": "41"}}}])  # fmt: skip
        eventually(lambda: size_lines(scrape(port)) == expected(sizes), "an update under generation 1")
        assert run.poll() is None
    finally:
        run.terminate()
        run.wait(20)


def scrape(port: int) -> list[str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return list(r.read().decode().splitlines())
    except OSError:
        return []


def eventually(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
