"""`panopticon shard` (also `python -m shard`): one shard worker process.

    panopticon shard --kubeconfig FILE --redis URL --shard-index I --shards N --port P

In a StatefulSet, leave out --shard-index and --shards: the index comes from the pod
name and the count from `--statefulset NAME` (its replicas, watched).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from panopticon import flags, serving
from panopticon.cli import run_command
from panopticon.errors import PanopticonError
from panopticon.kube.client import KubeClient
from panopticon.kube.credentials import load_credentials
from panopticon.kube.discovery import Discovery, ResourceRef
from panopticon.kube.errors import NotFoundError
from panopticon.kube.reflector import Reflector
from panopticon.kube.view import ObjectView
from panopticon.sharding.buckets import ShardFilter
from panopticon.store.contract import Store
from panopticon.store.options import add_store_arguments, layout, redis_options
from panopticon.store.redisstore import RedisStore
from shard.membership import RingLookup, RingSpec, ring_of_statefulset, shard_index
from shard.membership import static_ring as flags_ring
from shard.state import WorkerSettings
from shard.status import StatusWriter
from shard.targets import Source
from shard.telemetry import Health, ShardMetrics, build_app
from shard.worker import Worker

HELP = "run a shard: render the objects its buckets hold and write them to Redis"
log = logging.getLogger("panopticon.shard")

STATEFULSETS = ResourceRef(
    group="apps", version="v1", resource="statefulsets", kind="StatefulSet", namespaced=True
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_kube_arguments(parser)
    add_store_arguments(parser, redis_required=True)
    group = parser.add_argument_group("sharding")
    group.add_argument(
        "--shard-index",
        type=flags.integer(minimum=0),
        help="this shard's index (default: the pod name's ordinal)",
    )
    group.add_argument(
        "--shards",
        type=flags.integer(minimum=1),
        help="shard count (default: the StatefulSet's replicas, watched)",
    )
    group.add_argument(
        "--ring-generation",
        type=flags.integer(minimum=1),
        default=1,
        help="ring generation with --shards; the store fences every new (--shards, --ring-generation) "
        "pair above the rings before it, so it need not be raised",
    )
    group.add_argument("--statefulset", help="the shards' StatefulSet, watched for its replicas")
    group.add_argument(
        "--namespace", default=os.environ.get("POD_NAMESPACE", ""), help="the StatefulSet's namespace"
    )
    add_worker_arguments(parser)


def add_kube_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("kubernetes")
    group.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)"
    )
    group.add_argument("--context", help="kubeconfig context")


def add_worker_arguments(
    parser: argparse.ArgumentParser, *, port_flag: str = "--port", port: int = 8080
) -> None:
    group = parser.add_argument_group("worker")
    group.add_argument("--host", default="0.0.0.0", help="address to listen on")
    group.add_argument(
        port_flag,
        dest="shard_port",
        type=flags.port,
        default=port,
        help="shard /metrics (self-metrics), /healthz, /readyz",
    )
    group.add_argument("--flush-interval", type=flags.seconds, default=0.05, metavar="SECONDS")
    group.add_argument(
        "--max-backlog",
        type=flags.integer(minimum=1),
        default=1_000_000,
        metavar="FIELDS",
        help="field writes held while Redis is unreachable; past this they are dropped "
        "and everything is rewritten once Redis answers again",
    )
    group.add_argument("--heartbeat-interval", type=flags.seconds, default=2.0, metavar="SECONDS")
    group.add_argument("--status-interval", type=flags.seconds, default=30.0, metavar="SECONDS")
    group.add_argument("--no-status", action="store_true", help="never write MetricsConfiguration status")
    group.add_argument(
        "--max-series-per-config",
        type=flags.integer(minimum=0),
        default=0,
        metavar="SERIES",
        help="cap every MetricsConfiguration's series at this many, over all shards (a config's own "
        "spec.limits.series applies when lower); 0: no global cap",
    )
    group.add_argument("--log-level", type=flags.log_level, default="INFO")


def worker_settings(args: argparse.Namespace, index: int, static_ring: RingSpec | None) -> WorkerSettings:
    return WorkerSettings(
        index=index,
        static_ring=static_ring,
        flush_interval=args.flush_interval,
        max_backlog=args.max_backlog,
        heartbeat_interval=args.heartbeat_interval,
        status_interval=args.status_interval,
        max_series_per_config=args.max_series_per_config or None,
        pod=os.environ.get("POD_NAME") or os.environ.get("HOSTNAME", ""),
    )


@asynccontextmanager
async def kube(args: argparse.Namespace) -> AsyncIterator[tuple[KubeClient, Discovery]]:
    credentials = load_credentials(args.kubeconfig, args.context)
    log.info("kubernetes API at %s (%s)", credentials.server, credentials.source)
    async with KubeClient(credentials) as client:
        yield client, Discovery(client)


def statefulset_lookup(client: KubeClient, namespace: str, name: str) -> RingLookup:
    """The shards' StatefulSet read from the API server (`shard.membership.RingLookup`)."""
    path = STATEFULSETS.object_path(name, namespace)

    async def lookup() -> RingSpec | None:
        try:
            return ring_of_statefulset(await client.get(path))
        except NotFoundError:
            return None

    return lookup


