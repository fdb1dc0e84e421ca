"""Render cost in CPU instructions per object (callgrind), one source tree against another.

`render_bench.py` times renders in seconds, which a shared, loaded machine blurs by
more than the few percent a change to the render path may cost. This script renders
the example MongoDB objects (copies, renamed) through the compiled KubeDB MongoDB
config, `Program.render` only, under valgrind's callgrind at two object counts, and
reports the slope (instructions per object) for each tree given with `--tree`,
as a ratio of the first tree's. Counts repeat to a fraction of a percent under load.

    .venv/bin/python benchmarks/render_instructions.py --tree /tmp/main --tree . [--objects 2000 8000]

(A tree is a checkout of another revision: `git archive REV | tar -x -C /tmp/main`.)
Needs valgrind (Debian: `apt-get install valgrind`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Run in the measured tree (PYTHONPATH), under callgrind: render `n` objects, once.
RENDER = """
import copy, sys
from pathlib import Path
try:
    from panopticon.config.documents import read_documents
    from panopticon.render.program import compile_config
except ImportError:  # a tree from before the layout of issue 15
    from panopticon.documents import read_documents
    from panopticon.program import compile_config

examples = Path("panopticon/data/examples")
config = next(iter(read_documents(str(examples / "metricsconfigurations/kubedb/kubedb-com-mongodb.yaml"))))
program = compile_config(config.body).program
files = sorted((examples / "objects/mongodb").glob("*.yaml"))
bases = [d.body for p in files for d in read_documents(str(p))]
objects = []
for i in range(int(sys.argv[1])):
    obj = copy.deepcopy(bases[i % len(bases)])
    obj["metadata"]["name"] = f"{obj['metadata']['name']}-{i}"
    objects.append(obj)
lines = 0
for obj in objects:
    lines += sum(text.count("\\n") for text in program.render(obj).families.values())
print(lines)
"""


def instructions(tree: Path, n: int, out: Path) -> tuple[int, str]:
    """Instructions the render script executes in `tree` for `n` objects, and its output."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", RENDER, str(n)],
        cwd=tree, env=dict(os.environ, PYTHONPATH=str(tree)), capture_output=True, text=True, check=True,
    )  # fmt: skip
    for line in out.read_text(errors="replace").splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1]), done.stdout.strip()
    raise RuntimeError(f"no summary line in {out}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, nargs=2, default=[2000, 8000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--tree", type=Path, action="append", help="a source tree (default: this one)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    trees = [t.resolve() for t in (args.tree or [ROOT])]
    small, large = args.objects
    slopes: list[float] = []
    with tempfile.TemporaryDirectory(prefix="pan-render-instructions-") as tmp:
        for i, tree in enumerate(trees):
            counts = {}
            for n in (small, large):
                counts[n], lines = instructions(tree, n, Path(tmp) / f"tree{i}-{n}.out")
                print(f"{tree}: {n} objects, {lines} lines: {counts[n]:,} instructions", flush=True)
            slope = (counts[large] - counts[small]) / (large - small)
            slopes.append(slope)
            ratio = f" ({slope / slopes[0]:.4f}x the first tree)" if i else ""
            print(f"{tree}: {slope:,.0f} instructions per object rendered{ratio}")
    command = " ".join(["benchmarks/render_instructions.py", "--objects", str(small), str(large)])
    command += "".join(f" --tree {t}" for t in trees)
    print(f"reproduce: .venv/bin/python {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
