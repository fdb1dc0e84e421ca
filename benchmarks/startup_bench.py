"""A shard's fixed start-up cost: CPU seconds from exec to ready, owning nothing to sync.

Each of N shards pays it (issue 16: the CPU of all N shards against one shard's),
whatever it owns. Setup: Redis and the simulator with the KubeDB MongoDB config and
no objects; a shard (`--shards 1`, a kubeconfig as the benchmarks write it) is
started `--starts` times in a row, each until /readyz answers 200, and its CPU
seconds (/proc, user + system) are read then. With `--tree DIR` given more than
once (checkouts of other revisions: `git worktree add /tmp/old REV`), the trees'
shards are started in turn, `--rounds` times, against the same Redis and simulator,
so their figures come from the same run. Every tree's bytecode is compiled first,
as the image does at install time (see scale_bench.py).

    .venv/bin/python benchmarks/startup_bench.py [--starts 3] [--rounds 2] [--tree DIR ...]
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scale_bench import SIM_ARGS  # noqa: E402
from benchmarks.shard_bench import CONFIG, cpu_seconds  # noqa: E402
from kubesim import SimProcess  # noqa: E402
from tests.support.cluster import ShardProcess  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402


def start_once(tree: Path, kubeconfig: Path, redis: RedisServer, generation: int, logs: Path) -> float:
    """CPU seconds of one shard of `tree` from exec to ready."""
    redis.command("FLUSHALL")
    shard = ShardProcess(
        0,
        kubeconfig=kubeconfig,
        redis_url=redis.url,
        log_dir=logs,
        extra=("--shards", "1", "--ring-generation", str(generation)),
    )
    env, cwd = os.environ.copy(), os.getcwd()
    os.environ["PYTHONPATH"] = str(tree)  # `python -m shard` imports the tree's code
    os.chdir(tree)
    try:
        shard.start()
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
    try:
        assert shard.proc is not None
        shard.wait_ready(timeout=300)
        return cpu_seconds(shard.proc.pid)
    finally:
        shard.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--starts", type=int, default=3, help="starts per tree per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tree", type=Path, action="append", help="a source tree (default: this one)")
    args = parser.parse_args()
    trees = [t.resolve() for t in args.tree] if args.tree else [ROOT]
    for tree in trees:
        for package in ("panopticon", "shard"):
            compileall.compile_dir(tree / package, quiet=1)
    logs = Path(tempfile.mkdtemp(prefix="pan-startup-bench-"))
    print(f"python {sys.version.split()[0]}; logs in {logs}")
    redis = RedisServer()
    redis.start()
    sim = SimProcess(["--bench-mongodbs", "0", *SIM_ARGS], timeout=300).start()
    results: dict[Path, list[float]] = {tree: [] for tree in trees}
    generation = 0
    try:
        sim.admin.bulk([{"op": "create", "object": yaml.safe_load(CONFIG.read_text())}])
        for round_ in range(args.rounds):
            for tree in trees:
                seconds = []
                for _ in range(args.starts):
                    generation += 1
                    seconds.append(start_once(tree, Path(sim.kubeconfig_path), redis, generation, logs))
                results[tree] += seconds
                text = ", ".join(f"{s:.2f}" for s in seconds)
                median = statistics.median(seconds)
                print(f"round {round_ + 1}, {tree}: CPU s to ready {text} (median {median:.2f})")
    finally:
        sim.stop()
        redis.close()
    for tree, seconds in results.items():
        print(f"{tree}: median {statistics.median(seconds):.2f} CPU s over {len(seconds)} starts")
    if len(trees) > 1:
        first = statistics.median(results[trees[0]])
        for tree in trees[1:]:
            print(f"{tree} / {trees[0]}: {statistics.median(results[tree]) / first:.2f}")
    flags = " ".join(f"--tree {t}" for t in args.tree or [])
    print(
        f"reproduce: .venv/bin/python benchmarks/startup_bench.py --starts {args.starts} "
        f"--rounds {args.rounds} {flags}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
