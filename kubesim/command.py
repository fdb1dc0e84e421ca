"""`panopticon sim`: run the Kubernetes API server simulator as a process.

Prints one machine-readable line, `READY <url>`, on standard output once it
listens (and writes `--ready-file` then), so parent processes can wait for it;
SIGTERM and SIGINT stop it cleanly. Every knob is also reachable at run time
through the admin API (`/_sim/...`, see `kubesim.admin`).
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import uvloop

from kubesim.config import DEFAULT_TOKEN, DEFAULT_USER, SUPPORTED_VERSIONS, AccessRule, SimConfig
from kubesim.natives import WorkloadSpec, native_objects
from kubesim.runtime import SimServer
from kubesim.simulator import Simulator
from kubesim.workload import example_configs, example_objects, mongodb_objects
from panopticon import flags

HELP = "Run the Kubernetes API server simulator (for tests, the demo and benchmarks)."
PLAIN_HTTP_KUBECONFIG = (
    "panopticon sim: the kubeconfig points at plain HTTP: kubectl (client-go) sends the bearer "
    "token only over TLS and will answer 'You must be logged in to the server'; add --https "
    "for kubectl (the Python clients and panopticon send it either way)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    net = parser.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    net.add_argument("--port", type=flags.port, default=0, help="port; 0 picks a free one (default 0)")
    net.add_argument(
        "--https",
        action="store_true",
        help="serve HTTPS with a throwaway CA (needs openssl); kubectl needs it to send the token",
    )
    net.add_argument("--kubeconfig-out", metavar="FILE", help="write a kubeconfig (server, token, CA) here")
    net.add_argument("--ready-file", metavar="FILE", help="write the URL here once listening")
    auth = parser.add_argument_group("auth")
    auth.add_argument("--token", default=DEFAULT_TOKEN, help="bearer token of the admin user (system:admin)")
    auth.add_argument("--admin-token", help="bearer token of the admin API (default: --token)")
    auth.add_argument("--admin-prefix", default="/_sim", help="path prefix of the admin API (default /_sim)")
    auth.add_argument("--no-admin", action="store_true", help="do not serve the admin API")
    auth.add_argument("--anonymous", action="store_true", help="serve requests without credentials")
    load = parser.add_argument_group("workload")
    load.add_argument(
        "--seed", type=flags.integer(), default=0, help="seed of uids, revisions and workloads (default 0)"
    )
    load.add_argument(
        "--scale",
        type=flags.integer(minimum=0),
        default=1,
        help="copies of each example object (default 1; 0: none)",
    )
    load.add_argument("--with-configs", action="store_true", help="load the example MetricsConfigurations")
    load.add_argument(
        "--namespaces",
        type=flags.integer(minimum=0),
        default=2,
        help="native workload: namespaces (default 2)",
    )
    load.add_argument(
        "--deployments",
        type=flags.integer(minimum=0),
        default=3,
        help="deployments per namespace (default 3)",
    )
    load.add_argument(
        "--pods-per-deployment",
        type=flags.integer(minimum=0),
        default=2,
        help="pods per deployment (default 2)",
    )
    load.add_argument(
        "--services", type=flags.integer(minimum=0), default=2, help="services per namespace (default 2)"
    )
    load.add_argument(
        "--configmaps", type=flags.integer(minimum=0), default=2, help="configmaps per namespace (default 2)"
    )
    load.add_argument(
        "--secrets", type=flags.integer(minimum=0), default=2, help="secrets per namespace (default 2)"
    )
    load.add_argument(
        "--mongodbs",
        type=flags.integer(minimum=0),
        default=1,
        help="MongoDB objects per namespace (default 1)",
    )
    load.add_argument("--nodes", type=flags.integer(minimum=0), default=3, help="nodes (default 3)")
    load.add_argument(
        "--bench-mongodbs",
        type=flags.integer(minimum=0),
        default=0,
        metavar="N",
        help="N more MongoDB-like objects in namespace bench-0..9 (benchmarks)",
    )
    load.add_argument(
        "--churn",
        type=flags.non_negative,
        default=0.0,
        metavar="EVENTS_PER_S",
        help="mutation rate (default 0)",
    )
    load.add_argument("--churn-resources", default="", help="comma-separated plurals to churn (default: all)")
    api = parser.add_argument_group("API behaviour (kubesim/README.md, API behaviour)")
    api.add_argument(
        "--k8s-version",
        default="1.36",
        choices=SUPPORTED_VERSIONS,
        help="gates of this release (default 1.36)",
    )
    api.add_argument("--sharding", action="store_true", help="enable ShardedListAndWatch (shardSelector)")
    api.add_argument(
        "--no-watch-list", action="store_true", help="WatchList gate off: sendInitialEvents is 422"
    )
    api.add_argument(
        "--watch-list-unsupported", action="store_true", help="watch-list streams start with an ERROR"
    )
    api.add_argument("--watch-list-compression", action="store_true", help="gzip watch-list streams (1.37)")
    api.add_argument("--no-gzip", action="store_true", help="never gzip responses")
    api.add_argument(
        "--bookmark-interval", type=flags.seconds, default=60.0, help="seconds between bookmarks (default 60)"
    )
    api.add_argument("--no-bookmarks", action="store_true", help="never send bookmarks")
    api.add_argument(
        "--compaction-window",
        type=flags.non_negative,
        default=300.0,
        help="seconds of history kept; 0: never compact",
    )
    api.add_argument("--rv0-honours-limit", action="store_true", help="RV=0 lists honour limit (etcd mode)")
    api.add_argument(
        "--short-pages", action="store_true", help="read only `limit` keys per page (short pages)"
    )
    api.add_argument(
        "--time-scale",
        type=flags.seconds,
        default=1.0,
        help="simulated seconds per second for watch timeouts and bookmarks",
    )
    api.add_argument(
        "--startup-delay",
        type=flags.non_negative,
        default=0.0,
        help="answer 503 for this many seconds after start",
    )
    api.add_argument(
        "--request-log-size",
        type=flags.integer(minimum=0),
        default=10_000,
        help="requests kept for /_sim/requests",
    )


def config_from_args(args: argparse.Namespace) -> SimConfig:
    overrides: dict[str, object] = {
        "seed": args.seed,
        "sharding": args.sharding,
        "gzip": not args.no_gzip,
        "bookmark_interval": None if args.no_bookmarks else args.bookmark_interval,
        "compaction_window": args.compaction_window or None,
        "rv0_honours_limit": args.rv0_honours_limit,
        "fill_pages": not args.short_pages,
        "startup_unavailable_seconds": args.startup_delay,
        "time_scale": args.time_scale,
        "request_log_size": args.request_log_size,
        "tokens": ((args.token, DEFAULT_USER),),
        "rules": (AccessRule(user=DEFAULT_USER),),
        "admin_token": args.admin_token,
        "admin_prefix": args.admin_prefix,
        "admin_enabled": not args.no_admin,
        "anonymous": args.anonymous,
    }
    if args.no_watch_list:
        overrides["watch_list"] = False
    if args.watch_list_unsupported:
        overrides["watch_list_progress_notify"] = False
    if args.watch_list_compression:
        overrides["watch_list_compression"] = True
    return SimConfig.for_version(args.k8s_version, **overrides)


def populate(sim: Simulator, args: argparse.Namespace) -> dict[str, int]:
    """Load the requested workload; returns counts per source."""
    counts = {"examples": sim.load(example_objects(args.scale, seed=args.seed))}
    spec = WorkloadSpec(
        namespaces=args.namespaces,
        deployments=args.deployments,
        pods_per_deployment=args.pods_per_deployment,
        services=args.services,
        configmaps=args.configmaps,
        secrets=args.secrets,
        mongodbs=args.mongodbs,
        nodes=args.nodes,
        seed=args.seed,
    )
    counts["native"] = sim.load(native_objects(spec))
    if args.with_configs:
        counts["configs"] = sim.load(example_configs())
    if args.bench_mongodbs:
        namespaces = tuple(f"bench-{i}" for i in range(10))
        counts["mongodbs"] = sim.load(
            mongodb_objects(args.bench_mongodbs, seed=args.seed, namespaces=namespaces)
        )
    return counts


async def serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="panopticon sim: %(levelname)s %(name)s: %(message)s")
    sim = Simulator(config_from_args(args))
    counts = populate(sim, args)
    server = SimServer(sim, host=args.host, port=args.port, https=args.https)
    try:
        await server.start()
    except OSError as e:
        await server.stop()
        raise flags.listen_error("--port", args.host, args.port, e) from e
    try:
        if args.kubeconfig_out:
            _write("--kubeconfig-out", args.kubeconfig_out, server.write_kubeconfig)
            if not args.https:
                print(PLAIN_HTTP_KUBECONFIG, file=sys.stderr, flush=True)
        if args.churn > 0:
            resources = tuple(r for r in args.churn_resources.split(",") if r)
            sim.start_churn(args.churn, seed=args.seed, resources=resources)
        loaded = ", ".join(f"{k}={v}" for k, v in counts.items())
        print(
            f"panopticon sim: {server.url} revision {sim.revision}; loaded {loaded}",
            file=sys.stderr,
            flush=True,
        )
        if args.ready_file:
            await asyncio.to_thread(
                _write, "--ready-file", args.ready_file, lambda path: Path(path).write_text(server.url + "\n")
            )
        print(f"READY {server.url}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await server.stop()
    return 0


def _write(flag: str, path: str, write: Callable[[str], object]) -> None:
    try:
        write(path)
    except OSError as e:
        raise flags.UsageError(f"{flag} {path}: {e.strerror or e}") from e


def run(args: argparse.Namespace) -> int:
    faulthandler.enable()  # a crash in C code still leaves a traceback on stderr
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(serve(args))
