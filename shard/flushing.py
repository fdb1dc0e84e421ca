"""The shard's flushing: batched fenced writes, flushes started under back-pressure, the backlog bound.

Split out of `shard/worker.py` (issue 15): one long-running loop per module; the
worker keeps `run()`; the shared state is `shard.state.WorkerState` (mixin).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from shard.state import WorkerState

log = logging.getLogger("panopticon.shard")


class Flushing(WorkerState):
    """Flush the write queue every `flush_interval`, or sooner when a target's queue
    is full; drop the backlog past its bound."""

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.flush_interval)
            self.health.tick()
            await self.flush()

    @property
    def settled(self) -> bool:
        """Nothing queued and no write in flight (what was rendered is in the store)."""
        return not self.queue and not self._flushing

    async def relieve(self) -> None:
        """A target's queue grew past its bound (a relist delivering events back to
        back): start a flush and go on rendering while Redis applies it, waiting only
        for the flush started last time (so at most two bounds' worth are held).

        Awaiting every flush instead left the renderer idle for each round trip:
        45 waits, 4.5 s of a 14.5 s sync of 100,000 objects."""
        previous = self._background_flush
        if previous is not None and not previous.done():
            # Not gather(): cancelling this target (a config change, shutdown) must not
            # cancel a flush that carries every target's operations.
            await asyncio.wait({previous})
        if self._background_flush is previous:  # another target may have started one meanwhile
            task = asyncio.create_task(logged("flush", self.flush), name="flush")
            self._background_flush = task
            self._flush_tasks.add(task)
            task.add_done_callback(self._flush_tasks.discard)

    async def flush(self) -> None:
        if not self.queue:
            return
        self._flushing += 1
        try:
            await self._flush()
        finally:
            self._flushing -= 1

    async def _flush(self) -> None:
        started = time.perf_counter()
        async with self._flush_lock:
            result = await self.queue.flush(self.ownership.token)
            # Refused operations go back at once, before another flush can send a newer
            # value of the same field: operations queued meanwhile win over them, and
            # none has left the queue since this flush took its batches. Those of
            # buckets found lost are dropped when the filter changes (`_refused`).
            for slot, batch, since in result.refused_batches:
                self.queue.merge(slot, batch, since=since)
        self.metrics.write_seconds.observe(time.perf_counter() - started)
        self.metrics.fields_written.inc(result.written)
        for latency in result.latencies:
            self.metrics.event_to_store.observe(latency)
        if result.burial_failed:
            self.metrics.store_errors.inc()
        if result.failed_slots:
            self.metrics.store_errors.inc(result.failed_slots)
            if self.queue.exceeds(self.settings.max_backlog):
                held = len(self.queue)
                self.queue.clear()
                self._rewrite_due = True
                self.metrics.backlog_drops.inc()
                log.warning(
                    "the store keeps failing and %d field writes are held (--max-backlog %d): "
                    "dropping them; everything is rewritten once the store answers",
                    held,
                    self.settings.max_backlog,
                )
        if result.refused:
            self.metrics.refused.inc(len(result.refused))
            await self._refused(result.refused)


async def logged(name: str, loop: Callable[[], Awaitable[None]]) -> None:
    """Run one loop, logging its death. The loop's coroutine is made here, not by the
    caller: a task cancelled before it first runs (the exporter failing at start-up)
    then leaves no never-awaited coroutine, whose RuntimeWarning would land on stderr
    after the one-line error."""
    try:
        await loop()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("shard task %s died", name)
        raise
