"""A shard stops promptly even when a loop loses its cancellation.

On Python 3.11, `asyncio.wait_for` returns the inner call's result when the outer
task is cancelled in the turn that call finishes (CPython gh-86296), and redis-py sends
every command under `wait_for(socket_timeout)`: a shard sent SIGTERM while a loop was
in a Redis call kept that loop running, and its TaskGroup waited for it until SIGKILL
(20 s in the multi-process tests' teardowns, the pod's grace period in a cluster),
skipping the final flush (measured: 286 of 300 GET loops cancelled at random moments
ran on, redis-py 8.2 on CPython 3.11.7). Here a real Worker is stopped while its
heartbeat loses the cancellation the way redis-py does."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from panopticon.store.memory import MemoryStore
from shard.membership import static_ring
from shard.state import WorkerSettings
from shard.telemetry import Health, ShardMetrics
from shard.worker import Worker
from tests.support import aio

from .test_backlog import Cluster, Discovery
from .test_worker import LAYOUT


class LosesOneCancellation(MemoryStore):
    """Once `armed`, the next heartbeat waits until it is cancelled and swallows that
    cancellation, as redis-py's `wait_for` does on Python 3.11; `inside` is set while
    it waits. Every other heartbeat is the in-memory store's."""

    def __init__(self) -> None:
        super().__init__(LAYOUT)
        self.armed = False
        self.inside = asyncio.Event()
        self.lost = 0

    async def heartbeat(self, *args: Any, **kwargs: Any) -> None:
        if self.armed:
            self.armed = False
            self.inside.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.lost += 1
        await super().heartbeat(*args, **kwargs)


def test_a_worker_whose_loop_loses_its_cancellation_still_stops_within_a_second() -> None:
    async def body() -> tuple[float, int]:
        store = LosesOneCancellation()
        worker = Worker(
            WorkerSettings(index=0, static_ring=static_ring(1, 1), heartbeat_interval=0.01),
            store=store,
            discovery=Discovery(),  # type: ignore[arg-type]
            make_source=Cluster([]).make_source,  # every source synced at once, then quiet
            status=None,
            metrics=ShardMetrics(),
            health=Health(),
        )
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))
        deadline = time.monotonic() + 30
        while not worker.health.ready:
            assert time.monotonic() < deadline, "the worker never became ready"
            await asyncio.sleep(0.01)
        store.armed = True
        await store.inside.wait()
        started = time.monotonic()
        stop.set()
        done, _ = await asyncio.wait({running}, timeout=5)
        if not done:
            # Hung. Awaiting it would hang the test too (its TaskGroup cancels each loop
            # once); the runner's shutdown cancels the loops again, which ends them.
            return float("inf"), store.lost
        running.result()
        return time.monotonic() - started, store.lost

    seconds, lost = aio.run(body())
    assert lost == 1
    assert seconds < 1.5, f"the worker took {seconds} s to stop"
