"""Running a simulator: in this event loop, in a background thread, or as a process.

- `SimServer` (async context manager) serves a `Simulator` on a TCP port of this
  loop, with the compaction task; `port=0` picks a free port.
- `SimThread` runs a `SimServer` on its own loop in a daemon thread, for
  synchronous tests; `call` runs a function on that loop (the simulator is not
  thread-safe).
- `SimProcess` starts `panopticon sim` as a child process, waits for its `READY`
  line and talks to it through `AdminClient`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import yaml
from aiohttp import web

from kubesim.admin_client import AdminClient
from kubesim.config import SimConfig
from kubesim.server import build_app
from kubesim.simulator import Simulator
from kubesim.tls import ServerCertificate, kubeconfig, make_certificate

T = TypeVar("T")


class SimServer:
    """Serve a simulator on `host:port` (HTTPS when `https`) in the running loop."""

    def __init__(
        self,
        sim: Simulator | SimConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        https: bool = False,
        cert_dir: Path | None = None,
    ) -> None:
        self.sim = sim if isinstance(sim, Simulator) else Simulator(sim)
        self.host = host
        self.port = port
        self.https = https
        self._cert_dir = cert_dir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.certificate: ServerCertificate | None = None
        self._runner: web.AppRunner | None = None
        self._compactor: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.https else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def token(self) -> str:
        return self.sim.config.admin_bearer

    async def start(self) -> None:
        ssl_context = None
        if self.https:
            if self._cert_dir is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="panopticon-sim-tls-")
                self._cert_dir = Path(self._tmp.name)
            hosts = tuple(dict.fromkeys((self.host, "127.0.0.1", "localhost")))
            self.certificate = make_certificate(self._cert_dir, hosts=hosts)
            ssl_context = self.certificate.server_context()
        app = build_app(self.sim, server_address=f"{self.host}:{self.port or 6443}")
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=ssl_context, reuse_address=True)
        await site.start()
        server = site._server
        if self.port == 0 and server is not None and hasattr(server, "sockets"):
            self.port = server.sockets[0].getsockname()[1]
        self._compactor = asyncio.create_task(self._compact_forever(), name="sim-compactor")

    async def _compact_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            window = self.sim.config.compaction_window
            await asyncio.sleep(max(0.05, (window or 60.0) / 4))
            self.sim.compaction_tick(loop.time())

    async def stop(self) -> None:
        self.sim.stop_churn()
        if self._compactor is not None:
            self._compactor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._compactor
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def kubeconfig(self) -> str:
        return kubeconfig(self.url, self.token, ca_pem=self.certificate.ca_pem if self.certificate else None)

    def write_kubeconfig(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.kubeconfig())
        path.chmod(0o600)
        return path

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class SimThread:
    """A `SimServer` on its own event loop in a daemon thread."""

    def __init__(self, sim: Simulator | SimConfig | None = None, **server_args: Any) -> None:
        self._args = (sim, server_args)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: SimServer | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def server(self) -> SimServer:
        assert self._server is not None, "SimThread not started"
        return self._server

    @property
    def sim(self) -> Simulator:
        return self.server.sim

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def token(self) -> str:
        return self.server.token

    def start(self) -> SimThread:
        self._thread = threading.Thread(target=self._run, name="panopticon-sim", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        async def main() -> None:
            sim, args = self._args
            self._stop = asyncio.Event()
            self._server = SimServer(sim, **args)
            try:
                await self._server.start()
            except BaseException as e:
                self._error = e
                self._ready.set()
                return
            self._loop = asyncio.get_running_loop()
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await self._server.stop()

        asyncio.run(main())

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` on the simulator's loop and return its result."""
        assert self._loop is not None

        async def run() -> T:
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)
        self._loop = None

    def __enter__(self) -> SimThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SimProcess:
    """`panopticon sim ARGS…` as a child process (waits for its `READY <url>` line)."""

    def __init__(
        self, args: Sequence[str] = (), *, python: str = sys.executable, timeout: float = 60.0
    ) -> None:
        self.args = list(args)
        self.python = python
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._tmp = tempfile.TemporaryDirectory(prefix="panopticon-sim-")
        self.kubeconfig_path = Path(self._tmp.name) / "kubeconfig"
        self.token = ""

    def start(self) -> SimProcess:
        cmd = [
            self.python,
            "-m",
            "panopticon",
            "sim",
            "--port",
            "0",
            "--kubeconfig-out",
            str(self.kubeconfig_path),
            *self.args,
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=None, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        assert self.proc.stdout is not None
        line = _read_line(self.proc.stdout, self.timeout)
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"panopticon sim did not start: {line!r}")
        self.url = line.split()[1]
        self.token = _token_from(self.kubeconfig_path)
        self.admin = AdminClient(self.url, self.token, ca_file=self._ca_file())
        return self

    def _ca_file(self) -> Path | None:
        doc = yaml.safe_load(self.kubeconfig_path.read_text())
        data = doc["clusters"][0]["cluster"].get("certificate-authority-data")
        if not data:
            return None
        path = Path(self._tmp.name) / "ca.crt"
        path.write_bytes(base64.b64decode(data))
        return path

    def stop(self, timeout: float = 10.0) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        self._tmp.cleanup()
        return proc.returncode

    def __enter__(self) -> SimProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _read_line(stream: Any, timeout: float) -> str:
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0].decode().strip() if result else ""


def _token_from(path: Path) -> str:
    doc = yaml.safe_load(path.read_text())
    return str(doc["users"][0]["user"]["token"])
