"""A round-robin TCP balancer: what a Kubernetes Service does to the aggregator replicas.

kube-proxy picks a backend per connection; this does the same, in a thread of the
test process, so a Prometheus scrape config that targets "the Service" can be tested
against several real aggregator processes. Each accepted connection is piped both
ways to the next backend in turn.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import Counter

from tests.support import aio
from tests.support.redis_server import free_port


class Balancer:
    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self.port = free_port()
        self.connections: Counter[str] = Counter()
        self.downstream: Counter[str] = Counter()
        """Bytes each backend sent back to the clients."""
        self._turn = itertools.cycle(backends)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Balancer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("balancer did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)

    def _run(self) -> None:
        aio.run(self._serve(), timeout=None)  # until stop()

    async def _serve(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            pending = asyncio.all_tasks() - {asyncio.current_task()}
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        backend = next(self._turn)
        self.connections[backend] += 1
        host, port = backend.rsplit(":", 1)
        try:
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer, backend))

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counted: str | None = None
    ) -> None:
        try:
            while data := await reader.read(65536):
                if counted is not None:
                    self.downstream[counted] += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
