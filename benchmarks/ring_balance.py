"""Ring balance and movement over real-looking uids (deterministic, seeded).

For N = 1..16 shards: max/mean objects per shard, and the share of objects that
move when going from N to N+1 shards, compared with the ideal 1/(N+1).

    .venv/bin/python benchmarks/ring_balance.py [--objects 100000] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import sys
import uuid

from panopticon.buckets import BucketSpace
from panopticon.ring import Ring


def measure(objects: int, seed: int, max_shards: int = 16) -> list[tuple[int, float, float | None]]:
    rng = random.Random(seed)
    space = BucketSpace()
    per_bucket = [0] * space.count
    for _ in range(objects):
        per_bucket[space.bucket(str(uuid.UUID(int=rng.getrandbits(128), version=4)))] += 1
    rows: list[tuple[int, float, float | None]] = []
    previous: Ring | None = None
    for n in range(1, max_shards + 1):
        ring = Ring(n, n, space)
        loads = [0] * n
        for bucket, count in enumerate(per_bucket):
            loads[ring.owner(bucket)] += count
        balance = max(loads) / (objects / n)
        moved = None
        if previous is not None:
            moved_objects = sum(c for b, c in enumerate(per_bucket) if previous.owner(b) != ring.owner(b))
            moved = moved_objects / objects * n  # in units of the ideal 1/n
        rows.append((n, balance, moved))
        previous = ring
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rows = measure(args.objects, args.seed)
    print(f"{args.objects} objects, {BucketSpace().count} buckets")
    print("shards  max/mean  moved (x ideal 1/N when going N-1 -> N)")
    for n, balance, moved in rows:
        print(f"{n:6d}  {balance:8.3f}  {'' if moved is None else f'{moved:.3f}'}")
    worst_balance = max(b for n, b, _ in rows if n >= 2)
    worst_moved = max(m for _, _, m in rows if m is not None)
    print(f"worst max/mean (2..16): {worst_balance:.3f}; worst moved: {worst_moved:.3f} x 1/N")
    print(
        f"reproduce: .venv/bin/python benchmarks/ring_balance.py --objects {args.objects} --seed {args.seed}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
