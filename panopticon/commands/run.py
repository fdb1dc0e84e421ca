"""`panopticon run`: the embedded mode, one process holding a shard and the aggregator.

The shard owns every bucket and writes to an in-process store that the aggregator
serves: the same code paths as a sharded deployment, for one machine or a small
cluster. With `--redis URL` both use that Redis instead (then more shards and
aggregators may join it).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Awaitable

from panopticon import components, flags, serving
from panopticon.store.contract import Store
from panopticon.store.memory import MemoryStore
from panopticon.store.options import add_store_arguments, layout, redis_options
from panopticon.store.redisstore import RedisStore

HELP = "run a shard and the aggregator in one process (in-memory store, or --redis)"
log = logging.getLogger("panopticon.run")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_store_arguments(parser, redis_required=False)
    components.load("shard").add_arguments(parser)
    components.load("aggregator").add_arguments(parser)


def check_arguments(args: argparse.Namespace) -> None:
    """What argparse cannot check flag by flag; raises `UsageError`."""
    flags.distinct_ports(
        {
            "--port": args.metrics_port,
            "--telemetry-port": args.telemetry_port,
            "--shard-port": args.shard_port,
        }
    )
    layout(args)
    redis_options(args)


def make_store(args: argparse.Namespace) -> Store:
    if args.redis:
        return RedisStore.connect(redis_options(args), layout(args))
    return MemoryStore(layout(args))


async def run_embedded(args: argparse.Namespace, stop: asyncio.Event, store: Store | None = None) -> None:
    """Both components on `store` until `stop` is set (or one of them fails)."""
    store = store or make_store(args)
    try:
        await store.ensure_layout()
        async with asyncio.TaskGroup() as tasks:
            for name in ("aggregator", "shard"):
                tasks.create_task(
                    _until_stopped(components.load(name).run(args, store, stop), stop), name=name
                )
    finally:
        await store.close()


async def _until_stopped(run: Awaitable[None], stop: asyncio.Event) -> None:
    try:
        await run
    finally:
        stop.set()  # one component ending ends the other


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    serving.tune_gc()
    check_arguments(args)

    async def main() -> int:
        await run_embedded(args, serving.stop_event())
        return 0

    return serving.run(main)
