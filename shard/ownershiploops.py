"""The shard's ownership loops: rings adopted (membership), buckets refused or taken let go.

Split out of `shard/worker.py` (issue 15): one long-running loop per module; the
worker keeps `run()`; the shared state is `shard.state.WorkerState` (mixin).
"""

from __future__ import annotations

import asyncio
import logging

from panopticon.errors import PanopticonError, StoreError
from panopticon.kube.errors import KubeError
from panopticon.sharding.fencing import SUPERSEDED, first_floor, highest_fence
from panopticon.sharding.ring import Ring
from shard.membership import RingSpec, watch_ring
from shard.state import WorkerState

log = logging.getLogger("panopticon.shard")

CONFIRMATIONS = 5
"""Times a shard confirms its StatefulSet with the API server while other shards change
the store's current lineage meanwhile (each a few round trips), before it backs off."""


class OwnershipLoops(WorkerState):
    """Adopt rings (fenced), follow the store's bucket owners, let go of buckets another shard holds."""

    async def _membership_loop(self) -> None:
        if self.settings.static_ring is not None:
            await self.adopt(self.settings.static_ring)
            await asyncio.Event().wait()
        if self.ring_source is None:
            raise PanopticonError("no --shards and no StatefulSet to learn the shard count from")
        await watch_ring(self.ring_source.events(), self.adopt)

    async def adopt(self, spec: RingSpec) -> None:
        """Switch to a new ring; claims are retried while the store is unreachable."""
        delay = 0.5
        while True:
            try:
                await self._adopt(spec)
                return
            except (StoreError, KubeError) as e:
                if isinstance(e, StoreError):
                    self.metrics.store_errors.inc()
                log.warning("adopting ring %s failed (retrying in %.1fs): %s", spec, delay, e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _fenced_ring(self, spec: RingSpec, *, confirm: bool = False) -> tuple[RingSpec, Ring] | None:
        """`spec` as a ring whose generation is the store's fence for it
        (`panopticon.sharding.fencing`), and the spec it is of: when the StatefulSet's
        lineage is not the store's current one (or `confirm`: the store was rolled
        back, and its current lineage may be a replaced one), the StatefulSet as the
        API server has it now (the watch may lag). None when the StatefulSet is gone
        and its lineage is not the current one.

        Raises StoreError, or KubeError (the StatefulSet could not be read)."""
        own = self.ownership.ring.generation if self.ownership.ring is not None else 0
        floor = first_floor(highest_fence((await self.store.owners()).values()), own)
        space = self.store.layout.space
        if spec.static:
            fence = await self.store.ring_fence(spec.lineage, spec.generation, floor=floor, renew=True)
            return spec, Ring(spec.shards, fence, space)
        if not confirm:
            fence = await self.store.ring_fence(
                spec.lineage, spec.generation, floor=floor, renew=False, held=self._held(spec)
            )
            if fence != SUPERSEDED:
                return spec, Ring(spec.shards, fence, space)
        # Not the current lineage: a new StatefulSet, a replaced one that a lagging
        # watch delivered, or a store rolled back. The API server says which.
        for _ in range(CONFIRMATIONS):
            expect = await self.store.ring_lineage()
            live = await self.ring_lookup() if self.ring_lookup is not None else None
            if live is None:
                # Gone (deleted, perhaps to be created again): no lineage is confirmed;
                # the current one keeps its fence (a recovery claims its buckets again).
                fence = await self.store.ring_fence(
                    spec.lineage, spec.generation, floor=floor, renew=False, held=self._held(spec)
                )
                if fence != SUPERSEDED:
                    return spec, Ring(spec.shards, fence, space)
                log.warning("ring %s: the StatefulSet is gone, or unusable: not adopted", spec)
                return None
            if live.lineage != spec.lineage:
                log.warning("ring %s: its StatefulSet was replaced (lagging watch?): adopting %s", spec, live)
                spec = live
            elif live.generation > spec.generation:
                spec = live
            fence = await self.store.ring_fence(
                spec.lineage,
                spec.generation,
                floor=floor,
                renew=False,
                expect=expect or "",
                held=self._held(spec),
            )
            if fence != SUPERSEDED:
                return spec, Ring(spec.shards, fence, space)
            # Another shard changed the current lineage meanwhile: read and confirm again.
        raise StoreError(f"ring {spec}: the store's current ring lineage changed {CONFIRMATIONS} times")

    def _held(self, spec: RingSpec) -> int:
        """The fence this shard holds for `spec`'s lineage and generation (0: none): a
        store rolled back may have re-based the lineage lower, through a shard that
        confirmed it for a lagging watch and never held it (`panopticon.sharding.fencing`)."""
        ring, adopted = self.ownership.ring, self.ring_spec
        if ring is None or adopted is None:
            return 0
        same = adopted.lineage == spec.lineage and adopted.generation == spec.generation
        return ring.generation if same else 0

    def _ring_metrics(self, spec: RingSpec) -> None:
        ring = self.ownership.ring
        self.metrics.ring_shards.set(spec.shards)
        self.metrics.ring_generation.set(spec.generation)
        self.metrics.ring_fence.set(ring.generation if ring is not None else 0)
        self.metrics.ring_buckets.set(len(self.ownership.assigned))
        self.metrics.owned_buckets.set(len(self.ownership.owned))

    async def _adopt(self, spec: RingSpec) -> None:
        adopted = self.ring_spec
        if adopted is not None and spec.lineage == adopted.lineage and spec.generation < adopted.generation:
            return  # older than the generation the API server gave (`_fenced_ring`)
        fenced = await self._fenced_ring(spec)
        if fenced is None:
            return
        spec, ring = fenced
        async with self._lock:
            adopted = self.ring_spec
            if (
                adopted is not None
                and spec.lineage == adopted.lineage
                and spec.generation < adopted.generation
            ):
                return  # a newer one was adopted meanwhile (the watch, or `_follow_lineage`)
            first = self.ownership.ring is None
            gained, lost = await self.ownership.adopt(ring)
            self.ring_spec = spec
            self.metrics.ring_changes.inc()
            self._ring_metrics(spec)
            if self.ownership.refused:
                log.warning(
                    "%d buckets are owned at a newer ring fence: not mine yet",
                    len(self.ownership.refused),
                )
            owned = len(self.ownership.owned)
            log.info(
                "ring: %d shards (generation %d of %s, fence %d); shard %d owns %d buckets (+%d -%d)",
                *(ring.shards, spec.generation, spec.lineage, ring.generation),
                *(self.settings.index, owned, len(gained), len(lost)),
            )
            if not (first and self.store_was_empty):
                # An empty store holds nothing stale: no collection after the first sync.
                self.pending_gc |= gained
            # Nothing kept of a bucket before it is synced here (a bucket lost and won
            # back may keep partials of objects deleted meanwhile).
            self.queue.partials.forget(gained)
            self.pending_gc -= lost
            if not first:
                shard_filter = self._filter()
                for target in self.targets.values():
                    target.set_filter(shard_filter, lost)
        self.ring_ready.set()
        if self.configs_synced.is_set():
            await self.reconcile()

    async def _refused(self, buckets: set[int]) -> None:
        """Writes to `buckets` were refused (and queued again): keep what a fresh claim
        gets back, drop the rest."""
        async with self._lock:
            try:
                _, lost = await self.ownership.reclaim(buckets)
            except StoreError as e:
                self.metrics.store_errors.inc()
                log.warning("reclaiming %d refused buckets failed (will retry): %s", len(buckets), e)
                return  # still queued: the next flush is refused again and retries
            if not lost:
                return
            log.warning("the store refused writes to %d buckets: another shard owns them now", len(lost))
            self.metrics.owned_buckets.set(len(self.ownership.owned))
            # Here, not only through the targets' filters: a shard with no target left
            # (its last config deleted) would otherwise send them again forever.
            self.queue.discard(frozenset(lost))
            shard_filter = self._filter()
            for target in self.targets.values():
                target.set_filter(shard_filter, frozenset(lost))

    async def _ownership_loop(self) -> None:
        await self.ring_ready.wait()
        while True:
            await asyncio.sleep(self.settings.ownership_interval)
            await self._check_ownership()

    async def _check_ownership(self) -> None:
        """Let go of buckets another shard holds now; follow a replaced StatefulSet
        that this shard's watch has not delivered yet."""
        try:
            owners = await self.store.owners()
        except StoreError as e:
            self.metrics.store_errors.inc()
            log.warning("reading the bucket owners failed (will retry): %s", e)
            return
        token = self.ownership.token
        taken = {b for b in self.ownership.owned if owners.get(b) != token}
        if taken:
            await self._refused(taken)  # reclaimed if merely forgotten, else let go
        await self._follow_lineage()

    async def _follow_lineage(self) -> None:
        """The store's current lineage is not this shard's StatefulSet's: another shard
        confirmed a replacement that this shard's watch has not delivered (it may lag
        for long, and its old ring leaves buckets of the new one unwritten). Ask the
        API server (`_fenced_ring`) and adopt what it says. One `HGET` per interval."""
        spec = self.ring_spec
        if spec is None or spec.static:
            return
        try:
            if await self.store.ring_lineage() in (spec.lineage, None):
                return  # current (a newer generation comes through the watch), or lost: recovery's
            await self._adopt(spec)
        except (StoreError, KubeError) as e:
            if isinstance(e, StoreError):
                self.metrics.store_errors.inc()
            log.warning("following the store's ring lineage failed (will retry): %s", e)
