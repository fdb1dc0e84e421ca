"""A paged LIST, as client-go's pager (`tools/pager/pager.go`) runs it.

Pages of `page_size` items follow `continue` tokens; later pages drop
`resourceVersion` and `resourceVersionMatch` (the token pins the snapshot). When a
token expires (410 on page two or later, history compacted meanwhile) the pager
falls back to one full LIST with the original options (`FullListIfExpired`); that
page comes with `restarted=True`, telling the caller to forget what earlier pages
of this LIST said, because it is a new snapshot. Pages are yielded one by one, so
a big collection is never held in memory at once (KSM#2302's start-up spike).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

from panopticon.kube.client import KubeClient
from panopticon.kube.errors import ExpiredError, ProtocolError

_SNAPSHOT_KEYS = ("resourceVersion", "resourceVersionMatch")


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    resource_version: str
    """The snapshot's RV (the same on every page of one LIST)."""
    restarted: bool = False
    """The pager fell back to a full LIST: earlier pages belong to another snapshot."""
    shard_info: Mapping[str, Any] | None = None
    """`metadata.shardInfo`: present when the server applied a `shardSelector`."""
    continue_token: str = ""


async def list_pages(
    client: KubeClient,
    path: str,
    params: Mapping[str, str],
    *,
    page_size: int = 500,
    full_list_if_expired: bool = True,
) -> AsyncGenerator[Page, None]:
    """The pages of one LIST of `path` with `params` (RV, selectors)."""
    first = dict(params)
    if page_size:
        first["limit"] = str(page_size)
    page = _page(await client.list_page(path, first), path)
    yield page
    token = page.continue_token
    rest = {k: v for k, v in params.items() if k not in _SNAPSHOT_KEYS}
    while token:
        try:
            raw = await client.list_page(path, {**rest, "limit": str(page_size), "continue": token})
        except ExpiredError:
            if not full_list_if_expired:
                raise
            full = _page(await client.list_page(path, dict(params)), path)
            yield Page(full.items, full.resource_version, True, full.shard_info)
            return
        page = _page(raw, path)
        token = page.continue_token
        yield page


def _page(raw: dict[str, Any], path: str) -> Page:
    meta = raw.get("metadata")
    if not isinstance(meta, dict):
        raise ProtocolError(f"LIST {path}: no metadata")
    rv = meta.get("resourceVersion")
    if not isinstance(rv, str):
        raise ProtocolError(f"LIST {path}: no metadata.resourceVersion")
    items = raw.get("items") or []
    shard = meta.get("shardInfo")
    token = meta.get("continue")
    return Page(
        items, rv, False, shard if isinstance(shard, dict) else None, token if isinstance(token, str) else ""
    )
