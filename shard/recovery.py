"""The shard's recovery: heartbeats, and rewrites after a store epoch change, restart or lost writes.

Split out of `shard/worker.py` (issue 15): one long-running loop per module; the
worker keeps `run()`; the shared state is `shard.state.WorkerState` (mixin).
"""

from __future__ import annotations

import asyncio
import logging
import time

from panopticon.errors import StoreError
from panopticon.kube.errors import KubeError
from shard.state import REWRITE_BACKOFF, REWRITE_BACKOFF_MAX, REWRITE_BACKOFF_RESET, WorkerState

log = logging.getLogger("panopticon.shard")


class Recovery(WorkerState):
    """Heartbeat into the store; notice it lost data (epoch, run ids, write counters)
    or dropped the backlog, and rewrite."""

    async def _heartbeat_loop(self) -> None:
        while True:
            self.health.tick()
            try:
                epoch, _ = await self.store.epoch()
                if epoch != self.epoch:
                    await self._republish(epoch)
                else:
                    await self._check_store()
                if self._recovery_due:
                    await self._rewrite_all()  # retried at the next heartbeat if it fails
                elif self._rewrite_due:
                    await self._rewrite()  # publishes the registry first
                elif self._registry_dirty:
                    async with self._lock:
                        await self._publish_registry()
                ring = self.ownership.ring
                await self.store.heartbeat(
                    self.settings.index,
                    {
                        "time": time.time(),
                        "synced": self._serving_all(),
                        "pod": self.settings.pod,
                        "ring": [ring.shards, ring.generation] if ring else None,
                        "buckets": len(self.ownership.owned),
                        "objects": self._objects(),
                        "epoch": self.epoch,
                        "render_errors": self.configs.errors.snapshot(),
                        **self._limit_heartbeat(),
                    },
                )
                await self._exchange_limits()
            except StoreError as e:
                self.metrics.store_errors.inc()
                log.warning("heartbeat failed: %s", e)
            await asyncio.sleep(self.settings.heartbeat_interval)

    def _limit_heartbeat(self) -> dict[str, object]:
        """Capped configs' counts and bucket figures (`shard/limitexchange.py`); nothing
        when no config is capped, so heartbeats stay as they were."""
        counts, figures = self._limit_snapshot()
        return {"series_limits": counts, "series_demand": figures} if counts else {}

    async def _republish(self, epoch: str) -> None:
        """The store's epoch changed: Redis lost its data (restarted empty), or went
        back to a state older than the epoch this shard knew (a snapshot taken before
        an earlier empty restart), which may register families removed since."""
        log.warning("store epoch changed (%s -> %s): Redis lost its data; republishing", self.epoch, epoch)
        self.metrics.epoch_changes.inc()
        # Every slot may have forgotten this shard's writes: known already, not news
        # for the next heartbeat's check.
        await self.store.lost_writes()
        if not await self._rewrite_all():
            return  # the store fails again: the next heartbeat tries again
        # Only now: if anything above failed, the next heartbeat tries again.
        self.epoch = epoch
        self._servers = None  # the restarted server's run id is the new baseline

    def _serving_all(self) -> bool:
        """What the heartbeat reports as `synced`: ready, and not relisting or
        rewriting now (after a store recovery, a config or a ring change), so that
        an aggregator, or an operator, can tell a store that may lack series."""
        return (
            self.health.ready
            and self.reconciled
            and not (self._recovery_due or self._rewrite_due)
            and all(t.synced.is_set() for t in self.targets.values())
        )

    async def _check_store(self) -> None:
        """Note a Redis restart or failover (a run id changed, a server came or went),
        or slots that forgot writes they acknowledged to this shard."""
        servers = await self.store.servers()
        if self._servers is not None and servers != self._servers:
            changed = sorted(a for a, run in servers.items() if self._servers.get(a) != run)
            self.metrics.store_restarts.inc(max(len(changed), 1))
            log.warning(
                "Redis restarted or failed over (new run id at %s): it may have lost acknowledged "
                "writes; rewriting everything this shard owns",
                ", ".join(a or "the server" for a in changed) or "a server that left",
            )
            self._recovery_due = True
        self._servers = servers
        lost = await self.store.lost_writes()
        if lost:
            self.metrics.store_lost_writes.inc(len(lost))
            log.warning(
                "Redis holds fewer of this shard's writes than it acknowledged in %d slots (a crash, "
                "a lagging replica or an older snapshot): rewriting everything this shard owns",
                len(lost),
            )
            self._recovery_due = True

    async def _rewrite_all(self) -> bool:
        """The store may hold less than it acknowledged, or nothing: an older state of
        any key. False if the store failed meanwhile (the caller retries).

        Claims are made again (owners may be older, or gone), the registry is read and
        written again (families removed since that state are retired again, families
        added since are registered again; a lagging shard may write into an emptied
        store before the claims), and every target relists and rewrites every object
        it renders, over what the store holds: nothing is deleted before it is
        rewritten. Once the targets have re-synced, garbage collection removes the
        series of objects deleted since that state (the lost deletes)."""
        async with self._lock:
            await self.store.ensure_layout()
            # The store's ring lineages may be lost or older too: fence the ring again
            # (every shard of it gets the same fence, at least the one it had).
            # A StatefulSet's lineage is confirmed with the API server first (one GET):
            # this shard's watch may lag behind a replacement the store no longer
            # remembers, and the lineage the store holds current may be the replaced one.
            spec = self.ring_spec
            try:
                fenced = await self._fenced_ring(spec, confirm=True) if spec is not None else None
            except KubeError as e:
                log.warning("reading the shards' StatefulSet failed (will retry): %s", e)
                return False
            if fenced is not None:
                spec, ring = fenced
                self.ring_spec = spec
                await self.ownership.adopt(ring)
                self._ring_metrics(spec)
            self._registry_read = False
            self.published = set()
            await self._publish_registry()
            if self._registry_dirty:
                return False
            self.pending_gc = set(self.ownership.owned)
            self._restart_targets()
        self._recovery_due = False  # whatever was due, everything was just rewritten
        self.metrics.store_rewrites.inc()
        return True

    async def _rewrite(self) -> None:
        """The store answers again after writes were dropped: write everything again.

        "Answers" is judged by the epoch read and the registry write; some slots may
        still refuse (a Redis Cluster node down), in which case the relist outgrows the
        backlog again. Rewrites therefore back off (5 s doubling to 5 minutes, reset
        after 10 quiet minutes) instead of relisting every kind at every heartbeat."""
        now = time.monotonic()
        if now < self._rewrite_not_before:
            return
        async with self._lock:
            # Families removed while the store failed are retired first, so that the
            # collection below scans them: their deletes were dropped with the rest.
            await self._publish_registry()
            if self._registry_dirty:
                return  # still failing: the next heartbeat tries again
            if now - self._last_rewrite > REWRITE_BACKOFF_RESET:
                self._rewrite_backoff = REWRITE_BACKOFF
            self._last_rewrite = now
            self._rewrite_not_before = now + self._rewrite_backoff
            self._rewrite_backoff = min(self._rewrite_backoff * 2, REWRITE_BACKOFF_MAX)
            log.warning("the store answers again: relisting and rewriting everything this shard owns")
            self.pending_gc = set(self.ownership.owned)  # deletes that were dropped
            self._restart_targets()
            self.metrics.store_rewrites.inc()

    def _restart_targets(self) -> None:
        """Every target relists and rewrites every object (digests forgotten)."""
        self._rewrite_due = False
        shard_filter = self._filter()
        for target in self.targets.values():
            target.table.invalidate()
            target.start(shard_filter)
