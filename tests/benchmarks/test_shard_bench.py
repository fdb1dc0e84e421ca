"""The shard benchmark runs end to end at a small size (its figures are not checked
here: benchmarks measure, tests only keep them runnable)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_shard_bench_runs_and_reports_every_figure() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "benchmarks/shard_bench.py",
            *["--objects", "300", "--rate", "50", "--seconds", "2", "--syncs", "2"],
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout
    assert len(re.findall(r"initial sync: 310 objects, \d+ fields in [\d.]+s", out)) == 2, out
    assert re.search(r"initial syncs: best [\d.]+s, median [\d.]+s, worst [\d.]+s of 2", out), out
    assert re.search(r"memory: .* bytes per owned object", out), out
    churn = re.search(r"churn: (\d+) changes .* shard saw (\d+) events", out)
    assert churn and churn[1] == churn[2] and int(churn[1]) > 0, out
    assert re.search(r"baselines .* decode [\d.]+s, decode\+render [\d.]+s", out), out
