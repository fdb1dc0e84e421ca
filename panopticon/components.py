"""Components that `panopticon run` composes into one process: shard and aggregator.

The core never imports the services (the layering rule), so they register
themselves under the `panopticon.components` entry-point group and are loaded by
name. A component module provides:

    add_arguments(parser)                       its flags (no store flags: `run` owns the store)
    async run(args, store, stop: asyncio.Event)  serve until `stop` is set
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
from importlib.metadata import entry_points
from typing import Protocol

from panopticon.errors import PanopticonError
from panopticon.store.contract import Store


class Component(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    async def run(self, args: argparse.Namespace, store: Store, stop: asyncio.Event) -> None: ...


def load(name: str) -> Component:
    for ep in entry_points(group="panopticon.components"):
        if ep.name == name:
            module: Component = importlib.import_module(ep.value)
            return module
    raise PanopticonError(f"component {name!r} is not installed (is the package installed with pip?)")
