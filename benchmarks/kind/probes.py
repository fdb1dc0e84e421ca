"""What collect.py reads: the exporter's /metrics (as Prometheus asks for it), its
processes (/proc, or `docker stats` for a container whose pid is not visible here), and
the API server's own metrics through `kubectl get --raw /metrics`.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

APISERVER_METRICS = (
    "apiserver_request_total",
    "apiserver_request_duration_seconds_sum",
    "apiserver_request_duration_seconds_count",
    "apiserver_watch_events_total",
    "apiserver_watch_events_sizes_sum",
    "apiserver_watch_events_sizes_count",
    "apiserver_storage_objects",
    "kubernetes_feature_enabled",
)
GATES = ("ShardedListAndWatch", "WatchList", "WatchListCompression")
SCRAPE_HEADERS = {
    "Accept": "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",  # what Prometheus asks for text exposition
    "Accept-Encoding": "gzip",
}
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


# --- processes -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcSample:
    cpu_seconds: float | None
    rss_mb: float
    cpu_percent: float | None = None
    """Only from `docker stats` (no cumulative CPU time there)."""


@dataclass(slots=True)
class Proc:
    role: str
    pid: int | None = None
    container: str = ""

    def sample(self) -> ProcSample | None:
        if self.pid is not None and Path(f"/proc/{self.pid}/stat").exists():
            return _proc_sample(self.pid)
        if self.container:
            return _docker_sample(self.container)
        return None


def _proc_sample(pid: int) -> ProcSample | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    rss_kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return ProcSample(cpu, rss_kb / 1024)


_UNITS = {"b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "kb": 1e3, "mb": 1e6, "gb": 1e9}


def _docker_sample(container: str) -> ProcSample | None:
    done = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{json .}}", container],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        return None
    stats = orjson.loads(done.stdout.splitlines()[0])
    used = str(stats.get("MemUsage", "0B")).split("/")[0].strip()
    m = re.match(r"([\d.]+)\s*([a-zA-Z]+)", used)
    rss = float(m.group(1)) * _UNITS.get(m.group(2).lower(), 1) / 1024**2 if m else 0.0
    return ProcSample(None, rss, float(str(stats.get("CPUPerc", "0")).rstrip("%") or 0))


def container_pid(name: str) -> int | None:
    """The host pid of a container's main process, when this host's /proc shows it."""
    done = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Pid}}", name], capture_output=True, text=True, check=False
    )
    pid = int(done.stdout.strip() or 0) if done.returncode == 0 else 0
    return pid if pid and Path(f"/proc/{pid}/stat").exists() else None


# --- scraping ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scrape:
    at: float
    """Seconds since launch when the scrape ended."""
    seconds: float
    ok: bool
    wire_bytes: int = 0
    body_bytes: int = 0
    samples: int = 0
    error: str = ""


async def scrape_url(session: aiohttp.ClientSession, url: str) -> tuple[bool, float, int, bytes, str]:
    started = time.perf_counter()
    try:
        async with session.get(url, headers=SCRAPE_HEADERS) as resp:
            raw = await resp.read()
            gzipped = resp.headers.get("Content-Encoding", "") == "gzip"
            status = resp.status
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        return False, time.perf_counter() - started, 0, b"", f"{type(e).__name__}: {e}"
    seconds = time.perf_counter() - started
    if status != 200:
        return False, seconds, len(raw), b"", f"HTTP {status}"
    try:
        body = zlib.decompress(raw, wbits=31) if gzipped else raw
    except zlib.error as e:
        return False, seconds, len(raw), b"", f"gzip: {e}"
    return True, seconds, len(raw), body, ""


def count_samples(body: bytes) -> int:
    return sum(1 for line in body.split(b"\n") if line and not line.startswith(b"#"))


async def scrape(session: aiohttp.ClientSession, urls: list[str], t0: float) -> Scrape:
    """All of an exporter's URLs at once, as one scrape: slowest latency, summed sizes."""
    results = await asyncio.gather(*(scrape_url(session, u) for u in urls))
    at = time.time() - t0
    errors = [r[4] for r in results if not r[0]]
    return Scrape(
        at=round(at, 3),
        seconds=max(r[1] for r in results),
        ok=not errors,
        wire_bytes=sum(r[2] for r in results),
        body_bytes=sum(len(r[3]) for r in results),
        samples=sum(count_samples(r[3]) for r in results),
        error="; ".join(errors),
    )


