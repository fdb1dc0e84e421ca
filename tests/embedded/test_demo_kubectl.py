"""The demo as a new user tries it: copy the printed kubectl line, then use kubectl as on a cluster."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.redis_server import free_port

VENV_BIN = Path(sys.executable).parent
KUBECTL = VENV_BIN / "kubectl" if (VENV_BIN / "kubectl").exists() else shutil.which("kubectl")
pytestmark = pytest.mark.skipif(
    KUBECTL is None or shutil.which("openssl") is None, reason="needs kubectl and openssl"
)


def read_banner(proc: subprocess.Popen[str], within: float) -> list[str]:
    """The demo's stdout up to its "Ctrl-C to stop." line."""
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if "Ctrl-C to stop." in line:
                break
        done.set()

    threading.Thread(target=read, daemon=True).start()
    done.wait(within)
    return lines


def test_the_printed_kubeconfig_line_works_with_kubectl(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "PATH": f"{Path(str(KUBECTL)).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("KUBECONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "panopticon", "demo", "--port", str(free_port()), "--telemetry-port", "0",
         "--shard-port", str(free_port()), "--scale", "1", "--mongodbs", "5", "--churn", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        banner = read_banner(proc, within=180)
        printed = next((line.split("kubectl:", 1)[1].strip() for line in banner if "kubectl:" in line), None)
        assert printed, f"no kubectl line in the banner: {banner}"
        assert printed.startswith("export KUBECONFIG=") and printed.endswith("kubectl get mongodbs -A")

        def sh(command: str) -> str:
            done = subprocess.run(
                ["bash", "-c", f"{printed.split(';')[0]}; {command}"],
                capture_output=True, text=True, env=env, timeout=60, check=False,
            )  # fmt: skip
            assert done.returncode == 0, f"{command}: {done.stderr}"
            return done.stdout

        mongodbs = sh(printed.split(";", 1)[1])
        assert mongodbs.splitlines()[0].split()[:3] == ["NAMESPACE", "NAME", "VERSION"]
        assert len(mongodbs.splitlines()) > 5
        assert sh("kubectl create deployment web --image=nginx").strip() == "deployment.apps/web created"
        assert sh("kubectl scale deployment web --replicas=3").strip() == "deployment.apps/web scaled"
        deployments = sh("kubectl get deployments").splitlines()
        assert deployments[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
        assert next(line.split() for line in deployments if line.startswith("web "))[1] == "0/3"
    finally:
        proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)
    assert proc.returncode == 0
