"""Series caps: what a capped config costs the shard's render path, same run.

The shard's per-object path (`shard.table.KindTable.apply`, as a target calls it on
every watch event) over N copies of the example MongoDB objects (random uids) through
the KubeDB MongoDB config, in three settings, each against a fresh table:

- `uncapped`: the config as shipped (no admission hook: the baseline);
- `capped, all fit`: `limits.series` above the total, so every object is admitted:
  the cost of counting each object's series and finding the cutoff;
- `capped, half`: `limits.series` at half the total, objects in random order: half are
  left out, and objects an arrival pushes past the cap are withdrawn at once (the
  review a target runs before its next flush).

Figures: best of R repeats, objects per second, and the ratio to `uncapped` measured
in the same run. The process pins itself to one core.

    .venv/bin/python benchmarks/limits_bench.py [--objects 20000] [--repeats 5] [--core 1]
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from panopticon.config.documents import read_documents
from panopticon.render.program import Program, compile_config
from panopticon.sharding.buckets import BucketSpace
from shard.limiting import KindLimits
from shard.table import KindTable

EXAMPLES = Path(__file__).resolve().parent.parent / "panopticon" / "data" / "examples"
CONFIG = EXAMPLES / "metricsconfigurations" / "kubedb" / "kubedb-com-mongodb.yaml"
OBJECTS = EXAMPLES / "objects" / "mongodb"
SPACE = BucketSpace()


def program(cap: int | None) -> Program:
    body = copy.deepcopy(read_documents(str(CONFIG))[0].body)
    if cap is not None:
        body["spec"]["limits"] = {"series": cap}
    compiled = compile_config(body).program
    assert compiled is not None
    return compiled


def objects(count: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    base = program(None)
    bases = [d.body for f in sorted(OBJECTS.glob("*.yaml")) for d in read_documents(str(f))]
    bases = [b for b in bases if base.matches(b)]
    out = []
    for i in range(count):
        obj = copy.deepcopy(bases[i % len(bases)])
        uid = str(uuid.UUID(int=rng.getrandbits(128)))
        obj["metadata"].update(name=f"{obj['metadata'].get('name', 'x')}-{i}", uid=uid)
        obj["metadata"].setdefault("namespace", "default")
        out.append((uid, obj))
    return out


def sync(prog: Program, items: list[tuple[str, dict[str, Any]]]) -> tuple[float, int]:
    """Apply every object as ADDED to a fresh table; seconds, and series written."""
    table = KindTable([prog], SPACE, namespaced=True)
    limits = KindLimits([prog], None, SPACE.count)
    table.admit = limits.admit if limits else None
    start = time.perf_counter()
    for uid, obj in items:
        table.apply("ADDED", obj, uid, None, "1")
        if table.admit is not None and limits.receded:
            for gone, families in limits.review().withdraw:
                table.withdraw(gone, families)
    seconds = time.perf_counter() - start
    written = sum(limit.count().kept for limit in limits.configs.values()) if limits else -1
    return seconds, written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--core", type=int, default=1, help="CPU to pin to (-1: no pinning)")
    args = parser.parse_args()
    if args.core >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    print(f"python {sys.version.split()[0]} ({sys.executable}), pinned to core {args.core}")
    items = objects(args.objects, 1)
    uncapped = program(None)
    total = sum(
        text.count("\n")
        for _, obj in items
        for text in uncapped.render(obj, namespaced=True).families.values()
    )
    settings = {
        "uncapped": uncapped,
        "capped, all fit": program(total + 1),
        "capped, half": program(total // 2),
    }
    best: dict[str, float] = {}
    names = list(settings)
    for repeat in range(args.repeats):  # interleaved and rotated: drifts of the machine hit every setting
        for name in names[repeat % 3 :] + names[: repeat % 3]:
            prog = settings[name]
            seconds, written = sync(prog, items)
            best[name] = min(best.get(name, float("inf")), seconds)
            if name == "capped, half":
                assert written <= total // 2, written
    print(f"{args.objects} objects, {total} series uncapped")
    for name, seconds in best.items():
        ratio = seconds / best["uncapped"]
        print(f"  {name:16} {args.objects / seconds:10,.0f} objects/s   {ratio:.3f} x uncapped time")
    command = f"benchmarks/limits_bench.py --objects {args.objects} --repeats {args.repeats}"
    print(f"reproduce: .venv/bin/python {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
