"""The simulator's layering rule: it may use aiohttp, orjson and uvloop, never the
libraries that belong to other parts (kubernetes, redis, hashring)."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("kubernetes", "redis", "hashring")


def test_the_simulator_imports_no_kubernetes_redis_or_hashring() -> None:
    code = (
        "import sys, kubesim, kubesim.admin, kubesim.churn, kubesim.command;"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
