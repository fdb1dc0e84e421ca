"""`ListOptions`: query parsing, watch-list defaulting and validation (README.md, "LIST and
paging" and "Watch-list").

Pure functions from a query mapping to a validated `ListOptions`, raising the
ApiError the apiserver would answer (400 for unparsable values and selectors,
422 for invalid combinations, per apimachinery `ValidateListOptions`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from kubesim import errors
from kubesim.config import SimConfig
from kubesim.errors import FieldError
from kubesim.resources import ResourceType
from kubesim.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    ShardSelector,
    parse_field_selector,
    parse_label_selector,
    parse_shard_selector,
)

_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})
_FALSE = frozenset({"0", "f", "F", "false", "FALSE", "False"})
EXACT = "Exact"
NOT_OLDER_THAN = "NotOlderThan"


@dataclass(frozen=True, slots=True)
class ListOptions:
    """A parsed, defaulted and validated list or watch request."""

    watch: bool = False
    resource_version: str = ""
    """"" when unset (Go does not tell unset from empty)."""
    match: str = ""
    limit: int = 0
    continue_token: str = ""
    label: LabelSelector | None = None
    field: FieldSelector | None = None
    shard: ShardSelector | None = None
    send_initial_events: bool | None = None
    allow_bookmarks: bool = False
    timeout_seconds: float | None = None

    @property
    def has_selector(self) -> bool:
        return self.label is not None or self.field is not None or self.shard is not None

    @property
    def is_watch_list(self) -> bool:
        return self.watch and bool(self.send_initial_events)


def parse_bool(name: str, value: str) -> bool:
    """Go's `strconv.ParseBool`, as the parameter codec uses it."""
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise errors.bad_request(f'strconv.ParseBool: parsing "{value}": invalid syntax (parameter {name})')


def _parse_int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(
            f'strconv.ParseInt: parsing "{value}": invalid syntax (parameter {name})'
        ) from None


def parse_list_options(
    query: Mapping[str, str],
    rtype: ResourceType,
    cfg: SimConfig,
    *,
    watch: bool | None = None,
) -> ListOptions:
    """Parse, default and validate `query` for a list or watch of `rtype`.

    Unknown parameters are ignored (the codec is not strict), and so is
    `shardSelector` while the ShardedListAndWatch gate is off.
    """
    is_watch = parse_bool("watch", query["watch"]) if watch is None and "watch" in query else bool(watch)
    sie_raw = query.get("sendInitialEvents")
    send_initial = parse_bool("sendInitialEvents", sie_raw) if sie_raw not in (None, "") else None
    rv = query.get("resourceVersion", "")
    match = query.get("resourceVersionMatch", "")
    try:
        label = parse_label_selector(query.get("labelSelector", ""))
        field = parse_field_selector(
            query.get("fieldSelector", ""),
            rtype.selectable_fields,
            typed_conversion=rtype.custom_field_conversion,
        )
    except SelectorError as e:
        raise errors.bad_request(str(e)) from None
    shard = None
    if cfg.sharding:
        if cfg.shard_selector_refused and query.get("shardSelector"):
            raise errors.unknown(cfg.shard_selector_error_code, "unable to parse shardSelector: refused")
        try:
            shard = parse_shard_selector(query.get("shardSelector", ""))
        except SelectorError as e:
            raise errors.unknown(cfg.shard_selector_error_code, str(e)) from None
    timeout = query.get("timeoutSeconds")
    opts = ListOptions(
        watch=is_watch,
        resource_version=rv,
        match=match,
        limit=max(0, _parse_int("limit", query["limit"])) if query.get("limit") else 0,
        continue_token=query.get("continue", ""),
        label=label,
        field=field,
        shard=shard,
        send_initial_events=send_initial,
        allow_bookmarks=parse_bool("allowWatchBookmarks", query["allowWatchBookmarks"])
        if query.get("allowWatchBookmarks")
        else False,
        timeout_seconds=float(_parse_int("timeoutSeconds", timeout)) if timeout else None,
    )
    opts = _default_watch_list(opts, enabled=cfg.watch_list)
    problems = validate(opts, watch_list_enabled=cfg.watch_list)
    if problems:
        raise errors.invalid_list_options(problems)
    return opts


def _default_watch_list(opts: ListOptions, *, enabled: bool) -> ListOptions:
    """`SetListOptionsDefaults`: a legacy RV ""/"0" watch becomes a watch-list."""
    if not enabled or not opts.watch or opts.send_initial_events is not None or opts.match:
        return opts
    if opts.resource_version in ("", "0"):
        return dataclasses.replace(opts, send_initial_events=True, match=NOT_OLDER_THAN)
    return opts


def validate(opts: ListOptions, *, watch_list_enabled: bool) -> list[FieldError]:
    """apimachinery `ValidateListOptions` / `validateWatchOptions`."""
    out: list[FieldError] = []
    match = opts.match
    if opts.watch:
        if opts.send_initial_events is not None:
            if match != NOT_OLDER_THAN:
                out.append(
                    FieldError(
                        "Forbidden",
                        "resourceVersionMatch",
                        f"sendInitialEvents requires setting resourceVersionMatch to {NOT_OLDER_THAN}",
                    )
                )
            if not watch_list_enabled:
                out.append(
                    FieldError(
                        "Forbidden",
                        "sendInitialEvents",
                        "sendInitialEvents is forbidden for watch unless the WatchList feature gate is "
                        "enabled",
                    )
                )
        if match:
            if opts.send_initial_events is None:
                out.append(
                    FieldError(
                        "Forbidden",
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                    )
                )
            if match != NOT_OLDER_THAN:
                out.append(
                    FieldError(
                        "NotSupported", "resourceVersionMatch", value=match, supported=(NOT_OLDER_THAN,)
                    )
                )
            if opts.continue_token:
                out.append(
                    FieldError(
                        "Forbidden",
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden when continue is provided",
                    )
                )
        return out
    if match:
        if not opts.resource_version:
            out.append(
                FieldError(
                    "Forbidden",
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                )
            )
        if opts.continue_token:
            out.append(
                FieldError(
                    "Forbidden",
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                )
            )
        if match not in (EXACT, NOT_OLDER_THAN):
            out.append(
                FieldError(
                    "NotSupported", "resourceVersionMatch", value=match, supported=(EXACT, NOT_OLDER_THAN, "")
                )
            )
        if match == EXACT and opts.resource_version == "0":
            out.append(
                FieldError(
                    "Forbidden",
                    "resourceVersionMatch",
                    'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
                )
            )
    if opts.send_initial_events is not None:
        out.append(FieldError("Forbidden", "sendInitialEvents", "sendInitialEvents is forbidden for list"))
    return out


def parse_resource_version(rv: str, rtype: ResourceType, *, watch: bool) -> int:
    """The versioner's `ParseResourceVersion`: "" and "0" are 0.

    An unparsable value is 422 Invalid on watch (`InterpretWatchError`); on list the
    raw storage error surfaces, as a Status without reason and code 500.
    """
    if rv in ("", "0"):
        return 0
    try:
        value = int(rv, 10)
        if value < 0 or not rv.isdigit():
            raise ValueError
        return value
    except ValueError:
        problem = FieldError(
            "Invalid", "resourceVersion", f'strconv.ParseUint: parsing "{rv}": invalid syntax', value=rv
        )
        if watch:
            raise errors.invalid([problem], kind=rtype.plural, group=rtype.group) from None
        raise errors.unknown(500, str(problem)) from None
