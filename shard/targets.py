"""One watched target kind: its reflector, its render table, and what "synced" means.

A target consumes its reflector's events for owned objects, renders them through
the kind's programs (`KindTable`) and queues the store operations. Starting (or
restarting, when the kind's configs change or the store lost its data) marks every
known object; each event unmarks its object; at the reflector's SYNCED every object
still marked no longer exists and its series are deleted. That is how deletes that
happened while nobody watched are never lost (invariant 4).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from panopticon.config.model import TargetRef
from panopticon.kube.discovery import ResourceRef
from panopticon.kube.events import Event
from panopticon.kube.view import ObjectView
from panopticon.render.isolation import ErrorLog, object_name
from panopticon.render.program import Program, RenderError
from panopticon.sharding.buckets import ShardFilter
from shard.limiting import READMIT_INTERVAL, KindLimits
from shard.table import KindTable, TableView
from shard.telemetry import ShardMetrics
from shard.writer import WriteQueue

log = logging.getLogger("panopticon.shard")

YIELD_AFTER = 0.003
"""Seconds of handling events back to back (a relist) before yielding to the event loop.

A flush in flight resumes only when the loop runs: at 128 events per turn (~11 ms)
a relist's flushes took 60-110 ms each and the queue outgrew its bound while they
did. Turns every ~3 ms made a 100,000-object sync ~0.5 s shorter (6 paired runs)."""
YIELD_CHECK = 16
"""Events between two looks at the clock."""
MAX_QUEUED = 20_000
"""Queued field operations past which a target flushes before taking more events."""


class Source(Protocol):
    """What a target needs from a reflector."""

    def events(self) -> AsyncIterator[Event]: ...

    def set_filter(self, shard_filter: ShardFilter | None) -> None: ...


SourceFactory = Callable[[ResourceRef, ShardFilter | None, ObjectView | None], Source]
"""(resource, filter, view): a source of the resource's events; `view`, when given, is
the record of what the consumer holds, used instead of the source keeping its own."""


class Target:
    def __init__(
        self,
        key: TargetRef,
        resource: ResourceRef,
        programs: list[Program],
        *,
        queue: WriteQueue,
        metrics: ShardMetrics,
        make_source: SourceFactory,
        owns: Callable[[int], bool],
        relieve: Callable[[], Awaitable[None]] | None = None,
        errors: ErrorLog | None = None,
        max_series: int | None = None,
    ) -> None:
        self.key = key
        self.errors = errors if errors is not None else ErrorLog()
        """Render errors by config (the configs' status quotes them); faults logged here."""
        self.resource = resource
        self.table = KindTable(programs, queue.layout.space, namespaced=resource.namespaced)
        self._max_series = max_series
        self.limits = KindLimits(programs, max_series, queue.layout.space.count)
        """Capped configs of this kind (`shard.limiting`)."""
        self.table.admit = self.limits.admit if self.limits else None
        self._readmit_due = False
        self._readmitted_at = -READMIT_INTERVAL
        self.queue = queue
        self.metrics = metrics
        self.make_source = make_source
        self.owns = owns
        self.relieve = relieve
        self.synced = asyncio.Event()
        self._source: Source | None = None
        self._task: asyncio.Task[None] | None = None
        self._marked: set[str] | None = None
        self._filter: ShardFilter | None = None
        self._label = str(key)
        # Per-event counts: plain ints under keys resolved once (see `Tallies`).
        self._event_counts = metrics.events.counts
        self._event_keys = {t: metrics.events.key(self._label, t) for t in ("ADDED", "MODIFIED", "DELETED")}
        self._render_counts = metrics.renders.counts
        self._render_key = metrics.renders.key(self._label)
        self._error_counters: dict[tuple[str, str], Any] = {}
        """(config, family) -> its render-error child: an object that fails renders
        several families per event, and a malformed share of a relist fails them all."""

    @property
    def programs(self) -> tuple[Program, ...]:
        return self.table.programs

    def start(self, shard_filter: ShardFilter | None, *, forget: bool = True) -> None:
        """(Re)start watching; everything known is marked until seen again, and
        delivered again (its resourceVersion forgotten) to be rendered anew; with
        `forget` false, only the objects whose version was forgotten already are."""
        self.stop()
        self.synced.clear()
        self._filter = shard_filter
        if forget:
            self._marked = set(self.table.uids())
            self.table.forget_versions()
        else:
            # Objects whose version is known are not delivered again, so they cannot be
            # unmarked: the new reflector's list reports those gone itself (`TableView`).
            self._marked = None
        self._source = self.make_source(self.resource, shard_filter, TableView(self.table, self.resource))
        self._task = asyncio.create_task(self._consume(self._source), name=f"target {self._label}")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._source = None

    async def wait_stopped(self) -> None:
        task = self._task
        self.stop()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    def set_programs(self, programs: list[Program], shard_filter: ShardFilter | None) -> None:
        """New configs for this kind: re-render every object (a fresh list)."""
        self.table.set_programs(programs)
        self.limits = KindLimits(programs, self._max_series, self.table.space.count, self.limits)
        self.table.admit = self.limits.admit if self.limits else None
        current = {(p.config_name, header.name) for p in programs for header in p.families}
        self._drop_error_counters(current)
        self.start(shard_filter)

    def _drop_error_counters(self, keep: set[tuple[str, str]]) -> None:
        """Remove the render-error series of (config, family) pairs no longer defined:
        a family renamed at every edit would otherwise add a series for good."""
        for key in [k for k in self._error_counters if k not in keep]:
            del self._error_counters[key]
            self.metrics.render_errors.remove(*key)

    def set_filter(self, shard_filter: ShardFilter | None, lost: frozenset[int]) -> None:
        """Ownership changed: forget lost buckets silently, pick up gained ones.

        An unchanged filter (a new ring generation that moved nothing here, or refused
        writes to buckets it no longer held) changes no sync state: the reflector will
        not sync again, so `synced` must stay as it is."""
        if lost:
            self.limits.forget_buckets(lost)
            self.table.forget(lost)
            self.queue.discard(lost)
            if self._marked is not None:
                self._marked = {u for u in self._marked if u in self.table}
        if shard_filter == self._filter:
            return
        self.synced.clear()
        self._filter = shard_filter
        if self._source is not None:
            self._source.set_filter(shard_filter)

    def remove_all(self) -> None:
        """The kind is no longer targeted: delete everything it stored."""
        self.stop()
        self.queue.add(self.table.clear_ops())
        self.limits = KindLimits((), None, self.table.space.count)
        self.table.admit = None
        self._drop_error_counters(set())

    async def _consume(self, source: Source) -> None:
        handled = 0
        turn = time.monotonic()
        try:
            async for event in source.events():
                self._handle(event)
                handled += 1
                if handled % YIELD_CHECK == 0 and time.monotonic() - turn > YIELD_AFTER:
                    turn = time.monotonic()
                    # A relist delivers events back to back; let the flush, heartbeat and
                    # probes run, and flush now if the queue grows (bounded memory).
                    if self.relieve is not None and self.queue.exceeds(MAX_QUEUED):
                        await self.relieve()
                    else:
                        await asyncio.sleep(0)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The reflector retries API errors itself; reaching here is a bug. Start a
            # fresh one (which marks everything again) rather than stop watching.
            log.exception("target %s: reflector failed; restarting it", self._label)
            await asyncio.sleep(1)
            self._task = None
            self.start(self._filter)

    def _handle(self, event: Event) -> None:
        now = time.monotonic()
        if event.type == "SYNCED":
            self._sweep(now)
            self.table.compact()  # every object is rendered by the current programs now
            if self.limits:
                self.review_limits(now)
            self.metrics.relists.labels(self._label).inc()
            self.metrics.owned_objects.labels(self._label).set(len(self.table))
            self.synced.set()
            return
        uid = event.uid
        kind = event.type
        if self._marked is not None:
            self._marked.discard(uid)
        bucket: int | None = None
        if kind != "DELETED":
            bucket = self.table.bucket_of(uid)
            if bucket is None:
                bucket = self.table.space.bucket(uid)
            if not self.owns(bucket):
                return
            self._render_counts[self._render_key] += 1
        key = self._event_keys.get(kind)
        if key is not None:
            self._event_counts[key] += 1
        obj: Any = event.obj
        if kind == "DELETED" and self.table.admit is not None:
            self.limits.forget(uid)
        rendered = self.table.apply(kind, obj, uid, bucket, event.rv)
        if rendered.errors:
            self._count_errors(rendered.errors, obj)
        if rendered.changed:
            self.queue.add_object(rendered.bucket, uid, rendered.sets, rendered.dels, at=now)
        if self.table.admit is not None and self.limits.receded:
            # Before the next flush: series this object's demand pushed past a cap
            # are deleted in the same batch that would have written them.
            self.review_limits(now)

    def _count_errors(self, errors: list[tuple[str, RenderError]], obj: Any) -> None:
        """Count an object's failed series (by config and family; faults by config too)
        and log faults, at most once a minute per config."""
        for config, error in errors:
            key = (config, error.family)
            child = self._error_counters.get(key)
            if child is None:
                child = self._error_counters[key] = self.metrics.render_errors.labels(*key)
            child.inc()
            if error.fault:
                self.metrics.config_faults.labels(config, "render").inc()
            message = f"{error.family or 'labels'} of {self._label} {object_name(obj)}: {error.message}"
            line = self.errors.record(config, message, fault=error.fault)
            if line is not None:
                log.warning("%s", line)

    def _sweep(self, now: float) -> None:
        marked, self._marked = self._marked, None
        if not marked:
            return
        gone = 0
        for uid in marked:
            self.limits.forget(uid)
            rendered = self.table.apply("DELETED", None, uid)
            if rendered.changed:
                gone += 1
                self.queue.add_object(rendered.bucket, uid, (), rendered.dels, at=now)
        if gone:
            log.info(
                "target %s: %d objects vanished while unwatched; their series are deleted", self._label, gone
            )

    def review_limits(self, now: float) -> None:
        """Apply what capped configs' cutoffs say now (`shard.limiting`): delete the
        series of objects now past a cap, and relist (at most every
        `READMIT_INTERVAL`, delivering only them) to render those now within it."""
        review = self.limits.review()
        for uid, families in review.withdraw:
            withdrawn = self.table.withdraw(uid, families)
            if withdrawn is not None and withdrawn[1]:
                self.queue.add_object(withdrawn[0], uid, (), withdrawn[1], at=now)
        for uid in review.readmit:
            self.table.forget_version(uid)
        self._readmit_due = self._readmit_due or bool(review.readmit)
        if (
            self._readmit_due
            and self.synced.is_set()
            and self._source is not None
            and now - self._readmitted_at >= READMIT_INTERVAL
        ):
            self._readmit_due = False
            self._readmitted_at = now
            log.info("target %s: relisting for objects a series cap lets in again", self._label)
            self.start(self._filter, forget=False)
