"""The examples, run exactly as their docstrings say, against the simulator.

`kopf run --standalone examples/kopf_operator/operator.py` (the real kopf package)
with KUBECONFIG set, and `python examples/asyncio_operator.py`: both serve one
/metrics with the Memcacheds' series and the program's own counter.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from panopticon.sim import SimProcess
from tests.panopticon.embed.support import (
    CRD,
    EXAMPLE,
    eventually,
    memcached,
    promtool_accepts,
    samples,
    scrape,
)
from tests.support.redis_server import free_port

ROOT = EXAMPLE.parents[1]
SAMPLE = yaml.safe_load((EXAMPLE / "manifests" / "memcached.yaml").read_text())


@pytest.fixture(scope="module")
def cluster() -> Iterator[SimProcess]:
    # HTTPS: kopf authenticates through the kubernetes package, which (like client-go)
    # is meant to send bearer tokens over TLS.
    with SimProcess(["--https", "--scale", "0", "--namespaces", "0", "--nodes", "0"]) as sim:
        sim.admin.bulk([{"op": "create", "object": CRD}])
        yield sim


def start(command: list[str], sim: SimProcess, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KUBECONFIG": str(sim.kubeconfig_path), "PANOPTICON_PORT": str(port)}
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert code == 0, log.read_text()[-3000:]


def test_the_kopf_example_serves_its_memcacheds_its_status_and_its_counter(
    cluster: SimProcess, tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "kopf.log"
    kopf = str(Path(sys.executable).with_name("kopf"))
    proc = start([kopf, "run", "--standalone", "examples/kopf_operator/operator.py"], cluster, port, log)
    url = f"http://127.0.0.1:{port}/metrics"
    size = (
        "cache_example_com_memcached_status_ready_replicas",
        (("memcached", "sessions"), ("namespace", "default")),
    )
    ok = ("memcached_operator_reconciles_total", (("outcome", "ok"),))
    memory = ("memcached_memory_limit_bytes", (("memcached", "sessions"), ("namespace", "default")))

    async def main() -> None:
        cluster.admin.bulk([{"op": "create", "object": SAMPLE}])

        async def reconciled() -> None:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                got = samples(await scrape(url))
            except OSError as e:
                raise AssertionError(f"not serving yet: {e}") from e
            assert got.get(size) == 3  # the handler's status, rendered by the MetricsConfiguration
            assert got[ok] == 1
            assert got[memory] == 3 * 64 * 2**20  # the generator

        await eventually(reconciled, within=60)
        patch = {"op": "patch", "apiVersion": "cache.example.com/v1", "kind": "Memcached", "name": "sessions",
                 "namespace": "default", "patch": {"spec": {"size": 5}}}  # fmt: skip
        broken = memcached("broken", memory="lots")
        cluster.admin.bulk([patch, {"op": "create", "object": broken}])

        async def updated() -> None:
            got = samples(await scrape(url))
            assert got.get(size) == 5 and got[ok] == 3  # sessions twice, broken once (its size is fine)
            # broken's memoryMB makes the generator raise at each of its renders: counted,
            # and every other series is still served.
            key = (
                "panopticon_embed_generator_errors_total",
                (("generator", "memcached_memory"), ("reason", "raised")),
            )
            assert got.get(key, 0) >= 1, [k for k in got if k[0].startswith("panopticon_embed_generator")]

        await eventually(updated, within=30)
        cluster.admin.bulk(
            [{"op": "delete", "apiVersion": "cache.example.com/v1", "kind": "Memcached", "name": name,
              "namespace": "default"} for name in ("sessions", "broken")]
        )  # fmt: skip

        async def deleted() -> None:
            text = await scrape(url)
            assert 'memcached="sessions"' not in text
            promtool_accepts(text)

        await eventually(deleted, within=30)

    try:
        asyncio.run(main())
    finally:
        stop(proc, log)
    assert "Activity 'panopticon' succeeded" in log.read_text()


def test_the_plain_asyncio_example_serves_the_same_with_its_own_routes(
    cluster: SimProcess, tmp_path: Path
) -> None:
    cluster.admin.bulk([{"op": "create", "object": memcached("plain", namespace="team-a")}])
    port, log = free_port(), tmp_path / "asyncio.log"
    command = [sys.executable, "examples/asyncio_operator.py", "--port", str(port), "--namespace", "team-a"]
    proc = start(command, cluster, port, log)

    async def main() -> None:
        async def serving() -> None:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                text = await scrape(f"http://127.0.0.1:{port}/metrics")
                ready = await scrape(f"http://127.0.0.1:{port}/readyz")
            except (OSError, AssertionError) as e:
                raise AssertionError(f"not ready yet: {e}") from e
            got = samples(text)
            assert ready == "ready\n"
            spec = (
                "cache_example_com_memcached_spec_size",
                (("memcached", "plain"), ("namespace", "team-a")),
            )
            assert got.get(spec) == 3 and got.get(("example_operator_rounds_total", ()), 0) >= 1, text[-2000:]
            promtool_accepts(text)

        await eventually(serving, within=60)

    try:
        asyncio.run(main())
    finally:
        stop(proc, log)
