"""WATCH: one open watch as a cursor over its resource's shared event ring (README.md,
"Watch" and "Watch-list").

A `Watch` starts at a ring position (after synthetic ADDED events for legacy and
watch-list starts), then sends every later event that passes its selectors, with
the transition rules of `cache_watcher.go` (`convertToWatchEvent`): an update
that moves an object into the selection is ADDED, out of it is DELETED with the
previous content stamped with the new RV. Bookmarks, the deadline and the fault
controls (inject an ERROR, close, abort, stall) are handled by the same loop.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from kubesim import errors
from kubesim.config import SimConfig
from kubesim.encoding import (
    INITIAL_EVENTS_END,
    PARTIAL_PREFIX,
    bookmark_line,
    error_line,
    event_line,
    partial_item,
    prefix_for,
)
from kubesim.listing import Filter, key_range, make_filter
from kubesim.options import ListOptions, parse_resource_version
from kubesim.resources import ResourceType
from kubesim.storage import Event, ObjVersion, ResourceStore, Storage

INITIAL_BATCH = 500
"""Synthetic ADDED events per write: large enough to amortise, small enough to flush."""

EVENT_BATCH = 256
"""Ring events converted per write: a backlog of 100,000 events goes out as ~1 MiB
writes, not one giant buffer."""

CloseMode = Literal["eof", "abort"]
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class WatchStart:
    """Where a watch begins: initial objects to send as ADDED, then ring events."""

    initial: list[ObjVersion]
    cursor: int
    min_rev: int
    """Ring events at or below this revision are skipped (a start RV in the future)."""
    snapshot_rev: int
    watch_list: bool
    error: errors.ApiError | None = None


class Watch:
    """One open watch: its request, cursor, timers and fault controls."""

    def __init__(
        self,
        st: ResourceStore,
        *,
        version: str,
        opts: ListOptions,
        namespace: str,
        deadline: float,
        user: str = "",
        metadata_only: bool = False,
    ) -> None:
        self.id = next(_ids)
        self.store = st
        self.rtype: ResourceType = st.rtype
        self.version = version
        self.opts = opts
        self.namespace = namespace if st.rtype.namespaced else ""
        self.deadline = deadline
        self.user = user
        self.filter: Filter | None = make_filter(opts, self.namespace)
        self.metadata_only = metadata_only
        self.prefix = PARTIAL_PREFIX if metadata_only else prefix_for(self.rtype, version)
        self.cursor = 0
        self.min_rev = 0
        self.sent_events = 0
        self._wake = asyncio.Event()
        self.pending_error: errors.ApiError | None = None
        self.close_mode: CloseMode | None = None
        self.stalled_until = 0.0

    # --- controls (called by the simulator and the store) ---

    def wake(self) -> None:
        self._wake.set()

    def inject(self, err: errors.ApiError) -> None:
        """Send `err` as an in-band ERROR event, then end the stream."""
        self.pending_error = err
        self.wake()

    def close(self, mode: CloseMode = "eof") -> None:
        """End the stream: cleanly (`eof`) or by resetting the connection (`abort`)."""
        self.close_mode = mode
        self.wake()

    def stall(self, seconds: float | None, *, now: float) -> None:
        """Send nothing (no events, no bookmarks) for `seconds` (None: until unstalled)."""
        self.stalled_until = math.inf if seconds is None else now + seconds
        self.wake()

    def unstall(self) -> None:
        self.stalled_until = 0.0
        self.wake()

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "resource": self.rtype.plural,
            "group": self.rtype.group,
            "version": self.version,
            "namespace": self.namespace,
            "user": self.user,
            "cursor": self.cursor,
            "backlog": max(0, self.store.events_end - self.cursor),
            "sentEvents": self.sent_events,
            "stalled": self.stalled_until > 0,
        }

    # --- the stream ---

    def convert(self, ev: Event) -> bytes | None:
        """The wire line `ev` becomes for this watch, or None if it is filtered out."""
        if ev.rev <= self.min_rev:
            return None
        accept = self.filter
        if accept is None:
            return event_line(ev.type, self.prefix, self._view(ev.new.item))
        if ev.type != "MODIFIED" or ev.old is None:
            return event_line(ev.type, self.prefix, self._view(ev.new.item)) if accept(ev.new) else None
        new_ok, old_ok = accept(ev.new), accept(ev.old)
        if new_ok:
            return event_line("MODIFIED" if old_ok else "ADDED", self.prefix, self._view(ev.new.item))
        if old_ok:
            obj = ev.old.obj()
            obj["metadata"]["resourceVersion"] = str(ev.rev)
            return event_line("DELETED", self.prefix, self._view(orjson.dumps(obj)))
        return None

    async def stream(
        self, start: WatchStart, storage: Storage, config: Callable[[], SimConfig]
    ) -> AsyncIterator[bytes]:
        """Yield the stream's bytes until the deadline, a close, or an error.

        `config` is read on every turn, so knobs changed at run time (bookmark
        interval, slow-watcher limit) apply to watches already open.
        """
        loop = asyncio.get_running_loop()
        cfg = config()
        self.cursor, self.min_rev = start.cursor, start.min_rev
        if start.error is not None:
            yield error_line(_status(start.error))
            return
        initial = start.initial
        for i in range(0, len(initial), INITIAL_BATCH):
            batch = initial[i : i + INITIAL_BATCH]
            yield b"".join([event_line("ADDED", self.prefix, self._view(v.item)) for v in batch])
            self.sent_events += len(batch)
        if start.watch_list and self.opts.allow_bookmarks:
            yield self._bookmark(start.snapshot_rev, cfg, initial_end=True)
        next_bookmark = self._next_bookmark(loop.time(), cfg)
        timing = (cfg.bookmark_interval, cfg.time_scale)
        st = self.store
        while True:
            now = loop.time()
            cfg = config()
            if (cfg.bookmark_interval, cfg.time_scale) != timing:
                timing = (cfg.bookmark_interval, cfg.time_scale)
                next_bookmark = self._next_bookmark(now, cfg)
            if self.close_mode == "abort":
                return
            if self.pending_error is not None:
                yield error_line(_status(self.pending_error))
                return
            if now >= self.deadline:
                return
            if self.stalled_until > now and self.close_mode is None:
                await self._sleep(min(self.stalled_until, self.deadline) - now)
                continue
            if self.cursor < st.events_base:
                return  # fell out of the ring (compaction or capacity): the cacher drops it
            if self.cursor < st.events_end:
                end = min(st.events_end, self.cursor + EVENT_BATCH)
                events = st.events[self.cursor - st.events_base : end - st.events_base]
                self.cursor = end
                lines = [line for line in map(self.convert, events) if line is not None]
                if lines:
                    self.sent_events += len(lines)
                    yield b"".join(lines)
                lag = cfg.slow_watcher_max_lag
                if lag is not None and st.events_end - self.cursor > lag:
                    return
                continue
            if self.close_mode == "eof":
                return  # after draining: a deleted CRD's watchers see every DELETED first
            if next_bookmark is not None and now >= next_bookmark:
                if self.opts.allow_bookmarks and storage.revision >= self.min_rev:
                    yield self._bookmark(storage.revision, cfg, initial_end=False)
                next_bookmark = self._next_bookmark(now, cfg)
                continue
            wake_at = self.deadline if next_bookmark is None else min(self.deadline, next_bookmark)
            await self._sleep(wake_at - now)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        try:
            async with asyncio.timeout(max(0.0, seconds)):
                await self._wake.wait()
        except TimeoutError:
            pass

    def _view(self, item: bytes) -> bytes:
        return partial_item(item) if self.metadata_only else item

    def _bookmark(self, rev: int, cfg: SimConfig, *, initial_end: bool) -> bytes:
        if self.metadata_only:
            meta: dict[str, Any] = {"resourceVersion": str(rev)}
            if initial_end:
                meta["annotations"] = {INITIAL_EVENTS_END: "true"}
            return event_line("BOOKMARK", PARTIAL_PREFIX, b'{"metadata":' + orjson.dumps(meta) + b"}")
        return bookmark_line(
            self.rtype, self.version, rev, initial_end=initial_end, realistic=cfg.realistic_bookmarks
        )

    def _next_bookmark(self, now: float, cfg: SimConfig) -> float | None:
        """`nextBookmarkTime`: every interval, and once shortly before the deadline."""
        if cfg.bookmark_interval is None or not self.opts.allow_bookmarks:
            return None
        candidates = [now + cfg.bookmark_interval / cfg.time_scale]
        before = self.deadline - cfg.bookmark_before_deadline / cfg.time_scale
        if before > now:
            candidates.append(before)
        return min(candidates)


def _status(err: errors.ApiError) -> dict[str, Any]:
    return errors.error_event(err)["object"]  # type: ignore[no-any-return]


def plan_start(
    st: ResourceStore, storage: Storage, opts: ListOptions, *, namespace: str, cfg: SimConfig
) -> WatchStart:
    """Decide where a watch starts (pure; the caller waits for future RVs first).

    Legacy RV ""/"0" and watch-list send the current objects as ADDED; RV=N starts
    after N, with an in-band 410 when N has left the ring.
    """
    rv = parse_resource_version(opts.resource_version, st.rtype, watch=True)
    now_rev = storage.revision
    if opts.is_watch_list:
        if not cfg.watch_list_progress_notify:
            return WatchStart(
                [], st.events_end, 0, now_rev, True, errors.internal("sendInitialEvents unsupported")
            )
        if rv and rv < st.ring_start_rev:
            return _too_old(st, rv, cfg)
        if rv > now_rev:
            return WatchStart(
                [], st.events_end, 0, now_rev, True, errors.too_large_resource_version(rv, now_rev)
            )
        return WatchStart(_snapshot(st, opts, namespace), st.events_end, 0, now_rev, True)
    if opts.resource_version in ("", "0"):
        return WatchStart(_snapshot(st, opts, namespace), st.events_end, 0, now_rev, False)
    if rv < st.ring_start_rev:
        return _too_old(st, rv, cfg)
    return WatchStart([], st.position_after(rv), rv, now_rev, False)


def _too_old(st: ResourceStore, rv: int, cfg: SimConfig) -> WatchStart:
    msg = f"too old resource version: {rv} ({st.ring_start_rev})"
    return WatchStart([], st.events_end, 0, rv, False, errors.expired(msg, reason=cfg.expired_reason))


def _snapshot(st: ResourceStore, opts: ListOptions, namespace: str) -> list[ObjVersion]:
    """Current objects in key order, restricted to the namespace's key range."""
    namespace = namespace if st.rtype.namespaced else ""
    accept = make_filter(opts, "")
    lo, hi = key_range(namespace)
    out: list[ObjVersion] = []
    for v in st.iter_current(lo):
        if hi and v.key >= hi:
            break
        if accept is None or accept(v):
            out.append(v)
    return out
