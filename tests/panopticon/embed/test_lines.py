"""The library's store of rendered lines: packing, a kind that gains a family, and
what it costs the cyclic garbage collector."""

from __future__ import annotations

import gc
from itertools import pairwise

from panopticon._embed.lines import CHUNK_BYTES, SLOTS, KindLines, pack, unpack


def references_a_full_collection_visits() -> int:
    """What a full collection's traversal walks: every reference held by a tracked object."""
    return sum(len(gc.get_referents(o)) for o in gc.get_objects())


def test_packed_lines_unpack_to_what_was_stored() -> None:
    lines = (b'a{x="1"} 1\n', None, b"", b'c{x="\\n"} 2\nc{x="2"} 3\n')
    assert unpack(pack(lines)) == (b'a{x="1"} 1\n', None, None, b'c{x="\\n"} 2\nc{x="2"} 3\n')
    assert unpack(pack(())) == ()


def test_chunks_serve_each_family_s_lines_and_objects_packed_before_a_new_family_have_none() -> None:
    kind = KindLines()
    kind.index("alpha")
    kind.index("beta")
    for i in range(300):
        kind.put(f"old-{i}", (f"alpha {i}\n".encode(), None if i % 3 else f"beta {i}\n".encode()))
    assert kind.index("gamma") == 2  # a generator's new family: older objects were packed without it
    for i in range(200):
        kind.put(f"new-{i}", (None, f"beta n{i}\n".encode(), f"gamma {i}\n".encode()))
    kind.remove("old-0")
    kind.put("old-1", (b"alpha replaced\n", None, None))

    def served(family: str) -> set[bytes]:
        return {line for chunk in kind.chunks(family) for line in chunk.splitlines(keepends=True)}

    assert served("alpha") == {f"alpha {i}\n".encode() for i in range(2, 300)} | {b"alpha replaced\n"}
    assert served("beta") == {f"beta {i}\n".encode() for i in range(3, 300, 3)} | {
        f"beta n{i}\n".encode() for i in range(200)
    }
    assert served("gamma") == {f"gamma {i}\n".encode() for i in range(200)}
    assert list(kind.chunks("unknown")) == []
    assert kind.get("old-1") == (b"alpha replaced\n", None, None)
    assert kind.get("old-2") == (b"alpha 2\n", None) and kind.get("old-0") is None
    assert len(kind) == 499


def test_a_chunk_holds_about_chunk_bytes_whatever_a_family_s_bytes_per_object() -> None:
    """A scrape joins, compresses and writes one chunk between two looks at the clock
    (docs/library.md, the event loop): a family with long lines must not make chunks
    of as many objects as one with short lines (a status family of 850 bytes per
    MongoDB made 430 KB chunks, 2-3 ms of work), and short lines must not be cut into
    many small chunks either (each costs a compression call and a turn)."""
    kind = KindLines()
    kind.index("long")
    kind.index("short")
    pad = "x" * 2000
    expected_long, expected_short = set(), set()
    for i in range(5000):
        long_line, short_line = f'long{{i="{i:05d}",pad="{pad}"}} 1\n'.encode(), f"short {i}\n".encode()
        expected_long.add(long_line)
        expected_short.add(short_line)
        kind.put(f"uid-{i:05d}", (long_line, short_line))

    long_chunks, short_chunks = list(kind.chunks("long")), list(kind.chunks("short"))
    assert {line for c in long_chunks for line in c.splitlines(keepends=True)} == expected_long
    assert sum(c.count(b"\n") for c in long_chunks) == 5000
    assert max(map(len, long_chunks)) <= CHUNK_BYTES
    assert {line for c in short_chunks for line in c.splitlines(keepends=True)} == expected_short
    assert len(short_chunks) <= SLOTS + 1  # after the first, one chunk per slot


def test_release_forgets_every_object_one_slot_per_step() -> None:
    """`stop()` frees a kind's lines a slot at a time, giving the loop a turn at each
    step (docs/library.md, the event loop): each step forgets one slot, and nothing
    is left at the end."""
    kind = KindLines()
    kind.index("alpha")
    for i in range(4000):
        kind.put(f"uid-{i:04d}", (f"alpha {i}\n".encode(),))
    left = []
    for _ in kind.release():
        left.append(len(kind))
    assert len(left) == SLOTS
    assert left[0] < 4000 and all(a >= b for a, b in pairwise(left)) and left[-1] == 0
    assert len(kind) == 0 and b"".join(kind.chunks("alpha")) == b""


def test_stored_objects_add_nothing_for_a_full_collection_to_walk() -> None:
    """The GC pause of docs/library.md: a full collection visits every reference of
    every tracked container. A dict of tuples of lines (the old layout) is tracked
    from its first new tuple until the next full collection, so while objects keep
    changing every full collection visited one reference per object (20,000 here);
    the packed lines add none, whatever the count."""
    kind = KindLines()
    families = [kind.index(f"family_{i}") for i in range(22)]
    gc.collect()
    before = references_a_full_collection_visits()
    for i in range(20_000):
        kind.put(f"uid-{i:05d}", tuple(f"family_{f}{{i={i}}} 1\n".encode() for f in families))
    gc.collect(1)  # young collections only, as between two full ones
    added = references_a_full_collection_visits() - before
    assert len(kind) == 20_000
    assert added < SLOTS * 4, f"the store added {added} references to the cyclic GC's walk"
