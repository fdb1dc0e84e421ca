"""The scrape's gzip stream with each deflate engine: standard gzip, same bytes back."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from aggregator import compress
from aggregator.compress import BLOCK, gzip_stream, isal_level, resolve_engine
from tests.support import aio

BODY = b"".join(
    f'family_{i % 7}{{object="o-{i}",namespace="ns-{i % 13}"}} {i * 0.5}\n'.encode() for i in range(60_000)
)


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def compressed(engine: str, level: int, size: int) -> bytes:
    async def collect() -> bytes:
        with ThreadPoolExecutor(1) as pool:
            return b"".join(
                [c async for c in gzip_stream(chunked(BODY, size), level=level, executor=pool, engine=engine)]
            )

    return aio.run(collect())


@pytest.mark.parametrize("engine", ["isal", "zlib"])
@pytest.mark.parametrize("level", [1, 4, 9])
def test_each_engine_writes_one_standard_gzip_member(engine: str, level: int) -> None:
    assert len(BODY) > 4 * BLOCK  # several blocks in flight, and a tail
    out = compressed(engine, level, 4096)
    assert gzip.decompress(out) == BODY
    assert len(out) < len(BODY) / 2
    gunzip = shutil.which("gzip")
    if gunzip:  # the tool Prometheus users reach for, as a second reader
        assert subprocess.run([gunzip, "-dc"], input=out, capture_output=True, check=True).stdout == BODY


def test_empty_and_tiny_streams_are_valid_gzip() -> None:
    for engine in ("isal", "zlib"):

        async def collect(data: bytes, engine: str = engine) -> bytes:
            return b"".join([c async for c in gzip_stream(chunked(data, 10), engine=engine)])

        assert gzip.decompress(aio.run(collect(b""))) == b""
        assert gzip.decompress(aio.run(collect(b"a 1\n"))) == b"a 1\n"


def test_auto_prefers_isal_and_falls_back_to_zlib_without_the_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_engine("auto") == "isal"
    monkeypatch.setattr(compress, "isal_zlib", None)
    assert resolve_engine("auto") == "zlib"
    assert gzip.decompress(compressed("auto", 1, 65536)) == BODY
    with pytest.raises(ValueError, match="isal package is not installed"):
        resolve_engine("isal")


def test_unknown_engine_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown gzip engine 'lz4'"):
        resolve_engine("lz4")


def test_zlib_levels_map_onto_isal_levels() -> None:
    assert [isal_level(level) for level in range(1, 10)] == [1, 2, 2, 2, 2, 3, 3, 3, 3]


def test_the_aggregator_command_takes_the_engine_flag() -> None:
    from panopticon.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["aggregator", "--gzip-engine", "brotli"])
    assert exit_info.value.code == 2
