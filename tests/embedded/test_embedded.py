"""Embedded mode (`panopticon run`) and the demo: one process, same output as the offline render."""

from __future__ import annotations

import asyncio
import collections
import subprocess
import sys
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from kubesim import SimProcess
from panopticon.commands import run as run_command
from tests.support import aio
from tests.support.cluster import describe_difference, expected_lines
from tests.support.redis_server import RedisServer, free_port


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        return str(r.read().decode())


def lines_of(text: str) -> collections.Counter[str]:
    return collections.Counter(line for line in text.splitlines() if line and not line.startswith("#"))


def run_and_compare(sim: SimProcess, extra: list[str]) -> None:
    ports = [free_port() for _ in range(3)]
    parser = __import__("argparse").ArgumentParser()
    run_command.add_arguments(parser)
    args = parser.parse_args(
        ["--kubeconfig", str(sim.kubeconfig_path), "--host", "127.0.0.1", "--port", str(ports[0]),
         "--telemetry-port", str(ports[1]), "--shard-port", str(ports[2]), "--flush-interval", "0.02", *extra]
    )  # fmt: skip

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_command.run_embedded(args, stop))
        try:
            for _ in range(300):
                try:
                    await asyncio.to_thread(
                        urllib.request.urlopen, f"http://127.0.0.1:{ports[2]}/readyz", None, 1
                    )
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            expected = await asyncio.to_thread(expected_lines, sim)
            for _ in range(100):
                text = await asyncio.to_thread(scrape, ports[0])
                if lines_of(text) == expected:
                    break
                await asyncio.sleep(0.2)
            got = lines_of(text)
            assert got == expected, describe_difference(expected, got)
            families = [f.name for f in text_string_to_metric_families(text)]
            assert len(families) == len(set(families))
        finally:
            stop.set()
            await task

    aio.run(main())


def test_embedded_mode_serves_exactly_the_offline_render() -> None:
    with SimProcess(["--with-configs", "--scale", "1", "--seed", "3"]) as sim:
        run_and_compare(sim, [])


def test_embedded_mode_over_redis_serves_the_same() -> None:
    redis = RedisServer()
    redis.start()
    try:
        with SimProcess(["--with-configs", "--scale", "1", "--seed", "4"]) as sim:
            run_and_compare(sim, ["--redis", redis.url])
    finally:
        redis.close()


def test_the_demo_starts_prints_its_urls_and_serves_metrics(tmp_path: Path) -> None:
    port, shard_port = free_port(), free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "panopticon", "demo", "--duration", "2", "--port", str(port),
         "--telemetry-port", "0", "--shard-port", str(shard_port), "--scale", "1", "--mongodbs", "20"],
        capture_output=True, timeout=180, check=False,
    )  # fmt: skip
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert "Panopticon demo is running." in out
    assert f"http://127.0.0.1:{port}/metrics" in out
    assert 'kubedb_com_mongodb_status_phase{mongodb="' in out
