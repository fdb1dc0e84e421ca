"""gzip for the scrape stream, off the event loop, with the fastest deflate available.

Compression costs more CPU than everything else in a scrape. Two things keep it near
the cost of reading the store:

- **The engine.** ISA-L (the `isal` wheel, Intel's assembly deflate) compresses
  exposition text several times faster than zlib at level 1, and smaller
  (`benchmarks/gzip_engines.py`, 23 MB of series lines: zlib 1 366 ms, ratio 0.287;
  isal 1 35 ms, ratio 0.256; zlib-ng, measured beside them once, was 1.9x zlib's
  speed at ratio 0.379). Its output is an ordinary gzip member that Prometheus and
  `gzip -d` read. zlib stays the fallback when the wheel is missing (a platform
  without one) or is chosen with `--gzip-engine zlib`.
- **The overlap.** Both engines release the GIL, so blocks are compressed in a
  worker thread while the event loop reads the next ones from the store: the two run
  on two cores. Small chunks are gathered first, to pay for one thread hop per
  `BLOCK` bytes rather than per chunk.

Levels are zlib's 1-9 on the command line. ISA-L has levels 0-3: 1 maps to 1, 2-5 to
2 and 6-9 to 3, each at least as small as the zlib level it stands for on this data.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from types import ModuleType
from typing import Protocol

isal_zlib: ModuleType | None
try:
    from isal import isal_zlib
except ImportError:  # pragma: no cover - the wheel is a dependency; platforms without one fall back
    isal_zlib = None

BLOCK = 256 * 1024
"""Bytes gathered before a compression call: large enough to amortise the thread
hop, small enough to keep the first byte early and memory low."""

ENGINES = ("auto", "isal", "zlib")


class Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...
    def flush(self, mode: int = ..., /) -> bytes: ...


def isal_level(level: int) -> int:
    """ISA-L's level for a zlib level 1-9."""
    return 1 if level <= 1 else 2 if level <= 5 else 3


def resolve_engine(engine: str) -> str:
    """The engine actually used: `auto` is isal when its wheel imports, else zlib."""
    if engine not in ENGINES:
        raise ValueError(f"unknown gzip engine {engine!r} (one of {', '.join(ENGINES)})")
    if engine == "auto":
        return "isal" if isal_zlib is not None else "zlib"
    if engine == "isal" and isal_zlib is None:
        raise ValueError("--gzip-engine isal: the isal package is not installed")
    return engine


def compressor_factory(engine: str, level: int) -> Callable[[], Compressor]:
    """A function making one gzip-member compressor per scrape."""
    if resolve_engine(engine) == "isal":
        assert isal_zlib is not None
        isal = isal_zlib
        mapped = isal_level(level)
        return lambda: isal.compressobj(mapped, isal.DEFLATED, 31)
    return lambda: zlib.compressobj(level, zlib.DEFLATED, 31)


async def gzip_stream(
    chunks: AsyncIterator[bytes],
    *,
    level: int = 1,
    executor: Executor | None = None,
    engine: str = "auto",
) -> AsyncIterator[bytes]:
    """Compress `chunks` as one gzip member, one block in flight while the next is read."""
    loop = asyncio.get_running_loop()
    compressor = compressor_factory(engine, level)()
    pending: asyncio.Future[bytes] | None = None
    buffer: list[bytes] = []
    size = 0
    async for chunk in chunks:
        buffer.append(chunk)
        size += len(chunk)
        if size < BLOCK:
            continue
        block = b"".join(buffer)
        buffer, size = [], 0
        if pending is not None:
            out = await pending
            if out:
                yield out
        pending = loop.run_in_executor(executor, compressor.compress, block)
    if pending is not None:
        out = await pending
        if out:
            yield out
    tail = compressor.compress(b"".join(buffer)) if buffer else b""
    yield tail + compressor.flush()
