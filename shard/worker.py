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
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from panopticon.buckets import ShardFilter
from panopticon.errors import PanopticonError, StoreError
from panopticon.fencing import SUPERSEDED, highest_fence
from panopticon.isolation import ErrorTally, merge_tallies
from panopticon.kube.discovery import Discovery, ResourceRef, split_api_version
from panopticon.ring import Ring
from panopticon.store import Store
from shard.configs import ConfigSet, ConfigState
from shard.lastvalid import LastValid
from shard.membership import RingSpec, watch_ring
from shard.resolution import KindResolution
from shard.status import StatusWriter
from shard.targets import Source, SourceFactory, Target, TargetKey
from shard.telemetry import Health, ShardMetrics
from shard.writer import Ownership, WriteQueue, collect_garbage

log = logging.getLogger("panopticon.shard")

CONFIG_RESOURCE = ResourceRef(
    group="metrics.appscode.com",
    version="v1alpha1",
    resource="metricsconfigurations",
    kind="MetricsConfiguration",
    namespaced=False,
)
CRD_RESOURCE = ResourceRef(
    group="apiextensions.k8s.io",
    version="v1",
    resource="customresourcedefinitions",
    kind="CustomResourceDefinition",
    namespaced=False,
)


REWRITE_BACKOFF = 5.0
"""Seconds before a second rewrite after a dropped backlog (doubling up to the max)."""
REWRITE_BACKOFF_MAX = 300.0
REWRITE_BACKOFF_RESET = 600.0
"""Seconds without a rewrite after which the backoff starts again from its minimum."""


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    index: int
    static_ring: RingSpec | None
    """From --shards; None when the ring comes from the StatefulSet (`ring_source`)."""
    flush_interval: float = 0.05
    """Seconds between flushes: the floor of event→store latency, and the batching window."""
    max_backlog: int = 1_000_000
    """Field operations held while the store fails (~300 bytes each). Past this they are
    dropped and, once the store answers, every target relists and rewrites everything
    (garbage collection then removes what the dropped deletes would have)."""
    heartbeat_interval: float = 2.0
    """Seconds between heartbeats and store epoch checks (Redis restart detection)."""
    status_interval: float = 30.0
    """Seconds between status refreshes of the configs this shard answers for."""
    ownership_interval: float = 10.0
    """Seconds between checks that the store still names this shard owner of its buckets:
    buckets another ring took are let go even when nothing is written to them, so that
    a shard fenced out of all of them says so (not ready) within this time."""
    retired_interval: float = 300.0
    """Seconds between sweeps of the retired families (a few EXISTS and HKEYS each)."""
    retired_grace: float = 3600.0
    """Seconds a family stays retired at least. A shard that has not seen the config
    change yet may still write the family after every slot was found empty; it deletes
    those fields itself when it catches up, unless it crashes first, and only then
    would they outlive the entry uncollected. An hour covers any such lag."""
    pod: str = ""


