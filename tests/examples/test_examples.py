"""The examples, run exactly as their docstrings say, against the simulator.

`kopf run --standalone examples/kopf_operator/operator.py` (the real kopf package)
with KUBECONFIG set, and `python examples/asyncio_operator.py`: both serve one
/metrics with the Memcacheds' series and the program's own counter.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from kubesim import SimProcess
from tests.panopticon.embed.support import (
    CRD,
    EXAMPLE,
    eventually,
    memcached,
    promtool_accepts,
    samples,
    scrape,
)
from tests.support import aio
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


@contextmanager
def running(command: list[str], sim: SimProcess, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The program, with KUBECONFIG and PANOPTICON_PORT set; SIGTERM must end it cleanly."""
    env = {**os.environ, "KUBECONFIG": str(sim.kubeconfig_path), "PANOPTICON_PORT": str(port)}
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, tail(log)


def tail(log: Path) -> str:
    return log.read_text()[-3000:]


async def scraped(proc: subprocess.Popen[bytes], log: Path, url: str) -> str:
    """What the program answers at `url`; AssertionError while it is not serving yet."""
    assert proc.poll() is None, tail(log)
    try:
        return await scrape(url)
    except (OSError, AssertionError) as e:
        raise AssertionError(f"not serving yet: {e}") from e


def test_the_kopf_example_serves_its_memcacheds_its_status_and_its_counter(
    cluster: SimProcess, tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "kopf.log"
    kopf = str(Path(sys.executable).with_name("kopf"))
    command = [kopf, "run", "--standalone", "examples/kopf_operator/operator.py"]
    url = f"http://127.0.0.1:{port}/metrics"
    size = (
        "cache_example_com_memcached_status_ready_replicas",
        (("memcached", "sessions"), ("namespace", "default")),
    )
    ok = ("memcached_operator_reconciles_total", (("outcome", "ok"),))
    memory = ("memcached_memory_limit_bytes", (("memcached", "sessions"), ("namespace", "default")))

    async def main(proc: subprocess.Popen[bytes]) -> None:
        cluster.admin.bulk([{"op": "create", "object": SAMPLE}])

        async def reconciled() -> None:
            got = samples(await scraped(proc, log, url))
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

    with running(command, cluster, port, log) as proc:
        aio.run(main(proc))
    assert "Activity 'panopticon' succeeded" in log.read_text()


def test_the_plain_asyncio_example_serves_the_same_with_its_own_routes(
    cluster: SimProcess, tmp_path: Path
) -> None:
    cluster.admin.bulk([{"op": "create", "object": memcached("plain", namespace="team-a")}])
    port, log = free_port(), tmp_path / "asyncio.log"
    command = [sys.executable, "examples/asyncio_operator.py", "--port", str(port), "--namespace", "team-a"]

    async def main(proc: subprocess.Popen[bytes]) -> None:
        async def serving() -> None:
            assert await scraped(proc, log, f"http://127.0.0.1:{port}/readyz") == "ready\n"
            text = await scraped(proc, log, f"http://127.0.0.1:{port}/metrics")
            got = samples(text)
            spec = (
                "cache_example_com_memcached_spec_size",
                (("memcached", "plain"), ("namespace", "team-a")),
            )
            assert got.get(spec) == 3 and got.get(("example_operator_rounds_total", ()), 0) >= 1, text[-2000:]
            promtool_accepts(text)

        await eventually(serving, within=60)

    with running(command, cluster, port, log) as proc:
        aio.run(main(proc))
