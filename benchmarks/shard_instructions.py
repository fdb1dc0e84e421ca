"""Shard sync cost in CPU instructions per object (callgrind): repeatable where seconds are not.

`shard_bench.py` times a sync in seconds, and on the shared machines this project is
built on the same code measures 14-17 s from one run to the next: changes worth a
few percent cannot be seen. valgrind's callgrind counts the instructions a process
executes instead, which repeats to a fraction of a percent whatever else the machine
does. This script runs the initial sync of a shard under callgrind at two object
counts (the simulator and Redis on core 0, natively; the shard on core 1) and reports
the slope, instructions per owned object, and the intercept (start-up, listing
overhead). The shard runs ~50x slower under callgrind, so the counts are small.

With `--tree DIR` given more than once, each tree's shard (a checkout of another
revision: `git worktree add /tmp/old REV`) is measured in the same run against the
same simulator objects, and each slope is reported as a ratio of the first's.

    .venv/bin/python benchmarks/shard_instructions.py [--objects 5000 20000] [--tree DIR ...]

Needs valgrind (Debian: `apt-get install valgrind`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from redis import Redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CONFIG = ROOT / "panopticon/data/examples/metricsconfigurations/kubedb/kubedb-com-mongodb.yaml"

from benchmarks.shard_bench import ready  # noqa: E402
from kubesim import SimProcess  # noqa: E402
from tests.support.redis_server import RedisServer, free_port  # noqa: E402

SIM_ARGS = ["--namespaces", "1", "--mongodbs", "0", "--deployments", "0", "--services", "0",
            "--configmaps", "0", "--secrets", "0", "--nodes", "0"]  # fmt: skip


def instructions(tree: Path, sim: SimProcess, redis_url: str, out: Path) -> int:
    """Instructions the shard of `tree` executes from start to `/readyz`, then SIGTERM."""
    port = free_port()
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m", "shard",
           "--kubeconfig", str(sim.kubeconfig_path), "--redis", redis_url, "--shard-index", "0",
           "--shards", "1", "--host", "127.0.0.1", "--port", str(port), "--no-status",
           "--log-level", "WARNING"]  # fmt: skip
    log = out.with_suffix(".log").open("wb")
    proc = subprocess.Popen(
        cmd, cwd=tree, env=dict(os.environ, PYTHONPATH=str(tree)), stdout=log, stderr=subprocess.STDOUT
    )
    os.sched_setaffinity(proc.pid, {1})
    try:
        while not ready(port):
            if proc.poll() is not None:
                raise RuntimeError(out.with_suffix(".log").read_text()[-2000:])
            time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(600)
    for line in out.read_text(errors="replace").splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"no summary line in {out}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, nargs=2, default=[5000, 20000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--tree", type=Path, action="append", help="a source tree (default: this one)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    trees = [t.resolve() for t in (args.tree or [ROOT])]
    small, large = sorted(args.objects)
    if small == large:
        parser.error("--objects needs two different counts")
    work = Path(tempfile.mkdtemp(prefix="pan-shard-instructions-"))
    config = yaml.safe_load(CONFIG.read_text())
    counts: dict[tuple[Path, int], int] = {}
    for n in (small, large):
        redis = RedisServer()
        redis.start()
        assert redis.proc is not None
        os.sched_setaffinity(redis.proc.pid, {0})
        sim = SimProcess(["--bench-mongodbs", str(n), *SIM_ARGS], timeout=600)
        sim.start()
        try:
            assert sim.proc is not None
            os.sched_setaffinity(sim.proc.pid, {0})
            sim.admin.bulk([{"op": "create", "object": config}])
            for i, tree in enumerate(trees):
                Redis.from_url(redis.url).flushall()  # each shard syncs into an empty store
                counts[tree, n] = instructions(tree, sim, redis.url, work / f"tree{i}-{n}.out")
                print(f"{tree}: {n} objects: {counts[tree, n]:,} instructions", flush=True)
        finally:
            sim.stop()
            redis.close()
    slopes = {}
    for tree in trees:
        slope = (counts[tree, large] - counts[tree, small]) / (large - small)
        intercept = counts[tree, small] - slope * small
        slopes[tree] = slope
        ratio = f" ({slope / slopes[trees[0]]:.3f}x the first tree)" if tree != trees[0] else ""
        print(f"{tree}: {slope:,.0f} instructions per object{ratio}; fixed costs {intercept:,.0f}")
    command = f"benchmarks/shard_instructions.py --objects {small} {large}"
    command += "".join(f" --tree {t}" for t in trees) if args.tree else ""
    print(f"reproduce: .venv/bin/python {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
