"""What the library's tests share: the example's CRD and config, a simulator, scrapes."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from panopticon.embed import Exporter

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "kopf_operator"
CONFIG = EXAMPLE / "metrics.yaml"
CRD: dict[str, Any] = yaml.safe_load((EXAMPLE / "manifests" / "crd.yaml").read_text())
API_VERSION, KIND = "cache.example.com/v1", "Memcached"
OM_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


def memcached(name: str, namespace: str = "default", size: Any = 3, memory: Any = 64) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"size": size, "memoryMB": memory},
    }


@asynccontextmanager
async def served(exporter: Exporter) -> AsyncIterator[str]:
    """The exporter's handler in an aiohttp app of the test's own (as an operator's)."""
    app = web.Application()
    app.router.add_get("/metrics", exporter.handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        await runner.cleanup()


async def scrape(url: str, **headers: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.text()


async def eventually(check: Callable[[], Any], *, within: float = 15.0) -> None:
    """Await `check()` (an awaitable) until it does not raise AssertionError."""
    deadline = time.monotonic() + within
    while True:
        try:
            await check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a text exposition, by name and sorted labels (parsed by prometheus_client)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def promtool_accepts(text: str) -> None:
    """`promtool check metrics` finds neither an error nor a lint problem."""
    binary = shutil.which("promtool")
    assert binary, "promtool is installed by scripts/setup"
    proc = subprocess.run([binary, "check", "metrics"], input=text.encode(), capture_output=True, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr).decode()
