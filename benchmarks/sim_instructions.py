"""Simulator request cost in CPU instructions (callgrind): repeatable where seconds are not.

    .venv/bin/python benchmarks/sim_instructions.py [--tree DIR ...]

Runs an in-process simulator (1,000 seeded pods) and an aiohttp client under
valgrind's callgrind twice, with K=1 and K=3 rounds of requests (a round: 10
LISTs of all pods, 200 small LISTs), and prints the instructions of two rounds
(K=3 minus K=1, so start-up and imports cancel out) and of start-up. `--tree`
names source trees to compare (e.g. an export of main beside the working tree):
each runs with its own `panopticon` first on PYTHONPATH; the first is the baseline.
The shared machine's load does not change instruction counts; repeated runs of
the same tree differ by up to about 1% (hash seeds, uuids, garbage collection).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIENT = """
import asyncio, sys, aiohttp
from kubesim import SimConfig, SimServer
from kubesim.natives import WorkloadSpec, native_objects

async def main(rounds: int) -> None:
    async with SimServer(SimConfig(seed=1, compaction_window=None)) as s:
        s.sim.load(native_objects(WorkloadSpec(namespaces=2, deployments=50, pods_per_deployment=10, seed=1)))
        h = {"Authorization": f"Bearer {s.token}", "Accept": "application/json"}
        async with aiohttp.ClientSession() as c:
            for path, count in (("/api/v1/pods", 10), ("/api/v1/namespaces/default/configmaps", 200)):
                for _ in range(count * rounds):
                    async with c.get(s.url + path, headers=h) as r:
                        assert r.status == 200
                        await r.read()

asyncio.run(main(int(sys.argv[1])))
"""


def instructions(tree: Path, rounds: int, work: Path) -> int:
    script = work / "client.py"
    script.write_text(CLIENT)
    out = work / f"callgrind.{rounds}"
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         sys.executable, str(script), str(rounds)],
        cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    match = re.search(r"Collected : (\d+)", done.stderr)
    assert match is not None, done.stderr[-2000:]
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", type=Path, action="append", help="source tree (default: this one)")
    args = parser.parse_args()
    trees = args.tree or [ROOT]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for tree in trees:
            one, three = instructions(tree, 1, Path(tmp)), instructions(tree, 3, Path(tmp))
            rows.append((tree, three - one, one - (three - one) // 2))
    base_rounds, base_start = rows[0][1], rows[0][2]
    print(f"{'tree':40} {'2 rounds (instr)':>18} {'ratio':>7} {'start-up (instr)':>18} {'ratio':>7}")
    for tree, rounds, start in rows:
        print(
            f"{tree!s:40} {rounds:>18,} {rounds / base_rounds:>7.3f} {start:>18,} {start / base_start:>7.3f}"
        )
    print(
        "reproduce: .venv/bin/python benchmarks/sim_instructions.py " + " ".join(f"--tree {t}" for t in trees)
    )


if __name__ == "__main__":
    main()
