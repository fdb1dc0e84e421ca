"""Series caps in embedded mode (`panopticon run --max-series-per-config`): one process
serves what the offline render with the same caps gives."""

from __future__ import annotations

import argparse
import asyncio
import urllib.request
from typing import Any

from kubesim import SimProcess
from panopticon.commands import run as run_command
from tests.embedded.test_embedded import lines_of, scrape
from tests.panopticon.kube.test_discovery import widget, widget_crd
from tests.shard.test_limits_sharded import config, expected
from tests.support.cluster import describe_difference
from tests.support.redis_server import free_port

GLOBAL_CAP = 30


def shard_metrics(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return bytes(r.read())


def test_panopticon_run_applies_spec_limits_and_the_global_cap() -> None:
    with SimProcess(["--scale", "0", "--namespaces", "0", "--mongodbs", "0"]) as sim:
        ops: list[dict[str, Any]] = [
            {"op": "create", "object": widget_crd()},
            {"op": "create", "object": config("capped", 2, {"series": 20})},  # 10 widgets
            {"op": "create", "object": config("free", 1)},  # the global cap: 30 widgets
        ]
        ops += [{"op": "create", "object": widget(f"w{i}", i)} for i in range(50)]
        assert {r["code"] for r in sim.admin.bulk(ops)["results"]} == {200}
        ports = [free_port() for _ in range(3)]
        parser = argparse.ArgumentParser()
        run_command.add_arguments(parser)
        args = parser.parse_args(
            ["--kubeconfig", str(sim.kubeconfig_path), "--host", "127.0.0.1", "--port", str(ports[0]),
             "--telemetry-port", str(ports[1]), "--shard-port", str(ports[2]), "--flush-interval", "0.02",
             "--max-series-per-config", str(GLOBAL_CAP)]
        )  # fmt: skip

        async def main() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(run_command.run_embedded(args, stop))
            try:
                want = await asyncio.to_thread(expected, sim, GLOBAL_CAP)
                got: Any = None
                for _ in range(150):
                    try:
                        got = lines_of(await asyncio.to_thread(scrape, ports[0]))
                    except OSError:
                        got = None
                    if got == want:
                        break
                    await asyncio.sleep(0.2)
                assert got == want, describe_difference(want, got or lines_of(""))
                names = {line.split("{", 1)[0] for line in want}
                assert sum(1 for line in want if line.startswith("example_com_widget_capped_0{")) == 10
                assert sum(1 for line in want if line.startswith("example_com_widget_free_0{")) == GLOBAL_CAP
                assert names == {
                    "example_com_widget_capped_0",
                    "example_com_widget_capped_1",
                    "example_com_widget_free_0",
                }
                wanted = (
                    b'panopticon_shard_series_dropped{config="capped"} 80.0',
                    b'panopticon_shard_series_dropped{config="free"} 20.0',
                )
                shard = b""
                for _ in range(100):  # the gauges follow the heartbeat (every 2 s)
                    shard = await asyncio.to_thread(shard_metrics, ports[2])
                    if all(w in shard for w in wanted):
                        break
                    await asyncio.sleep(0.1)
                assert all(w in shard for w in wanted), shard.decode()
            finally:
                stop.set()
                await task

        asyncio.run(main())
