"""The isolation boundary around one config: what an unexpected error becomes.

Compiling one config (`program.compile_config`) and rendering one object under one
config (`Program.render`, per metric) each run inside a boundary: an exception that
is not one of the project's typed errors (a bug, or input nobody thought of) becomes
a finding or a `RenderError` marked as a fault, for that config (and object), never
an exception that reaches a reflector, a task group or the process. This module holds
what the boundary and its reporters share:

- `fault_text`: the one-line description of such an error (type and message, cut);
- `ErrorTally` and `ErrorLog`: per config, the series that failed to render since
  start, how many of them were faults, and the first message, which the config's
  status quotes; faults are logged at most once a minute per config, with the
  number left unlogged meanwhile;
- `merge_tallies`: the tallies of every shard (each publishes its own with its
  heartbeat) added up for the shard that writes the config's status.

Pure: no I/O; callers log the lines `ErrorLog.record` hands back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_FAULT_TEXT = 300
"""Longest fault description kept (an exception's message may quote a whole object)."""
LOG_INTERVAL = 60.0
"""Seconds between two logged faults of one config."""


def fault_text(doing: str, error: BaseException) -> str:
    """`unexpected TypeError while rendering: ...`, on one line, cut to MAX_FAULT_TEXT."""
    message = " ".join(str(error).split())
    text = f"unexpected {type(error).__name__} while {doing}" + (f": {message}" if message else "")
    return text if len(text) <= MAX_FAULT_TEXT else text[: MAX_FAULT_TEXT - 1] + "…"


def object_name(obj: Any) -> str:
    """`namespace/name` of an object for messages; `?` where either is not a string."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        return "?"
    name, namespace = meta.get("name"), meta.get("namespace")
    text = name[:253] if isinstance(name, str) else "?"
    return f"{namespace[:63]}/{text}" if isinstance(namespace, str) and namespace else text


@dataclass(slots=True)
class ErrorTally:
    """One config's render errors: series that failed, of which faults, and the first."""

    errors: int = 0
    faults: int = 0
    first: str = ""

    def encode(self) -> list[Any]:
        return [self.errors, self.faults, self.first]

    def add(self, other: ErrorTally) -> None:
        self.errors += other.errors
        self.faults += other.faults
        if not self.first:
            self.first = other.first


class ErrorLog:
    """Render errors by config since start, and which faults to log now (rate-limited)."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, interval: float = LOG_INTERVAL
    ) -> None:
        self.tallies: dict[str, ErrorTally] = {}
        self._clock = clock
        self._interval = interval
        self._logged_at: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def record(self, config: str, message: str, *, fault: bool) -> str | None:
        """Count one failed series of `config`; for a fault, the line to log now, if
        it is time to (else None: the fault is counted towards the next line)."""
        tally = self.tallies.get(config)
        if tally is None:
            tally = self.tallies[config] = ErrorTally()
        tally.errors += 1
        if not tally.first:
            tally.first = message[:MAX_FAULT_TEXT]
        if not fault:
            return None
        tally.faults += 1
        now = self._clock()
        last = self._logged_at.get(config)
        if last is not None and now - last < self._interval:
            self._unlogged[config] = self._unlogged.get(config, 0) + 1
            return None
        self._logged_at[config] = now
        skipped = self._unlogged.pop(config, 0)
        more = f" ({skipped} more since the last report)" if skipped else ""
        return f"config {config}: {message}{more}"

    def forget(self, config: str, *, entirely: bool = False) -> None:
        """The config changed: its counts start again (but not the log's rate limit,
        unless `entirely`: the config was deleted)."""
        self.tallies.pop(config, None)
        if entirely:
            self._logged_at.pop(config, None)
            self._unlogged.pop(config, None)

    def snapshot(self) -> dict[str, list[Any]]:
        """The tallies as heartbeat data: {config: [errors, faults, first]}."""
        return {config: tally.encode() for config, tally in self.tallies.items()}


def merge_tallies(snapshots: Iterable[Any]) -> dict[str, ErrorTally]:
    """Sum the `snapshot()`s of every shard; anything malformed is ignored (heartbeats
    are data another process wrote)."""
    merged: dict[str, ErrorTally] = {}
    for snapshot in snapshots:
        if not isinstance(snapshot, Mapping):
            continue
        for config, entry in snapshot.items():
            tally = _decode(entry)
            if isinstance(config, str) and tally is not None:
                merged.setdefault(config, ErrorTally()).add(tally)
    return merged


def _decode(entry: Any) -> ErrorTally | None:
    if not isinstance(entry, list) or len(entry) != 3:
        return None
    errors, faults, first = entry
    if type(errors) is not int or type(faults) is not int or not isinstance(first, str):
        return None
    return ErrorTally(errors, faults, first[:MAX_FAULT_TEXT])
