"""The aggregator as a component of `panopticon run`."""

from __future__ import annotations

import argparse
import asyncio
import logging

from aggregator.app import METRICS, ScrapeSettings, build_apps
from aggregator.compress import ENGINES, resolve_engine
from panopticon import flags, serving
from panopticon.store.contract import Store

log = logging.getLogger("panopticon.aggregator")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port", dest="metrics_port", type=flags.port, default=8080, help="/metrics for Prometheus"
    )
    parser.add_argument(
        "--telemetry-port", type=flags.port, default=8081, help="the aggregator's own metrics and probes"
    )
    add_scrape_arguments(parser)


def add_scrape_arguments(parser: argparse.ArgumentParser) -> None:
    """The scrape flags `panopticon aggregator` and `panopticon run` share."""
    parser.add_argument(
        "--max-concurrent-scrapes",
        type=flags.integer(minimum=1),
        default=4,
        help="scrapes served at once; more get 503 (also the gzip thread pool's size)",
    )
    parser.add_argument(
        "--gzip-level",
        type=int,
        default=1,
        choices=range(1, 10),
        help="zlib's levels; isal maps them to its 1-3",
    )
    parser.add_argument(
        "--gzip-engine",
        default="auto",
        choices=ENGINES,
        help="deflate implementation: auto = isal when installed, else zlib",
    )


def scrape_settings(args: argparse.Namespace) -> ScrapeSettings:
    return ScrapeSettings(
        max_concurrent=args.max_concurrent_scrapes,
        gzip_level=args.gzip_level,
        gzip_engine=resolve_engine(args.gzip_engine),
    )


async def run(args: argparse.Namespace, store: Store, stop: asyncio.Event) -> None:
    metrics_app, telemetry_app = build_apps(store, scrape_settings(args))
    runners = await serving.start_sites(
        [(metrics_app, args.host, args.metrics_port), (telemetry_app, args.host, args.telemetry_port)],
        flags=["--port", "--telemetry-port"],
        on_reject=metrics_app[METRICS].reject,
    )
    ports = [serving.bound_port(r) for r in runners]
    args.bound_metrics_port, args.bound_telemetry_port = ports
    log.info("aggregator serving /metrics on port %d, telemetry on %d", *ports)
    try:
        await stop.wait()
    finally:
        await serving.stop_sites(runners)
