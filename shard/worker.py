"""The shard: configs, ownership, targets, writes, heartbeats, status — wired together.

Long-lived tasks run in one TaskGroup (each named; a crash of one is logged and
ends the worker, which the process supervisor restarts):

- configs: watch MetricsConfigurations, compile, resolve families, publish the
  registry, start/stop/re-render targets;
- crds: watch CustomResourceDefinitions, refresh discovery and schemas, so kinds
  installed after start-up are picked up without a restart;
- discovery: kinds whose discovery failed, retried with backoff (`shard/resolution.py`);
- membership: the ring (flags, or the shard StatefulSet watched);
- flush: batched fenced writes every `flush_interval`;
- heartbeat: liveness in the store, and the store checks that rewrite everything
  when Redis restarted empty (epoch), restarted or failed over (run ids), or forgot
  writes it had acknowledged (write counters: a crash, a lagging replica, an older
  snapshot);
- status: conditions on the configs this shard is responsible for;
- retired: families no config defines any more, swept out of this shard's buckets
  and, once no slot holds any of their fields, out of the store's retired set.

This module keeps `run()` and the status loop; each other loop lives in its own
module (issue 15), as a mixin of `Worker` on the shared state (`shard/state.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable

from panopticon import serving
from panopticon.errors import StoreError
from panopticon.render.isolation import ErrorTally, merge_tallies
from panopticon.render.limits import LimitCount
from shard.collection import Collection
from shard.flushing import Flushing, logged
from shard.joined import JoinedRender
from shard.limitexchange import LimitExchange
from shard.ownershiploops import OwnershipLoops
from shard.reconcile import ConfigReconcile
from shard.recovery import Recovery

log = logging.getLogger("panopticon.shard")


class Worker(ConfigReconcile, OwnershipLoops, Flushing, Collection, Recovery, LimitExchange, JoinedRender):
    """`run()` and the status loop; the shared state is `shard.state.WorkerState`,
    and each other long-running loop lives in its own module, as a mixin:
    `shard/reconcile.py`, `shard/ownershiploops.py`, `shard/flushing.py`,
    `shard/collection.py`, `shard/recovery.py`, `shard/joined.py`."""

    # --- lifecycle -----------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        await self.store.ensure_layout()
        self.epoch, self.store_was_empty = await self.store.epoch()
        try:
            async with asyncio.TaskGroup() as tasks:
                loops = [tasks.create_task(logged(name, loop), name=name) for name, loop in self._loops()]
                try:
                    await stop.wait()
                finally:
                    # The TaskGroup cancels every loop once, on a stop or when one
                    # crashes; a cancellation lost in a Redis call would hold it forever.
                    serving.keep_cancelling(loops)
                raise _Stop
        except* _Stop:
            pass
        finally:
            self.related.stop()
            for target in self.targets.values():
                await target.wait_stopped()
            if self._flush_tasks:
                await asyncio.wait(set(self._flush_tasks))
            with contextlib.suppress(StoreError):
                async with self._flush_lock:
                    await self.queue.flush(self.ownership.token)
                await self.store.forget_shard(self.settings.index)

    def _loops(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        return [
            ("configs", self._configs_loop),
            ("crds", self._crds_loop),
            ("discovery", functools.partial(self.kinds.retry, self.reconcile)),
            ("membership", self._membership_loop),
            ("flush", self._flush_loop),
            ("heartbeat", self._heartbeat_loop),
            ("ownership", self._ownership_loop),
            ("sync", self._sync_loop),
            ("status", self._status_loop),
            ("retired", self._retired_loop),
            ("related", self.related.run),
        ]

    async def _status_loop(self) -> None:
        if self.status is None:
            await asyncio.Event().wait()
        assert self.status is not None
        await self.configs_synced.wait()
        await self.ring_ready.wait()
        while True:
            # A config change is reflected as soon as it is reconciled (its target
            # resolved or found missing); the interval only bounds how stale a status
            # can get otherwise (ownership moves, API errors).
            try:
                async with asyncio.timeout(self.settings.status_interval):
                    await self._status_due.wait()
            except TimeoutError:
                if self.kinds.not_served:
                    # Kinds not served at the last reconcile may be served now (a CRD
                    # established after its event): discovery refreshes on a miss, at
                    # most every 30 s.
                    await self.reconcile()
            self._status_due.clear()
            ring = self.ownership.ring
            if ring is not None and self.reconciled:
                tallies, limited = await self._shard_reports()
                for state in list(self.configs.configs.values()):
                    if state.uid and ring.owner_of_uid(state.uid) == self.settings.index:
                        target = state.compiled.spec.target if state.compiled.spec else None
                        found = target is None or target not in self.kinds.not_served
                        failed = self.kinds.failed.get(target, "") if target is not None else ""
                        status = state.status(
                            target_found=found,
                            discovery_error=failed,
                            errors=tallies.get(state.name),
                            limited=limited.get(state.name),
                        )
                        await self.status.write(state.name, status)

    async def _shard_reports(self) -> tuple[dict[str, ErrorTally], dict[str, LimitCount]]:
        """Every shard's render errors and series cap counts by config (from their
        heartbeats; this shard's own, current, in place of its heartbeat's)."""
        try:
            shards = await self.store.shards()
        except StoreError:
            shards = {}
        limited = self._limit_counts(shards)
        shards[self.settings.index] = {"render_errors": self.configs.errors.snapshot()}
        return merge_tallies(info.get("render_errors") for info in shards.values()), limited


class _Stop(Exception):
    pass
