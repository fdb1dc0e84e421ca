"""The library's in-process store: each object's rendered lines, per family.

Invariant: **render on change, concatenate on scrape.** An object is rendered when
its watch event arrives and its bytes replace what it had; a scrape only joins
stored bytes, family by family, never rendering anything. Unlike the sharded
deployment there is no Redis, no bucket and no write batching: a change is visible
to the next scrape as soon as its event is handled.

Everything runs on the event loop's thread. A scrape reads a family as a snapshot
(its values listed once) and joins it in pieces, so it never sees a dict change
size under it and never holds the loop for a whole family of 100,000 objects.
"""

from __future__ import annotations

from collections.abc import Iterator

from panopticon.exposition import FamilyHeader

CHUNK_OBJECTS = 512
"""Objects whose lines one scrape chunk joins (about 50-100 KB of a MongoDB-like
family): the unit of work between two returns to the event loop."""


class FamilyLines:
    """family -> {object uid -> that object's lines of the family}, and the headers."""

    def __init__(self) -> None:
        self._families: dict[str, dict[str, bytes]] = {}
        self._headers: dict[str, FamilyHeader] = {}
        self._owners: dict[str, str] = {}

    def declare(self, header: FamilyHeader, owner: str) -> str:
        """Register a family's header under `owner` (a config or a generator); the
        first owner keeps it. Returns the owner the family has."""
        current = self._owners.get(header.name)
        if current is None:
            self._headers[header.name] = header
            self._owners[header.name] = current = owner
        return current

    def owner(self, family: str) -> str | None:
        return self._owners.get(family)

    def header(self, family: str) -> FamilyHeader:
        return self._headers[family]

    def put(self, family: str, uid: str, lines: bytes) -> None:
        fields = self._families.get(family)
        if fields is None:
            fields = self._families[family] = {}
        fields[uid] = lines

    def remove(self, family: str, uid: str) -> None:
        fields = self._families.get(family)
        if fields is not None:
            fields.pop(uid, None)

    def names(self) -> list[str]:
        """The families that have lines now, in name order (the exposition's order)."""
        return sorted(name for name, fields in self._families.items() if fields)

    def chunks(self, family: str) -> Iterator[bytes]:
        """The family's lines in chunks of whole lines (a snapshot taken now)."""
        values = list(self._families.get(family, {}).values())
        for start in range(0, len(values), CHUNK_OBJECTS):
            yield b"".join(values[start : start + CHUNK_OBJECTS])

    def clear(self) -> None:
        self._families.clear()
        self._headers.clear()
        self._owners.clear()
