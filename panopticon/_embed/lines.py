"""The library's in-process store: each object's rendered lines, per family.

Invariant: **render on change, concatenate on scrape.** An object is rendered when
its watch event arrives and its bytes replace what it had; a scrape only joins
stored bytes, family by family, never rendering anything. Unlike the sharded
deployment there is no Redis, no bucket and no write batching: a change is visible
to the next scrape as soon as its event is handled.

Each kind keeps one dict, uid -> a tuple of the object's lines in each of the kind's
families (None where it has none), rather than one dict per family: a tuple costs 8
bytes per family where a dict entry costs about 50, and one dict grows (and copies
itself) once where 22 families' dicts would all grow on the same event, holding the
loop for tens of milliseconds at 100,000 objects.

The objects of a kind are spread over `SLOTS` dicts by the hash of their uid. A
scrape reads one slot at a time as a snapshot (its tuples listed, then joined in
pieces), so it never sees a dict change size under it, and never holds the loop for
a whole kind: listing 100,000 tuples at once touched every one of them and took
about 10 ms, for each family.

Everything runs on the event loop's thread.
"""

from __future__ import annotations

from collections.abc import Iterator

from panopticon.render.exposition import FamilyHeader

CHUNK_OBJECTS = 512
"""Objects whose lines one scrape chunk joins at most (about 50-100 KB of a
MongoDB-like family)."""
SLOTS = 64
"""Dicts a kind's objects are spread over: a scrape lists one at a time (1,600
objects of 100,000), and each grows on its own."""

Lines = tuple[bytes | None, ...]


class KindLines:
    """uid -> the object's lines per family of one kind (in `families` order)."""

    def __init__(self) -> None:
        self.families: list[str] = []
        self._index: dict[str, int] = {}
        self._slots: list[dict[str, Lines]] = [{} for _ in range(SLOTS)]

    def __len__(self) -> int:
        return sum(map(len, self._slots))

    def index(self, family: str) -> int:
        """The family's position in this kind's tuples (a new family is appended)."""
        position = self._index.get(family)
        if position is None:
            position = self._index[family] = len(self.families)
            self.families.append(family)
        return position

    def has(self, family: str) -> bool:
        return family in self._index

    def put(self, uid: str, lines: Lines) -> None:
        self._slots[hash(uid) % SLOTS][uid] = lines

    def remove(self, uid: str) -> None:
        self._slots[hash(uid) % SLOTS].pop(uid, None)

    def get(self, uid: str) -> Lines | None:
        return self._slots[hash(uid) % SLOTS].get(uid)

    def chunks(self, family: str) -> Iterator[bytes]:
        """The family's lines in chunks of whole lines (a snapshot taken now). A chunk
        may be empty (no object of that stretch has the family): the caller skips it,
        but gets a turn between any two stretches."""
        position = self._index.get(family)
        if position is None:
            return
        for slot in self._slots:
            values = list(slot.values())
            for start in range(0, len(values), CHUNK_OBJECTS):
                piece = values[start : start + CHUNK_OBJECTS]
                yield b"".join([line for v in piece if position < len(v) and (line := v[position])])

    def clear(self) -> None:
        for slot in self._slots:
            slot.clear()


class FamilyLines:
    """Every family's header and owner, and the kinds that hold lines."""

    def __init__(self) -> None:
        self._headers: dict[str, FamilyHeader] = {}
        self._owners: dict[str, str] = {}
        self.kinds: list[KindLines] = []

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

    def kind(self) -> KindLines:
        """A new kind's store."""
        kind = KindLines()
        self.kinds.append(kind)
        return kind

    def names(self) -> list[str]:
        """Every family some kind may hold lines in, in name order (the exposition's)."""
        return sorted({family for kind in self.kinds for family in kind.families})

    def chunks(self, family: str) -> Iterator[bytes]:
        for kind in self.kinds:
            yield from kind.chunks(family)

    def clear(self) -> None:
        self._headers.clear()
        self._owners.clear()
        self.kinds.clear()
