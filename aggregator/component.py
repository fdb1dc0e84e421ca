"""The aggregator as a component of `panopticon run`."""

from __future__ import annotations

import argparse
import asyncio
import logging

from aggregator.app import ScrapeSettings, build_apps
from panopticon import serving
from panopticon.store import Store

log = logging.getLogger("panopticon.aggregator")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", dest="metrics_port", type=int, default=8080, help="/metrics for Prometheus")
    parser.add_argument(
        "--telemetry-port", type=int, default=8081, help="the aggregator's own metrics and probes"
    )
    parser.add_argument("--max-concurrent-scrapes", type=int, default=4)
    parser.add_argument("--gzip-level", type=int, default=1, choices=range(1, 10))


async def run(args: argparse.Namespace, store: Store, stop: asyncio.Event) -> None:
    settings = ScrapeSettings(max_concurrent=args.max_concurrent_scrapes, gzip_level=args.gzip_level)
    metrics_app, telemetry_app = build_apps(store, settings)
    runners = await serving.start_sites(
        [(metrics_app, args.host, args.metrics_port), (telemetry_app, args.host, args.telemetry_port)]
    )
    ports = [serving.bound_port(r) for r in runners]
    args.bound_metrics_port, args.bound_telemetry_port = ports
    log.info("aggregator serving /metrics on port %d, telemetry on %d", *ports)
    try:
        await stop.wait()
    finally:
        await serving.stop_sites(runners)
