"""The shard as a component of `panopticon run` (one shard owning every bucket)."""

from __future__ import annotations

import argparse
import asyncio

from panopticon.store.contract import Store
from shard.command import add_kube_arguments, add_worker_arguments, run_worker, worker_settings
from shard.membership import static_ring


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_kube_arguments(parser)
    add_worker_arguments(parser, port_flag="--shard-port", port=8082)


async def run(args: argparse.Namespace, store: Store, stop: asyncio.Event) -> None:
    settings = worker_settings(args, 0, static_ring(1, 1))
    await run_worker(args, store, settings, ring=None, stop=stop, port_flag="--shard-port")
