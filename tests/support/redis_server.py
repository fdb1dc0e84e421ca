"""A real `redis-server` for tests, on a free port, in a temporary directory.

Tests never touch the machine's Redis on 6379: each session starts its own server
and can stop it, restart it empty (no persistence: what a Redis restart without
disk does), kill it, or take a snapshot and later restart it from that snapshot
(what a crash with `appendfsync everysec`, a failover to a lagging replica or a
restore from a backup do: Redis comes back with less than it acknowledged).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    def __init__(
        self, *, password: str | None = None, port: int | None = None, extra: tuple[str, ...] = ()
    ) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError("redis-server not found (scripts/setup installs it)")
        self.port = port or free_port()
        self.password = password
        self.extra = extra
        self.dir = Path(tempfile.mkdtemp(prefix="pan-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        args += self.extra
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc = None

    def restart_empty(self) -> None:
        """Stop and start again on the same port with no data (no persistence): a
        snapshot left in the directory by `snapshot` is removed first, or Redis would
        load it."""
        self.stop(kill=True)
        (self.dir / "dump.rdb").unlink(missing_ok=True)
        self.start()

    def command(self, *args: str) -> str:
        """One command through redis-cli (its reply as text)."""
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli not found (scripts/setup installs redis-server, which brings it)")
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        done = subprocess.run(
            [cli, "-p", str(self.port), *auth, *args], check=True, capture_output=True, text=True, timeout=60
        )
        return done.stdout.strip()

    def snapshot(self) -> Path:
        """SAVE the dataset and keep a copy of the RDB file aside; its path."""
        self.command("SAVE")
        kept = self.dir / f"snapshot-{time.monotonic_ns()}.rdb"
        shutil.copyfile(self.dir / "dump.rdb", kept)
        return kept

    def restart_from(self, snapshot: Path) -> None:
        """Kill the server and start it again from an older snapshot (a new run id)."""
        self.stop(kill=True)
        shutil.copyfile(snapshot, self.dir / "dump.rdb")
        self.start()

    def reload_from(self, snapshot: Path) -> None:
        """Load an older snapshot into the running server (`DEBUG RELOAD NOSAVE`): the
        data goes back, the run id stays. Needs `--enable-debug-command local`."""
        shutil.copyfile(snapshot, self.dir / "dump.rdb")
        self.command("DEBUG", "RELOAD", "NOSAVE")

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(100):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


class RedisClusterServers:
    """A real Redis Cluster: `nodes` masters on loopback, slots spread by redis-cli."""

    def __init__(self, nodes: int = 3) -> None:
        flags = (
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
        )
        self.servers = [RedisServer(port=cluster_port(), extra=flags) for _ in range(nodes)]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.servers[0].port}/0"

    def start(self) -> None:
        for server in self.servers:
            server.start()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli not found (scripts/setup installs redis-server, which brings it)")
        addresses = [f"127.0.0.1:{server.port}" for server in self.servers]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = [
                subprocess.run(
                    [cli, "-p", str(server.port), "cluster", "info"],
                    check=False,
                    capture_output=True,
                    text=True,
                    timeout=10,
                ).stdout
                for server in self.servers
            ]
            if all("cluster_state:ok" in state for state in states):
                return
            time.sleep(0.2)
        raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")

    def close(self) -> None:
        for server in self.servers:
            server.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()