async def run_worker(
    args: argparse.Namespace,
    store: Store,
    settings: WorkerSettings,
    *,
    ring: Source | None,
    stop: asyncio.Event | None = None,
    port_flag: str = "--port",
) -> int:
    """Run a worker and its health port until `stop` (default: SIGTERM/SIGINT); shared
    with `panopticon run` (where the port is `--shard-port`, named in errors)."""
    metrics = ShardMetrics()
    health = Health()
    async with kube(args) as (client, discovery):
        metrics.kube.client = client.stats
        lookup: RingLookup | None = None
        if settings.static_ring is None and ring is None:
            if not args.statefulset or not args.namespace:
                raise PanopticonError(
                    "without --shards, give --statefulset and --namespace (or POD_NAMESPACE)"
                )
            lookup = statefulset_lookup(client, args.namespace, args.statefulset)
            ring = Reflector(
                client,
                STATEFULSETS,
                namespace=args.namespace,
                field_selector=f"metadata.name={args.statefulset}",
            )
            metrics.kube.track(f"{STATEFULSETS.api_version}/{STATEFULSETS.kind}", ring.stats)

        def make(resource: ResourceRef, shard_filter: ShardFilter | None, view: ObjectView | None) -> Source:
            reflector = Reflector(client, resource, shard_filter=shard_filter, view=view)
            metrics.kube.track(f"{resource.api_version}/{resource.kind}", reflector.stats)
            return reflector

        def selected(
            resource: ResourceRef, shard_filter: ShardFilter | None, view: ObjectView | None, selector: str
        ) -> Source:
            reflector = Reflector(
                client, resource, shard_filter=shard_filter, view=view, label_selector=selector
            )
            metrics.kube.track(f"{resource.api_version}/{resource.kind}", reflector.stats)
            return reflector

        def scoped(resource: ResourceRef, namespace: str, field_selector: str) -> Reflector:
            # One LIST of a scope whose related objects changed (shard.joined): untracked.
            return Reflector(client, resource, namespace=namespace, field_selector=field_selector)

        worker = Worker(
            settings,
            store=store,
            discovery=discovery,
            make_source=make,
            make_scoped=scoped,
            make_selected=selected,
            status=None if args.no_status else StatusWriter(client),
            metrics=metrics,
            health=health,
            ring_source=ring,
            ring_lookup=lookup,
        )
        runners = await serving.start_sites(
            [(build_app(metrics, health), args.host, args.shard_port)],
            flags=[port_flag],
            on_reject=metrics.reject,
        )
        args.bound_shard_port = serving.bound_port(runners[0])
        log.info("shard %d: health and self-metrics on port %d", settings.index, args.bound_shard_port)
        try:
            await worker.run(stop if stop is not None else serving.stop_event())
        finally:
            await serving.stop_sites(runners)
    return 0


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    serving.tune_gc()
    index = shard_index(args.shard_index)
    static_ring = flags_ring(args.shards, args.ring_generation) if args.shards else None
    if static_ring is not None and index >= static_ring.shards:
        log.warning("shard index %d >= --shards %d: this shard will own nothing", index, static_ring.shards)
    options, store_layout = redis_options(args), layout(args)  # bad flags fail before anything starts

    async def main() -> int:
        store = RedisStore.connect(options, store_layout)
        try:
            return await run_worker(args, store, worker_settings(args, index, static_ring), ring=None)
        finally:
            await store.close()

    return serving.run(main)


def main() -> int:
    parser = flags.Parser(prog="python -m shard", description=HELP)
    add_arguments(parser)
    return run_command(run, parser.parse_args(), prog=parser.prog)


if __name__ == "__main__":
    sys.exit(main())
