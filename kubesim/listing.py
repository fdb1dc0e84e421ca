"""LIST semantics: resourceVersion × resourceVersionMatch × paging (README.md, "LIST and paging").

`list_objects` is pure over the storage: it picks the snapshot revision as the
table in API Concepts says, reads a page in key order, filters it, and builds
continue tokens pinned to the snapshot. A request for a revision the storage has
not reached raises `NeedRevision`; the server waits and retries, then answers 504.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubesim import errors
from kubesim.config import SimConfig
from kubesim.encoding import ContinueError, decode_continue, encode_continue
from kubesim.options import EXACT, NOT_OLDER_THAN, ListOptions, parse_resource_version
from kubesim.storage import ObjVersion, ResourceStore, Storage

Filter = Callable[[ObjVersion], bool]

CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter."
)
INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token results "
    "in an inconsistent list - objects that were created, modified, or deleted between the time the "
    "first chunk was returned and now may show up in the list."
)
LIST_TOO_OLD = "The resourceVersion for the provided list is too old."


class NeedRevision(Exception):
    """The request needs revision `rev`, which the storage has not reached yet."""

    def __init__(self, rev: int) -> None:
        super().__init__(rev)
        self.rev = rev


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[ObjVersion]
    rev: int
    continue_token: str = ""
    remaining: int | None = None
    shard_selector: str | None = None

    def meta(self) -> dict[str, Any]:
        """`ListMeta` in Go's field order."""
        meta: dict[str, Any] = {"resourceVersion": str(self.rev)}
        if self.continue_token:
            meta["continue"] = self.continue_token
        if self.remaining is not None:
            meta["remainingItemCount"] = self.remaining
        if self.shard_selector is not None:
            meta["shardInfo"] = {"selector": self.shard_selector}
        return meta


def make_filter(opts: ListOptions, namespace: str) -> Filter | None:
    """One predicate for namespace, label, field and shard selection (None: all)."""
    label, field, shard = opts.label, opts.field, opts.shard
    if not namespace and label is None and field is None and shard is None:
        return None

    def accept(v: ObjVersion) -> bool:
        if namespace and v.namespace != namespace:
            return False
        if label is not None and not label.matches(v.labels):
            return False
        if field is not None and not field.matches(v.field_map()):
            return False
        return shard is None or shard.matches_hash(v.shard_hash(shard.key))

    return accept


def key_range(namespace: str) -> tuple[str, str]:
    """Keys of one namespace lie in [`ns/`, `ns0`) ('0' follows '/')."""
    return (f"{namespace}/", f"{namespace}0") if namespace else ("", "")


@dataclass(frozen=True, slots=True)
class _Snapshot:
    rev: int
    start: str  # absolute key to start from ("" = beginning)
    limit: int


def _snapshot(
    st: ResourceStore, storage: Storage, opts: ListOptions, namespace: str, cfg: SimConfig
) -> _Snapshot:
    """Pick the snapshot revision and page start per the API Concepts table."""
    rtype = st.rtype
    rv_text, match, limit = opts.resource_version, opts.match, opts.limit
    current = storage.revision
    if opts.continue_token:
        if rv_text not in ("", "0"):
            raise errors.bad_request("specifying resource version is not allowed when using continue")
        try:
            start, token_rv = decode_continue(opts.continue_token)
        except ContinueError as e:
            raise errors.bad_request(f"invalid continue token: {e}") from None
        absolute = f"{namespace}/{start}" if namespace else start
        if token_rv < 0:  # rv -1: continue inconsistently at the newest revision
            return _Snapshot(current, absolute, limit)
        if token_rv < storage.compacted:
            token = encode_continue(start, -1)
            raise errors.expired(INCONSISTENT_CONTINUE, reason=cfg.expired_reason, continue_token=token)
        return _Snapshot(token_rv, absolute, limit)
    rv = parse_resource_version(rv_text, rtype, watch=False)
    if rv_text == "0" and not cfg.rv0_honours_limit:
        limit = 0  # the watch cache ignores limit for RV=0 (computeListLimit)
    exact = match == EXACT or (not match and rv_text not in ("", "0") and limit > 0)
    if exact:
        if rv < storage.compacted:
            raise errors.expired(LIST_TOO_OLD, reason=cfg.expired_reason)
        if rv > current:
            raise NeedRevision(rv)
        return _Snapshot(rv, "", limit)
    if (match == NOT_OLDER_THAN or not match) and rv > current:
        raise NeedRevision(rv)
    return _Snapshot(current, "", limit)


def list_objects(
    st: ResourceStore, storage: Storage, opts: ListOptions, *, namespace: str, cfg: SimConfig
) -> ListResult:
    """Run one LIST request (one page when paging) against `st`."""
    namespace = namespace if st.rtype.namespaced else ""
    snap = _snapshot(st, storage, opts, namespace, cfg)
    rev, limit = snap.rev, snap.limit
    keys = st.sorted_keys()
    lo, hi = key_range(namespace)
    i = bisect.bisect_left(keys, max(lo, snap.start)) if (lo or snap.start) else 0
    end = bisect.bisect_left(keys, hi) if hi else len(keys)
    use_current = st.quiet_since(rev)
    current = st.current
    version_at = st.version_at
    selection = make_filter(opts, "")  # the key range already restricts the namespace
    items: list[ObjVersion] = []
    scanned = 0
    last_key = ""
    while i < end:
        key = keys[i]
        i += 1
        v = current.get(key) if use_current else version_at(key, rev)
        if v is None:
            continue
        scanned += 1
        last_key = key
        if selection is None or selection(v):
            items.append(v)
        if limit and (len(items) >= limit if cfg.fill_pages else scanned >= limit):
            break
    more = bool(limit) and _live_key_after(st, keys, i, end, rev=rev, use_current=use_current)
    token, remaining = "", None
    if more:
        relative = last_key[len(lo) :] if namespace else last_key
        token = encode_continue(relative + "\x00", rev)
        if not opts.has_selector:
            remaining = _count_live(st, keys, i, end, rev=rev, use_current=use_current)
    shard = opts.shard.normalized if (opts.shard is not None and cfg.sharding) else None
    return ListResult(items, rev, token, remaining, shard)


def _live_key_after(
    st: ResourceStore, keys: list[str], i: int, end: int, *, rev: int, use_current: bool
) -> bool:
    for j in range(i, end):
        if (st.current.get(keys[j]) if use_current else st.version_at(keys[j], rev)) is not None:
            return True
    return False


def _count_live(st: ResourceStore, keys: list[str], i: int, end: int, *, rev: int, use_current: bool) -> int:
    if use_current and st.simple():
        return end - i
    if use_current:
        return sum(1 for j in range(i, end) if keys[j] in st.current)
    return sum(1 for j in range(i, end) if st.version_at(keys[j], rev) is not None)
