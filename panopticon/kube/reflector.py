"""A client-go-grade reflector: list (or watch-list) then watch, never losing a change.

    reflector = Reflector(client, ref, shard_filter=f)
    async with contextlib.aclosing(reflector.events()) as events:
        async for ev in events:      # Event(type, obj, uid, rv, final_state_unknown)
            ...                      # ADDED / MODIFIED / DELETED / SYNCED

The stack (STYLE.md, kopf `clients/watching.py`), outermost first:

1. `events`: reconnect with backoff (client-go: 800 ms, x2, 30 s cap, jitter 1.0,
   reset after 2 min) around
2. `_list_and_watch`: sync by watch-list (`sendInitialEvents=true`, when the server
   supports it) or by a paged LIST, then watch from the synced RV; a normal end
   re-watches without relisting, 410 relists, 429 and "connection refused" back
   off and re-watch, 500 re-watches for `max_internal_error_retry` seconds;
3. `_watch`: one watch request, its lines triaged (not-owned lines are skipped
   unparsed) and applied to the view;
4. `watching.watch_lines`: the inactivity timeout and the line splitter.

Every sync (LIST or watch-list initial events) is diffed against the view:
ADDED/MODIFIED for new and changed RVs, then DELETED (final state unknown) for
what vanished, then SYNCED. `set_filter` changes ownership at run time: objects no
longer owned leave the view silently and the reflector syncs again, so newly
owned objects arrive as ADDED, followed by SYNCED.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import orjson

from panopticon.kube.backoff import Backoff
from panopticon.kube.client import KubeClient
from panopticon.kube.discovery import ResourceRef
from panopticon.kube.errors import (
    ExpiredError,
    InternalServerError,
    KubeError,
    ProtocolError,
    StreamBrokenError,
    VeryShortWatchError,
    WatchTimeoutError,
    is_too_large_resource_version,
    status_error,
)
from panopticon.kube.events import INITIAL_EVENTS_END, Event, rv_of_line, split_head, triage
from panopticon.kube.failures import (
    WatchListFailed,
    refuses_shard_selector,
    rewatchable,
    watch_list_unsupported,
)
from panopticon.kube.relisting import Listing
from panopticon.kube.settings import ReflectorSettings
from panopticon.kube.stats import ReflectorStats, error_kind
from panopticon.kube.view import ObjectView, Seen, View
from panopticon.kube.watching import Interrupted, Waker, watch_lines
from panopticon.sharding.buckets import ShardFilter

__all__ = ["Event", "Reflector", "ReflectorSettings", "ReflectorStats"]

log = logging.getLogger(__name__)
_OBJECT_TYPES = frozenset((b"ADDED", b"MODIFIED", b"DELETED"))
_EVENT_TYPES = frozenset(("ADDED", "MODIFIED", "DELETED"))


class Reflector(Listing):
    """Lists and watches one resource; see the module docstring."""

    def __init__(
        self,
        client: KubeClient,
        resource: ResourceRef,
        *,
        shard_filter: ShardFilter | None = None,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        settings: ReflectorSettings | None = None,
        seed: int | None = None,
        name: str = "",
        view: ObjectView | None = None,
    ) -> None:
        self.client = client
        self.resource = resource
        self.settings = s = settings or ReflectorSettings()
        self.name = name or str(resource)
        self.path = resource.list_path(namespace)
        self.selectors = {
            k: v for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v
        }
        self.stats = ReflectorStats()
        if view is None:
            track = s.track_names if s.track_names is not None else shard_filter is None
            view = View(resource, track_names=track)
        self.view = view
        self.synced = False
        """True once a first sync completed (readiness); stays True."""
        self.synced_filter: ShardFilter | None = None
        """The filter the latest completed sync ran with (None before any, or since a
        `set_filter` whose sync has not completed)."""
        self.last_sync_rv = ""
        self.server_sharding: bool | None = None
        """Whether the server applies `shardSelector` (`metadata.shardInfo` seen); None: unknown."""
        self.selector_refused = False
        """The server answered our `shardSelector` with an error: not sent any more."""
        self.watch_list_supported: bool | None = None if s.watch_list else False
        self._filter: ShardFilter | None = None
        self._filter_set = False
        self._owns: Callable[[str], bool] | None = None
        self._rv = ""
        self._skipped_line: bytes | None = None
        self._rv_unavailable = False
        self._rng = random.Random(seed)  # noqa: S311 - jitter, not security
        self._backoff = Backoff(s.backoff, rng=self._rng)
        self._waker = Waker()
        self._changed = asyncio.Event()
        self._iterating = False
        self.set_filter(shard_filter)

    # --- public state ---

    @property
    def resource_version(self) -> str:
        """The last RV seen (sync, event or bookmark): where a watch resumes."""
        line = self._skipped_line
        if line is not None:
            self._skipped_line = None
            self._rv = rv_of_line(line) or self._rv
        return self._rv

    @property
    def shard_filter(self) -> ShardFilter | None:
        return self._filter

    def set_filter(self, shard_filter: ShardFilter | None) -> None:
        """Own the objects `shard_filter` contains (None: all). Objects no longer owned
        leave the view without DELETED; the reflector syncs again (newly owned
        objects arrive as ADDED, then SYNCED). Call from the reflector's event loop."""
        if shard_filter == self._filter and self._filter_set:
            return
        self._filter_set = True
        self._filter = shard_filter
        owns = None
        if shard_filter is not None and not shard_filter.everything:
            # Not memoised: a memo of 65,536 uids held ~7.5 MB per watched kind and
            # made no measurable difference to a sharded sync (each uid is seen once);
            # in steady watch traffic a hash costs ~3 µs per event for unowned objects.
            owns = shard_filter.contains
        self._owns = owns
        if owns is not None and shard_filter is not None:
            self.view.retain(shard_filter, owns)
        self.synced_filter = None
        self._waker.wake()
        self._changed.set()

    # --- the stack ---

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    async def events(self) -> AsyncGenerator[Event, None]:
        """Events forever (until the consumer stops iterating). One consumer at a time."""
        if self._iterating:
            raise RuntimeError(f"reflector {self.name} is already being iterated")
        self._iterating = True
        counts = self.stats.events
        try:
            while True:
                try:
                    async with aclosing(self._list_and_watch()) as stream:
                        async for ev in stream:
                            counts[ev.type] += 1
                            yield ev
                except Interrupted:
                    continue  # the filter changed: sync again now
                except KubeError as e:
                    if self._selector_refused(e):
                        continue  # list again at once, filtering client-side only
                    self._count(e)
                    level = logging.INFO if isinstance(e, ExpiredError) else logging.WARNING
                    log.log(level, "reflector %s: %s; relisting after backoff", self.name, e)
                await self._pause(self._backoff.next_delay())
        finally:
            self._iterating = False

    async def _list_and_watch(self) -> AsyncGenerator[Event, None]:
        self._waker.clear()
        self._changed.clear()
        f = self._filter
        if f is not None and not f.buckets:  # owns nothing: nothing to list or watch
            for ev in self._finish_sync(Seen(), self.resource_version):
                yield ev
            await self._changed.wait()
            raise Interrupted
        initial = self.watch_list_supported is not False
        if initial:
            await self._probe_server_sharding()
        else:
            async for ev in self._list():
                yield ev
        internal_since: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            began, lines = loop.time(), self.stats.lines
            error: KubeError | None = None
            try:
                async for ev in self._watch(initial=initial):
                    yield ev
            except WatchListFailed as e:
                if self._on_watch_list_failure(e):
                    continue  # retry the watch-list (from RV "")
                initial = False
                async for ev in self._list():
                    yield ev
                continue
            except KubeError as e:
                error = e
            initial = False  # any watch after a sync is a plain watch
            if error is None or isinstance(error, StreamBrokenError | WatchTimeoutError):
                # A normal end, a probable EOF, or a stalled stream: re-watch from the last RV.
                if error is None:
                    internal_since = None
                else:
                    self._count(error)
                if loop.time() - began < self.settings.very_short_watch and self.stats.lines == lines:
                    raise VeryShortWatchError(f"watch of {self.name} ended within a second without events")
                self.stats.watch_restarts += 1
                continue
            if isinstance(error, InternalServerError):
                now = loop.time()
                internal_since = internal_since if internal_since is not None else now
                if now - internal_since > self.settings.max_internal_error_retry:
                    raise error
            elif not rewatchable(error):
                raise error  # 410 and the rest: relist after backoff
            self._count(error)  # 429, connection refused, 500 for a while: back off, re-watch
            await self._pause(self._backoff.next_delay())
            if self._waker.woken:
                raise Interrupted

    def _on_watch_list_failure(self, e: WatchListFailed) -> bool:
        """True to retry the watch-list at once from RV ""; False to LIST this time."""
        cause = e.cause
        if self._selector_refused(cause):
            return True  # the same watch-list, without the selector
        if isinstance(cause, ExpiredError) or is_too_large_resource_version(cause):
            if self._rv_unavailable:
                raise cause
            self._count(cause)
            self._rv_unavailable = True
            return True
        if rewatchable(cause):
            raise cause  # transient: back off and try the watch-list again
        self._count(cause)
        if e.unsupported:
            self.watch_list_supported = False
            log.info("reflector %s: watch-list unsupported (%s); using LIST then WATCH", self.name, cause)
        else:
            log.warning("reflector %s: watch-list failed (%s); falling back to LIST", self.name, cause)
        return False

    # --- WATCH ---

    async def _watch(self, *, initial: bool) -> AsyncGenerator[Event, None]:
        """One watch request. With `initial`, a watch-list: initial events are diffed
        like a LIST until the annotated bookmark, then the stream continues as a watch."""
        s = self.settings
        params = self._params()
        params.update(watch="true", allowWatchBookmarks="true")
        params["timeoutSeconds"] = str(max(1, int(self._rng.uniform(*s.watch_timeout))))
        rv = "" if initial and self._rv_unavailable else self.resource_version
        if initial:
            params.update(sendInitialEvents="true", resourceVersionMatch="NotOlderThan")
        if rv:
            params["resourceVersion"] = rv
        seen: Seen | None = Seen() if initial else None
        waker = self._waker
        self.stats.watches += 1
        received = 0
        try:
            async with self.client.stream(self.path, params) as resp:
                lines = watch_lines(resp, inactivity=s.inactivity_timeout, waker=waker, max_line=s.max_line)
                async with aclosing(lines) as batches:
                    async for batch in batches:
                        for line in batch:
                            if waker.woken:
                                raise Interrupted
                            received += 1
                            out = self._on_line(line, seen)
                            if out is None:
                                continue
                            if out.__class__ is str:  # the initial events ended at this RV
                                assert seen is not None and isinstance(out, str)
                                self.stats.watch_list_syncs += 1
                                for ev in self._finish_sync(seen, out):
                                    yield ev
                                seen = None
                                continue
                            assert isinstance(out, Event)
                            yield out
        except KubeError as e:
            if seen is None:
                raise
            raise WatchListFailed(e, unsupported=watch_list_unsupported(e, received)) from e
        if seen is not None:
            raise WatchListFailed(
                ProtocolError("watch-list ended before its initial events"), unsupported=False
            )

    def _on_line(self, line: bytes, seen: Seen | None) -> Event | str | None:
        """Apply one watch line: an event to yield, the RV that ended a watch-list's
        initial events, or None (skipped, bookmark, duplicate)."""
        stats = self.stats
        stats.lines += 1
        owns = self._owns
        if owns is not None:
            etype, start = split_head(line)
            verdict = triage(line, start, owns) if start and etype in _OBJECT_TYPES else None
            if verdict is False:
                stats.skipped += 1
                if seen is None:
                    self._skipped_line = line  # its RV is parsed only if the watch must resume
                return None
            if verdict:
                owns = None  # known to be owned: no second hash after parsing
        ev: Any = None
        try:
            ev = orjson.loads(line)
            etype_s, obj = ev["type"], ev["object"]
            meta = obj["metadata"]
            uid, rv = meta.get("uid"), meta.get("resourceVersion")
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            if isinstance(ev, dict) and ev.get("type") == "ERROR":
                raise status_error(ev.get("object") or {}) from None
            raise ProtocolError(f"watch of {self.name}: undecodable event: {e}") from e
        if etype_s in _EVENT_TYPES and uid.__class__ is str and rv.__class__ is str:
            if seen is not None:
                if etype_s != "ADDED":
                    raise WatchListFailed(
                        ProtocolError(f"{etype_s} before the end of a watch-list's initial events"),
                        unsupported=True,
                    )
                if owns is not None and not owns(uid):
                    return None
                return self.view.listed(obj, uid, rv, seen)
            self._rv = rv
            self._skipped_line = None
            if owns is not None and not owns(uid):
                return None
            return self.view.apply(etype_s, obj, uid, rv)
        if etype_s == "BOOKMARK":
            stats.bookmarks += 1
            if seen is not None:
                annotations = meta.get("annotations") or {}
                return rv if annotations.get(INITIAL_EVENTS_END) == "true" and isinstance(rv, str) else None
            if isinstance(rv, str) and rv:
                self._rv, self._skipped_line = rv, None
            return None
        if etype_s == "ERROR":
            raise status_error(obj)
        raise ProtocolError(f"watch of {self.name}: unexpected event {etype_s!r} (uid {uid!r})")

    # --- helpers ---

    def _finish_sync(self, seen: Seen, rv: str) -> list[Event]:
        out = self.view.vanished(seen)
        self._rv, self._skipped_line = rv, None
        self._rv_unavailable = False
        self.last_sync_rv = rv
        self.synced = True
        self.synced_filter = self._filter
        self.stats.syncs += 1
        out.append(Event("SYNCED", None, "", rv))
        return out

    def _params(self) -> dict[str, str]:
        params = dict(self.selectors)
        if self._owns is not None and self._filter is not None and not self.selector_refused:
            params["shardSelector"] = self._filter.selector()
        return params

    def _selector_refused(self, e: KubeError) -> bool:
        """Whether `e` is the server refusing our `shardSelector`: a 400 or 422, or an
        error that names it (1.36 answers an unparsable one with a plain error). Then
        the selector is dropped for good (client-side filtering is exact on its own),
        logged once and counted; True means list again at once."""
        if self.selector_refused or "shardSelector" not in self._params():
            return False
        if not refuses_shard_selector(e):
            return False
        self.selector_refused = True
        self.server_sharding = False
        self.stats.errors["shard_selector_refused"] = self.stats.errors.get("shard_selector_refused", 0) + 1
        log.warning(
            "reflector %s: the API server refused shardSelector (%s); filtering client-side", self.name, e
        )
        return True

    async def _pause(self, seconds: float) -> None:
        """Sleep `seconds`, or less if the filter changes."""
        if self._waker.woken:
            return
        try:
            async with asyncio.timeout(seconds):
                await self._changed.wait()
        except TimeoutError:
            pass

    def _count(self, e: BaseException) -> None:
        kind = error_kind(e)
        self.stats.errors[kind] = self.stats.errors.get(kind, 0) + 1
