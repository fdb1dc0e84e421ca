"""What a reflector counts, for self-metrics: `ReflectorStats` and error kinds."""

from __future__ import annotations

from dataclasses import dataclass, field

from panopticon.kube.errors import (
    ApiStatusError,
    ExpiredError,
    InternalServerError,
    KubeConnectionError,
    ProtocolError,
    StreamBrokenError,
    TooManyRequestsError,
    VeryShortWatchError,
    WatchTimeoutError,
    is_too_large_resource_version,
)


@dataclass(slots=True)
class ReflectorStats:
    """Counters for self-metrics."""

    events: dict[str, int] = field(
        default_factory=lambda: {"ADDED": 0, "MODIFIED": 0, "DELETED": 0, "SYNCED": 0}
    )
    lines: int = 0
    """Watch lines received."""
    skipped: int = 0
    """Watch lines skipped unparsed: objects of other shards."""
    bookmarks: int = 0
    syncs: int = 0
    """Completed syncs (LIST or watch-list); every one after the first is a relist."""
    list_syncs: int = 0
    watch_list_syncs: int = 0
    watches: int = 0
    """Watch requests sent."""
    watch_restarts: int = 0
    """Re-watches from the last RV without a relist (normal ends, timeouts, drops)."""
    errors: dict[str, int] = field(default_factory=dict)
    """By kind: expired, too_large_rv, too_many_requests, internal, refused, connection,
    stream_broken, inactivity, short_watch, protocol, http_<code>, ..."""

    @property
    def decoded(self) -> int:
        """Watch lines parsed in full."""
        return self.lines - self.skipped

    @property
    def relists(self) -> int:
        return max(0, self.syncs - 1)


def error_kind(e: BaseException) -> str:
    """The key of `ReflectorStats.errors` that `e` counts under."""
    if isinstance(e, ExpiredError):
        return "expired"
    if is_too_large_resource_version(e):
        return "too_large_rv"
    if isinstance(e, StreamBrokenError):
        return "stream_broken"
    if isinstance(e, KubeConnectionError):
        return "refused" if e.refused else "connection"
    if isinstance(e, WatchTimeoutError):
        return "inactivity"
    if isinstance(e, VeryShortWatchError):
        return "short_watch"
    if isinstance(e, ProtocolError):
        return "protocol"
    if isinstance(e, TooManyRequestsError):
        return "too_many_requests"
    if isinstance(e, InternalServerError):
        return "internal"
    if isinstance(e, ApiStatusError):
        return f"http_{e.code}"
    return type(e).__name__
