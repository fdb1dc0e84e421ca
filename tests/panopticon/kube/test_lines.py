"""The line splitter: any chunking, multi-megabyte lines, UTF-8 cut anywhere, a bound."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panopticon.kube.errors import LineTooLongError
from panopticon.kube.lines import LineSplitter, split_lines
from tests.support.aio import asynctest


def split_all(chunks: list[bytes], *, max_line: int = 1 << 30) -> list[bytes]:
    splitter = LineSplitter(max_line=max_line)
    return [line for chunk in chunks for line in splitter.feed(chunk)]


def cut(data: bytes, points: list[int]) -> list[bytes]:
    bounds = [0, *sorted({p for p in points if 0 < p < len(data)}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n"), max_size=60)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(TEXT.filter(bool), max_size=12), points=st.lists(st.integers(0, 2000), max_size=40))
def test_any_chunking_yields_the_same_lines(lines: list[str], points: list[int]) -> None:
    data = b"".join(line.encode() + b"\n" for line in lines)
    assert [b.decode() for b in split_all(cut(data, points))] == lines


def test_chunks_cut_inside_utf8_sequences_rejoin_exactly() -> None:
    events = [orjson.dumps({"type": "ADDED", "object": {"data": "ü✓日本🎉" * i}}) for i in range(1, 30)]
    data = b"\n".join(events) + b"\n"
    inside = [i for i, b in enumerate(data) if 0x80 <= b <= 0xBF]  # continuation bytes
    out = split_all(cut(data, inside))
    assert out == events
    assert [orjson.loads(line) for line in out][-1]["object"]["data"].endswith("🎉")


def test_a_line_of_many_megabytes_in_small_chunks_is_joined_once() -> None:
    big = orjson.dumps({"type": "MODIFIED", "object": {"blob": "x" * (20 * 1024 * 1024)}})
    data = b'{"type":"ADDED"}\n' + big + b"\n" + b'{"type":"DELETED"}\n'
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    out = split_all(chunks)
    assert out[0] == b'{"type":"ADDED"}' and out[1] == big and out[2] == b'{"type":"DELETED"}'


def test_several_lines_in_one_chunk_and_empty_lines_are_dropped() -> None:
    assert split_all([b"a\n\nb\nc", b"d\n\n"]) == [b"a", b"b", b"cd"]


def test_a_line_over_the_bound_raises() -> None:
    splitter = LineSplitter(max_line=100)
    splitter.feed(b"x" * 60)
    with pytest.raises(LineTooLongError):
        splitter.feed(b"y" * 60)


def test_a_completed_line_over_the_bound_raises() -> None:
    splitter = LineSplitter(max_line=100)
    splitter.feed(b"x" * 90)
    with pytest.raises(LineTooLongError):
        splitter.feed(b"y" * 20 + b"\n")


@asynctest
async def test_split_lines_batches_per_chunk_and_drops_an_unfinished_tail() -> None:
    rng = random.Random(5)
    lines = [f"event-{i}-{'é' * rng.randrange(50)}".encode() for i in range(200)]
    data = b"\n".join(lines) + b"\n" + b'{"truncated'
    pieces = cut(data, [rng.randrange(len(data)) for _ in range(300)])

    async def chunks() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    out = [line async for batch in split_lines(chunks()) for line in batch]
    assert out == lines