async def all_ready(session: aiohttp.ClientSession, urls: list[str]) -> bool:
    async def one(url: str) -> bool:
        try:
            async with session.get(url) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False

    return all(await asyncio.gather(*(one(u) for u in urls)))


# --- the API server's own metrics -------------------------------------------------


def parse_samples(text: str, names: tuple[str, ...]) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        if not line.startswith(names):
            continue
        m = _SAMPLE.match(line)
        if m and m.group(1) in names:
            labels = dict(_LABEL.findall(m.group(2) or ""))
            out.append((m.group(1), labels, float(m.group(3))))
    return out


def _resource(labels: dict[str, str]) -> str:
    res = labels.get("resource") or labels.get("kind", "")
    group = labels.get("group", "")
    return f"{res}.{group}" if group else res


def apiserver_figures(text: str) -> dict[str, Any]:
    """The API server figures this benchmark reads, from its /metrics text."""
    figures: dict[str, Any] = {
        "requests": defaultdict(float),
        "list_seconds": defaultdict(float),
        "watch_events": defaultdict(float),
        "watch_event_bytes": defaultdict(float),
        "storage_objects": {},
        "gates": {},
    }
    for name, labels, value in parse_samples(text, APISERVER_METRICS):
        verb = labels.get("verb", "")
        if name == "apiserver_request_total" and verb in ("LIST", "WATCH"):
            figures["requests"][f"{verb} {_resource(labels)}"] += value
        elif name.startswith("apiserver_request_duration_seconds") and verb == "LIST":
            figures["list_seconds"][name.rsplit("_", 1)[1]] += value
        elif name == "apiserver_watch_events_total":
            figures["watch_events"][_resource(labels)] += value
        elif name == "apiserver_watch_events_sizes_sum":
            figures["watch_event_bytes"][_resource(labels)] += value
        elif name == "apiserver_storage_objects":
            figures["storage_objects"][labels.get("resource", "")] = value
        elif name == "kubernetes_feature_enabled" and labels.get("name") in GATES:
            figures["gates"][labels["name"]] = value == 1
    return {k: dict(v) for k, v in figures.items()}


def figures_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Counters as differences over a phase (after a restart: the new counters as they are)."""
    if not before or not after:
        return after or {}
    out: dict[str, Any] = {"storage_objects": after["storage_objects"]}
    reset = False
    for key in ("requests", "list_seconds", "watch_events", "watch_event_bytes"):
        diff = {k: v - before[key].get(k, 0.0) for k, v in after[key].items()}
        reset = reset or any(v < 0 for v in diff.values())
        out[key] = {k: round(v, 6) for k, v in diff.items() if v}
    if reset:
        out = {**after, "counters_reset": True}
    count = out["list_seconds"].get("count", 0.0)
    out["list_mean_seconds"] = round(out["list_seconds"].get("sum", 0.0) / count, 6) if count else None
    return out


async def kubectl(kubeconfig: str, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "kubectl", "--kubeconfig", kubeconfig, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(err.decode(errors="replace").strip())
    return out.decode()


async def apiserver_snapshot(kubeconfig: str) -> dict[str, Any]:
    try:
        return apiserver_figures(await kubectl(kubeconfig, "get", "--raw", "/metrics"))
    except RuntimeError as e:
        print(f"collect.py: apiserver /metrics: {e}", file=sys.stderr)
        return {}
