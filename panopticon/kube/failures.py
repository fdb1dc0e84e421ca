"""What a failed list or watch means for the reflector: retry, re-watch, relist, or drop a feature.

The reflector's loop (`panopticon.kube.reflector`) decides with these pure
classifications, which follow client-go's (`tools/cache/reflector.go`:
`isWatchErrorRetriable`, the watch-list fallback of `watchList`) so a server answers
Panopticon's shards as it answers a client-go controller.
"""

from __future__ import annotations

from panopticon.kube.errors import (
    ApiStatusError,
    BadRequestError,
    ExpiredError,
    InvalidError,
    KubeConnectionError,
    KubeError,
    ProtocolError,
    TooManyRequestsError,
    is_too_large_resource_version,
)


class WatchListFailed(Exception):
    """A watch-list failed before its initial events ended."""

    def __init__(self, cause: KubeError, *, unsupported: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.unsupported = unsupported


def rewatchable(e: KubeError) -> bool:
    """client-go `isWatchErrorRetriable`: 429 or connection refused retry the watch."""
    return isinstance(e, TooManyRequestsError) or (isinstance(e, KubeConnectionError) and e.refused)


def watch_list_unsupported(e: KubeError, received: int) -> bool:
    """Whether a watch-list failure says the server cannot serve watch-lists: 422/400 up
    front (the WatchList gate is off), or an ERROR as the first event (storage without
    progress notify), except the codes that mean "retry" (410, 429, 504)."""
    if received == 0:
        return isinstance(e, InvalidError | BadRequestError)
    transient = isinstance(e, ExpiredError | TooManyRequestsError) or is_too_large_resource_version(e)
    return received == 1 and isinstance(e, ApiStatusError) and not transient


def listed_identity(item: object) -> tuple[str, str]:
    meta = item.get("metadata") if isinstance(item, dict) else None
    uid = meta.get("uid") if isinstance(meta, dict) else None
    rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
    if not isinstance(uid, str) or not isinstance(rv, str):
        raise ProtocolError("a listed object has no metadata.uid or metadata.resourceVersion")
    return uid, rv


def refuses_shard_selector(e: KubeError) -> bool:
    """Whether `e` is a server refusing a `shardSelector`: a 400 or 422, or any status
    error that names it (1.36 answers an unparsable one with a plain error)."""
    named = "shardselector" in str(e).lower().replace(" ", "")
    return isinstance(e, BadRequestError | InvalidError) or (isinstance(e, ApiStatusError) and named)
