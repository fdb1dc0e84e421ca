"""The library's in-process store: each object's rendered lines, per family.

Invariant: **render on change, concatenate on scrape.** An object is rendered when
its watch event arrives and its bytes replace what it had; a scrape only joins
stored bytes, family by family, never rendering anything. Unlike the sharded
deployment there is no Redis, no bucket and no write batching: a change is visible
to the next scrape as soon as its event is handled.

Each kind keeps one dict, uid -> one `bytes` per object holding its lines in every
family of the kind (`pack`): a header of little-endian uint32 offsets, one more
than the families the kind had when the object was rendered, then the lines of
each family back to back (family i is `blob[end[i]:end[i + 1]]`, empty where the
object has none). Why one bytes object, not a tuple of lines:

- The cyclic garbage collector never walks it. A dict whose keys and values are
  all str and bytes is not tracked by the collector at all, whereas a dict of
  tuples is (a new tuple is tracked until a young collection looks at it), and a
  full collection then visits each of its 100,000 values: about 20 ms at 100,000
  objects, holding the operator's loop (docs/library.md, the event loop).
- It is smaller: one object header instead of a tuple and one bytes per family
  (about 35 bytes per family saved).
- One dict rather than one per family: 22 families' dicts would all grow (and
  copy themselves) on the same event.

A scrape pays one slice per line (`struct.unpack_from` of two offsets, then the
slice), about a fifth more CPU than indexing a tuple; it was measured against the
GC pause it removes (docs/library.md).

The objects of a kind are spread over `SLOTS` dicts by the hash of their uid. A
scrape reads one slot at a time as a snapshot (its values listed, then joined in
pieces of about `CHUNK_BYTES`), so it never sees a dict change size under it, and
never holds the loop for a whole kind: listing 100,000 values at once touched every
one of them and took about 10 ms, for each family. Listing touches each value (its
reference count), and a scrape walks 400 MB, far more than any cache: one list of
1,600 values (64 slots) took up to 1.7 ms during a scrape where the same list
took 0.05 ms warm, so a slot holds about 400 of 100,000 objects.

Everything runs on the event loop's thread.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from itertools import pairwise

from panopticon.render.exposition import FamilyHeader

CHUNK_BYTES = 32 * 1024
"""About the most one scrape chunk holds: what the scrape joins, compresses and
writes between two looks at the clock. The objects per chunk follow each family's
bytes per object (`chunks`), so a family with many lines per object (a status
family: 850 bytes per MongoDB) does not make chunks of 400 KB, 2-3 ms of work."""
CHUNK_OBJECTS = 512
"""Objects whose lines one scrape chunk joins at most."""
FIRST_CHUNK_OBJECTS = 16
"""Objects in a family's first chunk, before its bytes per object are known."""
SLOTS = 256
"""Dicts a kind's objects are spread over: a scrape lists one at a time (400
objects of 100,000), and each grows on its own."""

Lines = Sequence[bytes | None]
"""An object's lines per family of its kind, in the kind's `families` order."""

_OFFSET = 4
"""Bytes per offset of a packed object's header."""
_SPAN = struct.Struct("<II")
_FIRST = struct.Struct("<I")


def pack(lines: Lines) -> bytes:
    """One object's lines as the store keeps them (see the module docstring)."""
    offset = _OFFSET * (len(lines) + 1)
    ends = [offset]
    for line in lines:
        if line:
            offset += len(line)
        ends.append(offset)
    return struct.pack(f"<{len(ends)}I", *ends) + b"".join([line for line in lines if line])


def unpack(blob: bytes) -> tuple[bytes | None, ...]:
    """The lines `pack` was given (None where a family has no line)."""
    (header,) = _FIRST.unpack_from(blob)
    ends = struct.unpack_from(f"<{header // _OFFSET}I", blob)
    return tuple(blob[start:end] or None for start, end in pairwise(ends))


def _checked_span(at: int) -> Callable[[bytes, int], tuple[int, int]]:
    """`_SPAN.unpack_from` for blobs that may predate the family at offset `at`: an
    object packed with fewer families has an empty span in it."""
    need = at + 2 * _OFFSET
    first, span = _FIRST.unpack_from, _SPAN.unpack_from

    def checked(blob: bytes, offset: int) -> tuple[int, int]:
        if first(blob)[0] < need:
            return (0, 0)
        start, end = span(blob, offset)
        return start, end

    return checked


class KindLines:
    """uid -> the object's packed lines per family of one kind (in `families` order)."""

    def __init__(self) -> None:
        self.families: list[str] = []
        self._index: dict[str, int] = {}
        self._slots: list[dict[str, bytes]] = [{} for _ in range(SLOTS)]
        self._narrow = False
        """Some stored object may have been packed before the kind's last family was
        added (a generator's new family): its header is shorter, so reads check it."""
        self.left_out: Callable[[str], frozenset[str]] | None = None
        """Per family, the objects whose lines a scrape leaves out (a capped config's
        objects past its cap: `_embed/limits.py`); None: none is capped."""

    def __len__(self) -> int:
        return sum(map(len, self._slots))

    def index(self, family: str) -> int:
        """The family's position in this kind's objects (a new family is appended)."""
        position = self._index.get(family)
        if position is None:
            position = self._index[family] = len(self.families)
            self.families.append(family)
            self._narrow = self._narrow or any(self._slots)
        return position

    def has(self, family: str) -> bool:
        return family in self._index

    def put(self, uid: str, lines: Lines) -> None:
        """Store the object's lines (one per family of `families`, None where it has none)."""
        self._slots[hash(uid) % SLOTS][uid] = pack(lines)

    def remove(self, uid: str) -> None:
        self._slots[hash(uid) % SLOTS].pop(uid, None)

    def get(self, uid: str) -> tuple[bytes | None, ...] | None:
        blob = self._slots[hash(uid) % SLOTS].get(uid)
        return None if blob is None else unpack(blob)

    def chunks(self, family: str) -> Iterator[bytes]:
        """The family's lines in chunks of whole lines (a snapshot taken now). A chunk
        may be empty (no object of that stretch has the family): the caller skips it,
        but gets a turn between any two stretches."""
        position = self._index.get(family)
        if position is None:
            return
        skip = self.left_out(family) if self.left_out is not None else None
        at = _OFFSET * position
        span = _checked_span(at) if self._narrow else _SPAN.unpack_from
        count = FIRST_CHUNK_OBJECTS
        for slot in self._slots:
            values = list(slot.values()) if not skip else [v for u, v in slot.items() if u not in skip]
            begin = 0
            while begin < len(values):
                parts: list[bytes] = []
                add = parts.append
                stretch = values[begin : begin + count]
                for blob in stretch:
                    start, end = span(blob, at)
                    if end > start:
                        add(blob[start:end])
                begin += count
                chunk = b"".join(parts)
                # The next chunk's objects, from this one's bytes per object.
                count = max(1, min(CHUNK_OBJECTS, len(stretch) * CHUNK_BYTES // max(len(chunk), 1)))
                yield chunk

    def clear(self) -> None:
        for _ in self.release():
            pass

    def release(self) -> Iterator[None]:
        """Forget every object, one slot at a time: the caller gives the loop a turn at
        each step (100,000 objects' lines freed at once held it about 37 ms)."""
        for slot in self._slots:
            slot.clear()
            yield
        self._narrow = False


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
