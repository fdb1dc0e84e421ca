"""Panopticon embedded in a plain asyncio program (no operator framework).

    KUBECONFIG=... python examples/asyncio_operator.py [--port 9090] [--namespace NS ...]
    curl -s localhost:9090/metrics

The program owns an aiohttp app with its own routes; Panopticon's handler is one
more route, and `/metrics` carries both the program's prometheus_client metrics and
the per-object metrics of the Memcacheds (examples/kopf_operator/metrics.yaml).
The "work" here is a loop counting its rounds; a real operator reconciles there.
SIGTERM or Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

import prometheus_client
from aiohttp import web

from panopticon.embed import Exporter

HERE = Path(__file__).resolve().parent

ROUNDS = prometheus_client.Counter("example_operator_rounds", "Rounds of the example's work loop.")


async def work() -> None:
    while True:
        ROUNDS.inc()
        await asyncio.sleep(1)


async def main(port: int, namespaces: list[str]) -> None:
    exporter = Exporter(
        configs=[HERE / "kopf_operator" / "metrics.yaml"],
        registry=prometheus_client.REGISTRY,
        namespaces=namespaces,
    )

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(request: web.Request) -> web.Response:
        if exporter.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="syncing\n")

    app = web.Application()
    app.router.add_get("/metrics", exporter.handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    async with exporter:  # start() ... stop()
        worker = asyncio.create_task(work(), name="work")
        print(f"serving /metrics on port {port}", flush=True)
        await stop.wait()
        worker.cancel()
    await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9090)
    parser.add_argument("--namespace", action="append", default=[], help="namespace to watch (repeatable)")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(main(arguments.port, arguments.namespace))
