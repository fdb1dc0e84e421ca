"""The shard's sync and garbage collection: readiness, stale series collected, retired families swept.

Split out of `shard/worker.py` (issue 15): one long-running loop per module; the
worker keeps `run()`; the shared state is `shard.state.WorkerState` (mixin).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import time
from collections.abc import Callable

from panopticon.errors import StoreError
from panopticon.store.layout import field_bucket
from shard.state import WorkerState
from shard.writer import collect_garbage

log = logging.getLogger("panopticon.shard")


COLLECT_RETRY = 5.0
"""Seconds between attempts of a garbage collection that failed (Redis unavailable)."""


class Collection(WorkerState):
    """Readiness after the first sync; garbage collection after every re-sync; the
    retired set kept bounded."""

    async def _sync_loop(self) -> None:
        """Readiness after the first full sync; garbage collection after every re-sync."""
        await self.configs_synced.wait()
        await self.ring_ready.wait()
        while True:
            await asyncio.sleep(self.settings.flush_interval)
            self._update_readiness()
            if not self.reconciled or not self._registry_read:
                continue  # retired families are known once the registry was published
            if not all(t.synced.is_set() for t in self.targets.values()):
                continue
            if self.pending_gc and time.monotonic() >= self._collect_after:
                await self.flush()
                await self._collect(frozenset(self.pending_gc))
            if self.pending_gc & self.ownership.owned:
                continue  # a collection failed (logged; retried): not ready until it is done
            if not self.synced_once and self.settled:
                self.synced_once = True
                self.metrics.synced.set(1)
                log.info("first full sync done: %d targets, %d objects", len(self.targets), self._objects())
                release_memory()
                self._update_readiness()

    def _update_readiness(self) -> None:
        """Ready = first sync done, every configured kind resolved (a kind whose
        discovery fails has series nobody updates), and owning the buckets the ring
        gives this shard (owning none of them, it writes nothing: a stale ring, or
        another deployment fencing it out)."""
        if not self.synced_once:
            reason = "starting"
            if self.kinds.failed:
                reason += f"; discovery failed for {self.kinds.describe_failed()} (retrying)"
        elif self.kinds.failed:
            reason = f"discovery failed for {self.kinds.describe_failed()} (retrying; their series are kept)"
        elif self.ownership.assigned and not self.ownership.owned:
            reason = (
                f"owns none of the {len(self.ownership.assigned)} buckets its ring gives it "
                "(every claim refused: another ring holds them)"
            )
        else:
            reason = ""
        ready = not reason
        if ready != self.health.ready and self.synced_once:
            if not ready:
                log.warning("not ready: %s", reason)
            elif self._was_ready:
                log.info("ready again")
        self._was_ready |= ready
        self.health.ready = ready
        self.health.reason = reason
        self.metrics.ready.set(1 if ready else 0)

    async def _collect(self, buckets: frozenset[int]) -> None:
        try:
            async with self._lock:  # no target starts or stops meanwhile
                if not all(t.synced.is_set() for t in self.targets.values()):
                    # A ring change or a target restart since the caller looked: gained
                    # buckets are not listed yet, and collecting them now would delete
                    # their previous owner's live series. Collect after the next sync.
                    return
                owned = buckets & self.ownership.owned
                # Retired families too: their fields in these buckets are all garbage.
                # Not those of kinds whose discovery failed: their objects may all exist.
                retired = await self.store.retired()
                kept = self._kept_families()
                families = (set(self.configs.families()) | retired) - kept
                deleted = await self._collect_in(owned, sorted(families))
                # Collected and synced: their partials are now whole here (`shard.partials`).
                self.queue.partials.touch(owned, kept)
        except StoreError as e:
            self.metrics.store_errors.inc()
            log.warning("garbage collection failed (will retry in %.0f s): %s", COLLECT_RETRY, e)
            self._collect_after = time.monotonic() + COLLECT_RETRY
            return
        self.pending_gc -= buckets
        self.metrics.collected.inc(deleted)
        if deleted:
            log.info("garbage collection: %d stale series of deleted objects removed", deleted)

    def _kept_families(self) -> set[str]:
        if not self.kinds.failed:
            return set()
        return self.kinds.kept_families(self.configs.programs_by_target())

    async def _collect_in(self, buckets: frozenset[int], families: list[str]) -> int:
        """Delete the fields of `families` in `buckets` that no target renders (the
        caller holds the lock, with every target synced). An aggregate family keeps its
        bucket fields (the partials, rewritten once the buckets are touched) and loses
        any object's field; any other family loses any bucket field."""
        aggregate = self.queue.partials.functions

        def live_in(family: str) -> Callable[[str], bool]:
            if family in aggregate:
                return is_bucket_field
            tests = [t for t in (target.table.holders(family) for target in self.targets.values()) if t]
            if len(tests) == 1:
                return tests[0]
            return lambda uid: any(test(uid) for test in tests)

        return await collect_garbage(
            self.store, self.ownership.token, buckets, families, live_in, guard=self._flush_lock
        )

    async def _retired_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.retired_interval)
            if not self.synced_once:
                continue  # the first sync collects what its buckets need
            try:
                await self.expire_retired()
            except StoreError as e:
                self.metrics.store_errors.inc()
                log.warning("sweeping retired families failed (will retry): %s", e)

    async def expire_retired(self) -> list[str]:
        """Bound the store's retired set (it used to grow with every family ever removed).

        A family retired at least `retired_grace` ago that this shard's configs do not
        define: its fields left in this shard's buckets are deleted (fenced, as any
        collection); then, if no slot holds a field of it any more, it leaves the
        retired set, unless it was registered or retired again meanwhile. Every shard
        sweeps its own buckets, so a family leaves once all have, and stays while a
        shard that was down when it was removed still holds fields of it: that shard
        collects them after its first sync, and the family leaves at the next sweep.
        Returns the families taken out of the set."""
        now = time.time()
        defined = set(self.configs.families())
        retired = await self.store.retired_since()
        due = {
            family: since
            for family, since in sorted(retired.items())
            if now - since >= self.settings.retired_grace and family not in defined
        }
        dropped: list[str] = []
        if due:
            async with self._lock:
                if not self.reconciled or not all(t.synced.is_set() for t in self.targets.values()):
                    return dropped  # a config change or ring change in progress: next time
                deleted = await self._collect_in(self.ownership.owned, list(due))
            self.metrics.collected.inc(deleted)
            for family, since in due.items():
                if not await self.store.family_stored(family) and await self.store.drop_retired(
                    family, since
                ):
                    dropped.append(family)
            if deleted or dropped:
                log.info(
                    "retired families: %d stale series removed; %d families no slot holds any more "
                    "left the retired set",
                    deleted,
                    len(dropped),
                )
        self.metrics.retired_families.set(len(retired) - len(dropped))
        return dropped


def is_bucket_field(field: str) -> bool:
    return field_bucket(field) is not None


def release_memory() -> None:
    """Hand the memory of a sync's transient objects back to the system.

    Decoding a full list allocates and frees far more than the shard keeps (the
    restart spike of kube-state-metrics#2302). glibc keeps freed heap pages unless
    asked; `malloc_trim` returns them, so RSS reflects what is actually held."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        libc = ctypes.CDLL(name)
        trim = getattr(libc, "malloc_trim", None)
    except OSError:
        return
    if trim is not None:
        trim(0)
