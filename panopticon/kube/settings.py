"""How a reflector behaves: `ReflectorSettings`, frozen and parsed once at start-up.

Defaults are client-go's (`tools/cache/reflector.go`) unless a field says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from panopticon.kube.backoff import BackoffSettings
from panopticon.kube.lines import DEFAULT_MAX_LINE


@dataclass(frozen=True, slots=True)
class ReflectorSettings:
    """Reflector behaviour; defaults are client-go's unless said otherwise."""

    page_size: int = 500
    """LIST `limit` (client-go's pager default)."""
    watch_timeout: tuple[float, float] = (300.0, 600.0)
    """Seconds; each watch asks `timeoutSeconds` uniformly in [lo, hi) (client-go)."""
    inactivity_timeout: float | None = 120.0
    """Seconds without a byte after which a watch is presumed dead and re-opened from
    the last RV (servers send a bookmark about every 60 s; a quiet resource without
    bookmarks only costs a cheap re-watch). Not in client-go, which relies on TCP."""
    watch_list: bool = True
    """Sync with a watch-list when the server supports it (client-go `WatchListClient`,
    on since 1.35); the first unsupported answer switches this reflector to LIST."""
    max_internal_error_retry: float = 30.0
    """Seconds during which 500s re-watch instead of relisting
    (client-go `MaxInternalErrorRetryDuration`; 0 there by default)."""
    very_short_watch: float = 1.0
    """Seconds; a watch ending sooner without any event is an error (client-go)."""
    backoff: BackoffSettings = field(default_factory=BackoffSettings)
    max_line: int = DEFAULT_MAX_LINE
    """Bytes; the largest watch event accepted."""
    track_names: bool | None = None
    """Keep namespace and name per object so that deletes found by a relist carry them
    (about 150 bytes more per object). None: only for reflectors built without a shard
    filter (configs, CRDs, the StatefulSet: few objects, consumers that key by name);
    target kinds, which run with a filter, keep uid -> RV only."""
