"""The bundled Redis: its start-up script and redis.conf, run for real on this machine.

No container runs here, so the container's own shell script (from the rendered
StatefulSet) starts the local `redis-server` with the rendered redis.conf, the container
paths moved into a temporary directory and the port onto a free one. Then: the password
(with characters that need quoting) is required and works, it never appears on the
command line, maxmemory follows the memory limit, AOF is on and eviction is off, and the
readiness probe's command answers.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.manifests.conftest import Rendered
from tests.support.redis_server import free_port

PASSWORD = 'pa"ss\\word with spaces'
MEMORY_LIMIT_MIB = 64


def _redis_container(rendered: Rendered) -> dict[str, Any]:
    statefulset = rendered.get("StatefulSet", "panopticon-redis")
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    return dict(container)


class LocalRedis:
    def __init__(self, rendered: Rendered, root: Path) -> None:
        self.container = _redis_container(rendered)
        self.port = free_port()
        self.root = root
        mounts = {m["name"]: m["mountPath"] for m in self.container["volumeMounts"]}
        self.paths = {path: str(root / name) for name, path in mounts.items()}
        for local in self.paths.values():
            Path(local).mkdir()
        (config_map,) = [c for c in rendered.of_kind("ConfigMap") if "redis.conf" in c.get("data", {})]
        config = self.localize(config_map["data"]["redis.conf"])
        config = config.replace("bind * -::*", "bind 127.0.0.1").replace("port 6379", f"port {self.port}")
        Path(self.paths["/etc/redis"], "redis.conf").write_text(config)
        self.proc: subprocess.Popen[bytes] | None = None

    def localize(self, text: str) -> str:
        for path, local in self.paths.items():
            text = text.replace(f"{path}/", f"{local}/").replace(f"dir {path}\n", f"dir {local}\n")
        return text

    def start(self) -> None:
        command = [*self.container["command"], *map(self.localize, self.container["args"])]
        env = {
            "PATH": os.environ["PATH"],
            "REDIS_PASSWORD": PASSWORD,
            "MEMORY_LIMIT_MIB": str(MEMORY_LIMIT_MIB),
        }
        log = self.root / "redis.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"redis did not start:\n{log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail("redis did not listen within 10 s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def local_redis(rendered: dict[str, Rendered], tmp_path: Path) -> Iterator[LocalRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server (scripts/setup installs it)")
    server = LocalRedis(rendered["overlays/small"], tmp_path)
    server.start()
    yield server
    server.stop()


def test_the_bundled_redis_requires_the_secret_password(local_redis: LocalRedis) -> None:
    with socket.create_connection(("127.0.0.1", local_redis.port), timeout=5) as anonymous:
        anonymous.sendall(b"PING\r\n")
        assert anonymous.recv(128).startswith(b"-NOAUTH")
    with redis.Redis(port=local_redis.port, password=PASSWORD) as client:
        assert client.ping() is True
        config = client.config_get("*")
    assert config["appendonly"] == "yes"
    assert config["maxmemory-policy"] == "noeviction"
    assert int(config["maxmemory"]) == MEMORY_LIMIT_MIB * 3 // 4 * 1024 * 1024
    assert local_redis.proc is not None
    assert PASSWORD not in Path(f"/proc/{local_redis.proc.pid}/cmdline").read_text()
    auth = Path(local_redis.paths["/run/redis"], "auth.conf")
    assert auth.stat().st_mode & 0o077 == 0


def test_the_redis_readiness_probe_answers(local_redis: LocalRedis) -> None:
    if shutil.which("redis-cli") is None:
        pytest.skip("no redis-cli")
    probe = local_redis.container["readinessProbe"]["exec"]["command"]
    probe = [arg.replace("-p 6379", f"-p {local_redis.port}") for arg in probe]
    env = {"PATH": os.environ["PATH"], "REDISCLI_AUTH": PASSWORD}
    assert subprocess.run(probe, env=env, check=False, timeout=10).returncode == 0
    env["REDISCLI_AUTH"] = "wrong"
    assert subprocess.run(probe, env=env, check=False, capture_output=True, timeout=10).returncode != 0


def test_the_redis_container_takes_its_password_and_memory_from_the_pod(
    rendered: dict[str, Rendered],
) -> None:
    container = _redis_container(rendered["base"])
    env = {e["name"]: e["valueFrom"] for e in container["env"]}
    secret = rendered["base"].of_kind("Secret")[0]["metadata"]["name"]
    assert env["REDIS_PASSWORD"]["secretKeyRef"] == {"name": secret, "key": "password"}
    assert env["REDISCLI_AUTH"] == env["REDIS_PASSWORD"]
    assert env["MEMORY_LIMIT_MIB"]["resourceFieldRef"]["resource"] == "limits.memory"
    assert container["image"].startswith("redis:7.")
