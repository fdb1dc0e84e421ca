"""gzip engines on exposition text: time and size per engine and level, same run.

The scrape path compresses what the store holds: series lines of ~110 B with long
label values. This benchmark builds such lines (seeded), compresses them in 1 MiB
blocks as `aggregator.compress.gzip_stream` does, and reports best-of-R milliseconds,
MB/s and the compressed/plain ratio for zlib levels 1-9 and the ISA-L level each maps
to (plus zlib-ng when its wheel happens to be installed; it is not a dependency).
Every output is checked by the standard library's `gzip.decompress`.

    .venv/bin/python benchmarks/gzip_engines.py [--series 200000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import functools
import gzip
import random
import sys
import time
import zlib
from collections.abc import Callable
from typing import Any

from aggregator.compress import isal_level, isal_zlib


def exposition(series: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    lines = []
    for i in range(series):
        uid = f"{rng.getrandbits(64):016x}-{rng.getrandbits(32):08x}"
        lines.append(
            f'kubedb_com_mongodb_spec_replicas{{mongodb="mg-{rng.randrange(10**6)}-{i}",'
            f'namespace="ns-{i % 37}",uid="{uid}"}} {rng.randrange(1000)}\n'.encode()
        )
    return b"".join(lines)


def measure(data: bytes, make: Callable[[], Any], repeats: int) -> tuple[float, int]:
    best, out = float("inf"), b""
    blocks = [data[i : i + (1 << 20)] for i in range(0, len(data), 1 << 20)]
    for _ in range(repeats):
        compressor = make()
        start = time.perf_counter()
        parts = [compressor.compress(block) for block in blocks]
        parts.append(compressor.flush())
        best = min(best, time.perf_counter() - start)
        out = b"".join(parts)
    if gzip.decompress(out) != data:
        raise SystemExit("round trip failed")
    return best, len(out)


def engines() -> list[tuple[str, Callable[[], Any]]]:
    """(name, compressor factory) for every engine and level measured."""
    found: list[tuple[str, Callable[[], Any]]] = [
        (f"zlib {lv}", functools.partial(zlib.compressobj, lv, zlib.DEFLATED, 31)) for lv in range(1, 10)
    ]
    if isal_zlib is not None:
        found += [
            (f"isal {lv}", functools.partial(isal_zlib.compressobj, lv, isal_zlib.DEFLATED, 31))
            for lv in range(4)
        ]
    try:
        from zlib_ng import zlib_ng  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        found.append(("zlib-ng 1", functools.partial(zlib_ng.compressobj, 1, zlib_ng.DEFLATED, 31)))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = exposition(args.series)
    print(f"python {sys.version.split()[0]}; {len(data) / 1e6:.1f} MB of exposition, {args.series} series")
    rows = [(name, *measure(data, make, args.repeats)) for name, make in engines()]
    base = rows[0][1]
    print(f"{'engine':10s} {'ms':>8s} {'MB/s':>8s} {'ratio':>6s} {'vs zlib 1':>9s}")
    for name, seconds, size in rows:
        speed = len(data) / seconds / 1e6
        print(f"{name:10s} {seconds * 1e3:8.1f} {speed:8.1f} {size / len(data):6.3f} {base / seconds:8.2f}x")
    print(
        "the aggregator maps zlib levels to isal: "
        + ", ".join(f"{lv}->{isal_level(lv)}" for lv in range(1, 10))
    )
    command = f"benchmarks/gzip_engines.py --series {args.series} --repeats {args.repeats}"
    print(f"reproduce: .venv/bin/python {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
