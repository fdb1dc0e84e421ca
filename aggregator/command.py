"""`panopticon aggregator` (also `python -m aggregator`): serve /metrics from the store."""

from __future__ import annotations

import argparse
import logging
import sys

from aggregator.app import METRICS, build_apps
from aggregator.component import add_scrape_arguments, scrape_settings
from panopticon import flags, serving
from panopticon.cli import run_command
from panopticon.store.options import add_store_arguments, layout, redis_options
from panopticon.store.redisstore import RedisStore

HELP = "serve the metrics the shards wrote to Redis on /metrics (stateless; run several)"
log = logging.getLogger("panopticon.aggregator")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_store_arguments(parser, redis_required=True)
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--port", type=flags.port, default=8080, help="metrics port (Prometheus scrapes it)")
    parser.add_argument(
        "--telemetry-port", type=flags.port, default=8081, help="the aggregator's own metrics and probes"
    )
    add_scrape_arguments(parser)
    parser.add_argument(
        "--shutdown-grace",
        type=flags.non_negative,
        default=50.0,
        metavar="SECONDS",
        help="after SIGTERM, how long in-flight scrapes may take to finish (keep it below the "
        "pod's terminationGracePeriodSeconds)",
    )
    parser.add_argument("--log-level", type=flags.log_level, default="INFO")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = scrape_settings(args)
    flags.distinct_ports({"--port": args.port, "--telemetry-port": args.telemetry_port})
    options, store_layout = redis_options(args), layout(args)  # bad flags fail before anything starts

    async def main() -> int:
        store = RedisStore.connect(options, store_layout)
        try:
            await store.ensure_layout()
            metrics_app, telemetry_app = build_apps(store, settings)
            runners = await serving.start_sites(
                [(metrics_app, args.host, args.port), (telemetry_app, args.host, args.telemetry_port)],
                grace=args.shutdown_grace,
                flags=["--port", "--telemetry-port"],
                on_reject=metrics_app[METRICS].reject,
            )
            ports = [serving.bound_port(r) for r in runners]
            log.info("aggregator serving /metrics on port %d, telemetry on %d", *ports)
            print(f"READY http://{args.host}:{ports[0]}/metrics telemetry={ports[1]}", flush=True)
            await serving.stop_event().wait()
            log.info("stopping: finishing in-flight scrapes")
            await serving.stop_sites(runners)
        finally:
            await store.close()
        return 0

    return serving.run(main)


def main() -> int:
    parser = flags.Parser(prog="python -m aggregator", description=HELP)
    add_arguments(parser)
    return run_command(run, parser.parse_args(), prog=parser.prog)


if __name__ == "__main__":
    sys.exit(main())