class Worker:
    def __init__(
        self,
        settings: WorkerSettings,
        *,
        store: Store,
        discovery: Discovery,
        make_source: SourceFactory,
        status: StatusWriter | None,
        metrics: ShardMetrics,
        health: Health,
        ring_source: Source | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.discovery = discovery
        self.make_source = make_source
        self.status = status
        self.metrics = metrics
        self.health = health
        self.ring_source = ring_source
        self.configs = ConfigSet()
        self.last_valid = LastValid(store, self.configs)
        self.ownership = Ownership(store, settings.index)
        self.ring_spec: RingSpec | None = None
        """The ring adopted last, as the StatefulSet or the flags describe it."""
        self.queue = WriteQueue(store)
        self.targets: dict[TargetKey, Target] = {}
        self.kinds = KindResolution(discovery)
        """Configured kinds without a target: not served, or their discovery failed."""
        self.published: set[str] = set()
        self._registry_read = False
        """Whether the store's registry was read since start-up: families it holds that
        no config defines (deleted while no shard ran) are unregistered then."""
        self.epoch = ""
        self.store_was_empty = False
        self.configs_synced = asyncio.Event()
        self.ring_ready = asyncio.Event()
        self.pending_gc: set[int] = set()
        self._collect_after = 0.0
        """Monotonic time before which a failed garbage collection is not retried."""
        self.reconciled = False
        """True when every configured target exists (or is known to be unserved)."""
        self.synced_once = False
        """The first full sync is done (readiness also needs every kind resolved and
        the ring's buckets owned: `_update_readiness`)."""
        self._was_ready = False
        self._status_due = asyncio.Event()
        """Set after each reconcile: statuses are written then, not a status interval later."""
        self._lock = asyncio.Lock()
        self._flush_lock = asyncio.Lock()
        self._flushing = 0
        self._background_flush: asyncio.Task[None] | None = None
        self._flush_tasks: set[asyncio.Task[None]] = set()
        """Background flushes still running (strong references; awaited at shutdown)."""
        self._registry_dirty = False
        """The last registry publication failed: the heartbeat loop retries it."""
        self._rewrite_due = False
        """The write backlog was dropped: the heartbeat loop rewrites everything once the
        store answers."""
        self._servers: dict[str, str] | None = None
        """Run id of each Redis server at the last heartbeat (None before the first)."""
        self._recovery_due = False
        """The store restarted or forgot acknowledged writes: the heartbeat loop
        rewrites everything (retried at each heartbeat until it succeeds)."""
        self._rewrite_backoff = REWRITE_BACKOFF
        self._rewrite_not_before = 0.0
        self._last_rewrite = -REWRITE_BACKOFF_RESET

    # --- lifecycle -----------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        await self.store.ensure_layout()
        self.epoch, self.store_was_empty = await self.store.epoch()
        try:
            async with asyncio.TaskGroup() as tasks:
                for name, loop in self._loops():
                    tasks.create_task(_logged(name, loop), name=name)
                await stop.wait()
                raise _Stop
        except* _Stop:
            pass
        finally:
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
        ]

    # --- configs and CRDs -------------------------------------------------------------

    async def _configs_loop(self) -> None:
        source = self.make_source(CONFIG_RESOURCE, None, None)
        async for event in source.events():
            self.health.tick()
            if event.type == "SYNCED":
                self.configs_synced.set()
            elif event.type == "DELETED":
                name = _name_of(event.obj)
                if name:
                    self.configs.delete(name)
                    await self.last_valid.forget(name)
                    for stage in ("compile", "render"):
                        with contextlib.suppress(KeyError):
                            self.metrics.config_faults.remove(name, stage)
                    if self.status is not None:
                        # A config created again under this name is a new object, with
                        # no status yet; and names come and go: nothing kept per name.
                        self.status.forget(name)
            elif event.obj is not None:
                state = self.configs.upsert(event.obj)
                if state is not None and state.valid:
                    await self.last_valid.save(state)
                elif state is not None:
                    await self.last_valid.restore(state)
                    self._invalid(state)
            if self.configs_synced.is_set():
                await self.reconcile()

    def _invalid(self, state: ConfigState) -> None:
        """Report a config whose latest generation is invalid (a fault is counted too),
        once per version (every status write comes back as an event)."""
        if state.reported:
            return
        state.reported = True
        if state.compiled.fault is not None:
            self.metrics.config_faults.labels(state.name, "compile").inc()
        served = (
            f"; serving generation {state.last_good_generation}, the last valid one"
            if state.last_good is not None
            else ""
        )
        errors = "; ".join(map(str, state.compiled.errors))
        log.warning("config %s is invalid: %s%s", state.name, errors, served)

    async def _crds_loop(self) -> None:
        source = self.make_source(CRD_RESOURCE, None, None)
        synced = False
        async for event in source.events():
            self.health.tick()
            if event.type in ("ADDED", "MODIFIED") and event.obj is not None:
                self.configs.schemas.add_crd(event.obj)
            if event.type == "SYNCED":
                synced = True
            elif not synced:
                continue  # the initial list: act once, at its end
            refreshed = False
            with contextlib.suppress(PanopticonError):
                await self.discovery.refresh()
                refreshed = True
            changed = self.configs.recompile()
            if changed:
                log.info("configs revalidated against new CRD schemas: %s", ", ".join(changed))
            if self.configs_synced.is_set():
                await self.reconcile(drop_unserved=refreshed)

    async def reconcile(self, *, drop_unserved: bool = False) -> None:
        """Make the targets match the configs (start, re-render, stop) and publish families.

        With `drop_unserved` (discovery was just refreshed), targets of kinds the API
        server no longer serves (their CRD was deleted) are stopped and their series
        deleted: their reflectors would only get 404s, with a backoff that would
        delay the kind's return by up to a minute. The configs report
        `TargetNotFound`, and the kind is picked up as soon as it is served again."""
        if not self.ring_ready.is_set():
            return
        async with self._lock:
            self.reconciled = False
            await self._publish_registry()
            if drop_unserved:
                self._drop_unserved()
            desired = {
                TargetKey(api_version, kind): programs
                for (api_version, kind), programs in self.configs.programs_by_target().items()
            }
            shard_filter = self._filter()
            for key, programs in desired.items():
                target = self.targets.get(key)
                if target is None:
                    was_failing = key in self.kinds.failed
                    resource = await self.kinds.resolve(key)
                    if resource is None:
                        continue
                    if was_failing:
                        # Its series were kept while it was unresolved: collect what
                        # changed meanwhile once it has synced.
                        self.pending_gc |= self.ownership.owned
                    target = Target(
                        key,
                        resource,
                        programs,
                        queue=self.queue,
                        metrics=self.metrics,
                        make_source=self.make_source,
                        owns=self._owns,
                        relieve=self.relieve,
                        errors=self.configs.errors,
                    )
                    self.targets[key] = target
                    target.start(shard_filter)
                elif target.programs != tuple(programs):
                    target.set_programs(programs, shard_filter)
            for key in [k for k in self.targets if k not in desired]:
                log.info("target %s is no longer configured: deleting its series", key)
                self.targets.pop(key).remove_all()
            self.kinds.retain(desired)
            self._config_metrics()
            self.reconciled = True
            self._status_due.set()

    def _drop_unserved(self) -> None:
        for key in list(self.targets):
            group, version = split_api_version(key.api_version)
            if self.discovery.lookup(group, version, key.kind) is None:
                log.warning("target %s is no longer served by the API server: its series are deleted", key)
                self.targets.pop(key).remove_all()
                self.kinds.mark_not_served(key)

    async def _publish_registry(self) -> None:
        entries = self.configs.registry()
        gone = self.published - set(entries)
        try:
            if not self._registry_read:
                # A config deleted while no shard ran left its families registered:
                # nobody else would remove them (each shard removes what it published).
                stale = set(await self.store.registry()) - set(entries)
                if stale:
                    log.info("families no config defines any more: %s", ", ".join(sorted(stale)))
                gone |= stale
            await self.store.set_registry(entries, sorted(gone))
        except StoreError as e:
            self.metrics.store_errors.inc()
            log.warning("publishing the family registry failed (will retry): %s", e)
            self._registry_dirty = True
            return
        self._registry_read = True
        self._registry_dirty = False
        self.published = set(entries)

    def _config_metrics(self) -> None:
        invalid = sum(1 for _ in self.configs.invalid())
        self.metrics.configs.labels("valid").set(len(self.configs.configs) - invalid)
        self.metrics.configs.labels("invalid").set(invalid)
        self.metrics.unresolved_kinds.labels("not_served").set(len(self.kinds.not_served))
        self.metrics.unresolved_kinds.labels("discovery_failed").set(len(self.kinds.failed))

    # --- ownership ------------------------------------------------------------------

    def _owns(self, bucket: int) -> bool:
        return bucket in self.ownership.owned

    def _filter(self) -> ShardFilter:
        return ShardFilter(self.store.layout.space, self.ownership.owned)

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
            except StoreError as e:
                self.metrics.store_errors.inc()
                log.warning("adopting ring %s failed (retrying in %.1fs): %s", spec, delay, e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _fenced_ring(self, spec: RingSpec) -> Ring | None:
        """`spec` as a ring whose generation is the store's fence for it
        (`panopticon.fencing`); None when its StatefulSet was replaced since."""
        current = self.ownership.ring.generation if self.ownership.ring is not None else 0
        floor = max(highest_fence((await self.store.owners()).values()), current)
        fence = await self.store.ring_fence(spec.lineage, spec.generation, floor=floor, renew=spec.static)
        if fence == SUPERSEDED:
            log.warning("ring %s: its StatefulSet was replaced since (a lagging watch?): ignored", spec)
            return None
        return Ring(spec.shards, fence, self.store.layout.space)

    def _ring_metrics(self, spec: RingSpec) -> None:
        ring = self.ownership.ring
        self.metrics.ring_shards.set(spec.shards)
        self.metrics.ring_generation.set(spec.generation)
        self.metrics.ring_fence.set(ring.generation if ring is not None else 0)
        self.metrics.ring_buckets.set(len(self.ownership.assigned))
        self.metrics.owned_buckets.set(len(self.ownership.owned))

    async def _adopt(self, spec: RingSpec) -> None:
        ring = await self._fenced_ring(spec)
        if ring is None:
            return
        async with self._lock:
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
            self.pending_gc -= lost
            if not first:
                shard_filter = self._filter()
                for target in self.targets.values():
                    target.set_filter(shard_filter, lost)
        self.ring_ready.set()
        if self.configs_synced.is_set():
            await self.reconcile()

    # --- writing ---------------------------------------------------------------------

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
            task = asyncio.create_task(_logged("flush", self.flush), name="flush")
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
            try:
                owners = await self.store.owners()
            except StoreError as e:
                self.metrics.store_errors.inc()
                log.warning("reading the bucket owners failed (will retry): %s", e)
                continue
            token = self.ownership.token
            taken = {b for b in self.ownership.owned if owners.get(b) != token}
            if taken:
                await self._refused(taken)  # reclaimed if merely forgotten, else let go

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
                families = (set(self.configs.families()) | retired) - self._kept_families()
                deleted = await self._collect_in(owned, sorted(families))
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
        programs = {TargetKey(*key): p for key, p in self.configs.programs_by_target().items()}
        return self.kinds.kept_families(programs)

    async def _collect_in(self, buckets: frozenset[int], families: list[str]) -> int:
        """Delete the fields of `families` in `buckets` that no target renders (the
        caller holds the lock, with every target synced)."""

        def live_in(family: str) -> Callable[[str], bool]:
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

    def _objects(self) -> int:
        return sum(len(t.table) for t in self.targets.values())

    # --- heartbeats, epoch, status -----------------------------------------------------

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
                    },
                )
            except StoreError as e:
                self.metrics.store_errors.inc()
                log.warning("heartbeat failed: %s", e)
            await asyncio.sleep(self.settings.heartbeat_interval)

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
            spec = self.ring_spec
            ring = await self._fenced_ring(spec) if spec is not None else None
            if spec is not None and ring is not None:
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
                await asyncio.wait_for(self._status_due.wait(), self.settings.status_interval)
            except TimeoutError:
                if self.kinds.not_served:
                    # Kinds not served at the last reconcile may be served now (a CRD
                    # established after its event): discovery refreshes on a miss, at
                    # most every 30 s.
                    await self.reconcile()
            self._status_due.clear()
            ring = self.ownership.ring
            if ring is not None and self.reconciled:
                tallies = await self._render_error_tallies()
                for state in list(self.configs.configs.values()):
                    if state.uid and ring.owner_of_uid(state.uid) == self.settings.index:
                        target = (
                            TargetKey(state.compiled.spec.target.api_version, state.compiled.spec.target.kind)
                            if (state.compiled.spec and state.compiled.spec.target)
                            else None
                        )
                        found = target is None or target not in self.kinds.not_served
                        failed = self.kinds.failed.get(target, "") if target is not None else ""
                        status = state.status(
                            target_found=found, discovery_error=failed, errors=tallies.get(state.name)
                        )
                        await self.status.write(state.name, status)

    async def _render_error_tallies(self) -> dict[str, ErrorTally]:
        """Every shard's render errors by config (from their heartbeats; this shard's
        own, current, in place of its heartbeat's)."""
        try:
            shards = await self.store.shards()
        except StoreError:
            shards = {}
        shards[self.settings.index] = {"render_errors": self.configs.errors.snapshot()}
        return merge_tallies(info.get("render_errors") for info in shards.values())


COLLECT_RETRY = 5.0
"""Seconds between attempts of a garbage collection that failed (Redis unavailable)."""


class _Stop(Exception):
    pass


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


async def _logged(name: str, loop: Callable[[], Awaitable[None]]) -> None:
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


def _name_of(obj: dict[str, Any] | None) -> str:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""
