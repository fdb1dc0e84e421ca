"""Running aiohttp apps: uvloop, ports, graceful shutdown on SIGTERM/SIGINT.

`serve(apps, until)` starts each app on its (host, port), waits for `until` (an
awaitable that ends on a signal or on failure), then stops accepting connections and
gives in-flight requests `grace` seconds (`start_sites`) to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any

import uvloop
from aiohttp import web

from panopticon.flags import listen_error
from panopticon.httpguard import Guard, GuardedSite, GuardSettings, Reject

GC_THRESHOLDS = (10_000, 10, 10)
"""The cyclic collector's thresholds for shards and `panopticon run` (CPython: 700, 10, 10).

A (re)list decodes every object into thousands of short-lived dicts while the shard's
long-lived state grows: at the default, CPython ran 76 full collections during a shard's
sync of 100,000 objects, 4.1 s of its 19 s. At 10,000 it ran 4 (0.16 s), and the sync
took 14 s (benchmarks/shard_bench.py). The state kept holds few reference cycles, so
collecting young objects less often costs little memory."""


def tune_gc() -> None:
    """Collect less often, and never traverse what start-up allocated (modules,
    classes, compiled code: frozen into the permanent generation). PANOPTICON_GC=default
    leaves CPython's collector as it is."""
    if os.environ.get("PANOPTICON_GC") == "default":
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run `main` on uvloop: `asyncio.Runner(loop_factory=uvloop.new_event_loop)`, the way
    uvloop documents for Python 3.11+ (uvloop.run is the same on 3.12+)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


def stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT."""
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, event.set)
    return event


async def start_sites(
    apps: Sequence[tuple[web.Application, str, int]],
    *,
    grace: float = 10.0,
    flags: Sequence[str] = (),
    on_reject: Reject | None = None,
    guard: GuardSettings | None = None,
) -> list[web.AppRunner]:
    """Start every app; return their runners (ports 0 pick a free port). On stop,
    requests still running get `grace` seconds before their connections are closed.

    Each port's clients are held to `guard`'s limits (`panopticon.httpguard`); what
    they get refused for is passed to `on_reject` (the process's self-metrics).

    A port that cannot be bound (in use, a bad `--host`) raises `UsageError` naming
    the app's flag from `flags` (same order as `apps`), after stopping the apps
    already started."""
    runners: list[web.AppRunner] = []
    for i, (app, host, port) in enumerate(apps):
        limits = Guard(guard or GuardSettings(), on_reject or _uncounted)
        limits.install(app)
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=grace, **limits.runner_options()
        )
        await runner.setup()
        runners.append(runner)
        try:
            await GuardedSite(runner, host, port, limits).start()
        except OSError as e:
            await stop_sites(runners)
            raise listen_error(flags[i] if i < len(flags) else "port", host, port, e) from e
    return runners


def _uncounted(reason: str) -> None:
    return None


def bound_port(runner: web.AppRunner) -> int:
    """The port a runner's first site listens on."""
    for site in runner.sites:
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            port: int = server.sockets[0].getsockname()[1]
            return port
    raise RuntimeError("runner has no listening site")


async def stop_sites(runners: Sequence[web.AppRunner]) -> None:
    for runner in runners:
        await runner.cleanup()


RECANCEL_EVERY = 0.5
"""Seconds between the cancellations `keep_cancelling` repeats."""


def keep_cancelling(tasks: Iterable[asyncio.Task[Any]], every: float = RECANCEL_EVERY) -> None:
    """Cancel `tasks` again every `every` seconds until each has finished.

    A task is cancelled once (a TaskGroup ending, a shutdown) and a lost cancellation
    leaves it running, so whatever waits for it (the TaskGroup, the process's exit)
    waits forever. On Python 3.11 one is lost whenever it lands while
    `asyncio.wait_for` waits for an inner call that finishes in the same turn: wait_for
    then returns the inner result (CPython gh-86296, fixed in 3.12). redis-py sends
    every command under `wait_for(socket_timeout)`, so a shard stopped while its loops
    talk to Redis kept running about a third of the time, until SIGKILL, without its
    final flush. The first repeat comes `every` seconds after the caller's own
    cancellation, so a task's cleanup (its `finally`) gets that long undisturbed."""
    watched = list(tasks)
    loop = asyncio.get_running_loop()

    def again() -> None:
        running = [task for task in watched if not task.done()]
        for task in running:
            task.cancel()
        if running:
            loop.call_later(every, again)

    loop.call_later(every, again)


async def wait_first(*waits: Awaitable[Any]) -> None:
    """Return when the first of `waits` finishes (and cancel the rest)."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
