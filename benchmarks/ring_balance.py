"""Ownership balance, movement and contiguity over real-looking uids (deterministic, seeded).

For N = 1..64 shards, two ownerships side by side:
- `ranges`: the shards' ownership (panopticon.sharding.ring over panopticon.sharding.ranges, contiguous
  bucket ranges built one shard at a time);
- `hash-ring`: classic consistent hashing with 32 points per shard (md5 of
  `shard-i#j`, a bucket goes to the next point clockwise of md5 of its name), what the
  shards used before (through the `hashring` library) and what most sharded exporters
  do;

and for each: max/mean objects per shard, the share of objects that move going from
N-1 to N shards and back (in units of the ideal 1/N), and the most ranges of the hash
space any shard owns, which is what a `shardRange` selector has to list (at most 32
terms are sent; `sel` is how much of the hash space the 32-term cover of the worst
shard asks for, in units of what it owns: 1.00 means the server sends only its
objects).

    .venv/bin/python benchmarks/ring_balance.py [--objects 100000] [--seed 1] [--max-shards 64]
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import random
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from panopticon.sharding.buckets import MAX_SELECTOR_RANGES, BucketSpace
from panopticon.sharding.ranges import cover
from panopticon.sharding.ring import Ring

Owners = Callable[[int], Sequence[int]]


@dataclass
class Row:
    shards: int
    balance: float
    moved_up: float | None
    moved_down: float | None
    ranges: int
    selector: float


def runs(owners: Sequence[int], shard: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for b, owner in enumerate(owners):
        if owner != shard:
            continue
        if out and out[-1][1] == b:
            out[-1] = (out[-1][0], b + 1)
        else:
            out.append((b, b + 1))
    return out


def measure(per_bucket: list[int], owners_of: Owners, max_shards: int) -> list[Row]:
    objects = sum(per_bucket)
    rows: list[Row] = []
    previous: Sequence[int] | None = None
    for n in range(1, max_shards + 1):
        owners = owners_of(n)
        loads = [0] * n
        for bucket, count in enumerate(per_bucket):
            loads[owners[bucket]] += count
        moved = None
        if previous is not None:
            moved = sum(c for b, c in enumerate(per_bucket) if previous[b] != owners[b]) / objects * n
        shard_runs = [runs(owners, s) for s in range(n)]
        worst = max(range(n), key=lambda s: len(shard_runs[s]))
        covered = cover(shard_runs[worst], MAX_SELECTOR_RANGES)
        owned = sum(e - s for s, e in shard_runs[worst])
        asked = sum(e - s for s, e in covered)
        rows.append(
            Row(n, max(loads) / (objects / n), moved, moved, len(shard_runs[worst]), asked / max(owned, 1))
        )
        previous = owners
    return rows


def ring_owners(ring: Ring) -> list[int]:
    """The owner of every bucket of a `panopticon.sharding.ring.Ring`."""
    return [ring.owner(b) for b in range(ring.space.count)]


def hash_ring_owners(shards: int, buckets: int, points: int = 32) -> list[int]:
    """Classic consistent hashing: `points` points per shard on an md5 circle."""
    circle = sorted(
        (int.from_bytes(hashlib.md5(f"shard-{i}#{j}".encode()).digest()[:8], "big"), i)
        for i in range(shards)
        for j in range(points)
    )
    keys = [k for k, _ in circle]
    owners = []
    for b in range(buckets):
        h = int.from_bytes(hashlib.md5(f"bucket-{b}".encode()).digest()[:8], "big")
        owners.append(circle[bisect.bisect(keys, h) % len(circle)][1])
    return owners


def bucket_counts(objects: int, seed: int, space: BucketSpace) -> list[int]:
    """Objects per bucket for `objects` random v4 uids (seeded)."""
    rng = random.Random(seed)
    per_bucket = [0] * space.count
    for _ in range(objects):
        per_bucket[space.bucket(str(uuid.UUID(int=rng.getrandbits(128), version=4)))] += 1
    return per_bucket


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-shards", type=int, default=64)
    args = parser.parse_args()
    space = BucketSpace()
    per_bucket = bucket_counts(args.objects, args.seed, space)
    contenders: dict[str, Owners] = {
        "ranges": lambda n: ring_owners(Ring(n, n, space)),
        "hash-ring": lambda n: hash_ring_owners(n, space.count),
    }
    results = {name: measure(per_bucket, fn, args.max_shards) for name, fn in contenders.items()}
    print(f"{args.objects} objects, {space.count} buckets; moved in units of the ideal 1/N")
    print(f"{'':6s}" + "".join(f"| {name:^36s}" for name in results))
    print(f"{'shards':6s}" + "| max/mean  moved   ranges    sel    " * len(results))
    for i in range(args.max_shards):
        line = f"{i + 1:6d}"
        for rows in results.values():
            r = rows[i]
            moved = "" if r.moved_up is None else f"{r.moved_up:.3f}"
            line += f"| {r.balance:8.3f}  {moved:6s}  {r.ranges:6d}  {r.selector:6.2f}    "
        print(line)
    for name, rows in results.items():
        worst_balance = max(r.balance for r in rows)
        worst_moved = max(r.moved_up for r in rows if r.moved_up is not None)
        worst32 = max(r.ranges for r in rows if r.shards <= 32)
        most = max(r.ranges for r in rows)
        print(
            f"{name}: worst max/mean {worst_balance:.3f}; worst moved {worst_moved:.3f} x 1/N; "
            f"most ranges per shard {worst32} (N <= 32), {most} (N <= {args.max_shards})"
        )
    flags = f"--objects {args.objects} --seed {args.seed} --max-shards {args.max_shards}"
    command = f"benchmarks/ring_balance.py {flags}"
    print(f"reproduce: .venv/bin/python {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
