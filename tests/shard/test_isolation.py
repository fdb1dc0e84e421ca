"""The isolation boundary, end to end: `panopticon run` against the simulator with
configs that fail in every way the issue found, and one whose compiled program
raises (a function injected by `tests.support.raising_run`).

Before the boundary, `(0-8) ** (1/3)` killed the configs task (the process exited)
and a render that raised killed the Deployment reflector in a loop, so the other
configs of the kind stopped updating and the culprit's status said Ready."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubesim import SimProcess
from tests.support.cluster import _get
from tests.support.redis_server import free_port

CONFIGS = "/apis/metrics.appscode.com/v1alpha1/metricsconfigurations"
NAMESPACE = "isolation"
"""The test's Deployments' namespace (the simulator has Deployments of its own)."""


def config(name: str, metric: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "metrics.appscode.com/v1alpha1",
        "kind": "MetricsConfiguration",
        "metadata": {"name": name},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment"},
            "metrics": [{"help": f"{name}.", "type": "gauge", **metric}],
        },
    }


def expression(name: str, text: str, params: list[dict[str, str]]) -> dict[str, Any]:
    return config(
        name, {"name": name.replace("-", "_"), "params": params, "metricValue": {"valueFromExpression": text}}
    )


STEADY = {"name": "steady", "metricValue": {"valueFromPath": ".spec.replicas"}}


def deployment(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"replicas": replicas},
    }


def eventually(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def scrape(port: int, *, everything: bool = False) -> list[str]:
    """The sample lines at `port` (of the test's namespace, unless `everything`)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text: str = r.read().decode()
    except OSError:
        return []
    return [
        line for line in text.splitlines() if line and line[0] != "#" and (everything or NAMESPACE in line)
    ]


def conditions(sim: SimProcess, name: str) -> dict[str, dict[str, Any]]:
    status = _get(sim, f"{CONFIGS}/{name}").get("status") or {}
    return {c["type"]: c for c in status.get("conditions", [])}


@pytest.fixture
def sim() -> Iterator[SimProcess]:
    process = SimProcess(["--scale", "0", "--mongodbs", "0"])
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_a_raising_program_and_go_float_cases_leave_every_other_config_of_the_kind_updating(
    sim: SimProcess, tmp_path: Path
) -> None:
    replicas = [{"key": "r", "valuePath": ".spec.replicas"}]
    names = [{"key": "name", "valuePath": ".metadata.name"}]
    sim.admin.bulk(
        [
            {"op": "create", "object": {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": NAMESPACE}}},
            {"op": "create", "object": deployment("boom", 2)},
            {"op": "create", "object": deployment("calm", 3)},
            {"op": "create", "object": expression("explosive", "explode(name)", names)},
            {"op": "create", "object": expression("cube-root", "(0-8) ** (1/3)", [])},
            {"op": "create", "object": expression("square-root", "-r ** 0.5", replicas)},
            {"op": "create", "object": config("steady", STEADY)},
        ]
    )  # fmt: skip
    port, shard_port = free_port(), free_port()
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        run = subprocess.Popen(
            [sys.executable, "-m", "tests.support.raising_run", "run",
             "--kubeconfig", str(sim.kubeconfig_path),
             "--host", "127.0.0.1", "--port", str(port), "--shard-port", str(shard_port),
             "--telemetry-port", str(free_port()), "--status-interval", "1", "--flush-interval", "0.02"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def steady(name: str, value: int) -> bool:
        return any(
            line.startswith("apps_deployment_steady{")
            and f'deployment="{name}"' in line
            and line.endswith(f" {value}")
            for line in scrape(port)
        )

    try:
        eventually(lambda: steady("boom", 2) and steady("calm", 3), "the steady config's series")
        lines = scrape(port)
        # Go's semantics: NaN, not an exception, for both of the issue's expressions.
        assert (
            sum(line.startswith("apps_deployment_cube_root{") and line.endswith(" NaN") for line in lines)
            == 2
        )
        assert (
            sum(line.startswith("apps_deployment_square_root{") and line.endswith(" NaN") for line in lines)
            == 2
        )
        # The object the injected function raises on loses that config's series only.
        explosive = [line for line in lines if line.startswith("apps_deployment_explosive{")]
        assert explosive == [f'apps_deployment_explosive{{deployment="calm",namespace="{NAMESPACE}"}} 1']

        # Every other config of the kind keeps updating, the culprit's object included.
        sim.admin.bulk(
            [
                {"op": "patch", "apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                 "namespace": NAMESPACE, "patch": {"spec": {"replicas": n}}}
                for name, n in (("boom", 7), ("calm", 5))
            ]
        )  # fmt: skip
        eventually(lambda: steady("boom", 7) and steady("calm", 5), "the steady config's updated series")

        # The culprit's status says what happened, with the count and the first error.
        eventually(lambda: "RenderErrors" in conditions(sim, "explosive"), "the RenderErrors condition")
        condition = conditions(sim, "explosive")["RenderErrors"]
        assert condition["status"] == "True" and condition["reason"] == "Faults"
        assert "unexpected RuntimeError while rendering: injected fault for boom" in condition["message"]
        assert f"Deployment {NAMESPACE}/boom" in condition["message"]
        assert "RenderErrors" not in conditions(sim, "steady")
        assert conditions(sim, "cube-root")["Ready"]["status"] == "True"

        faults = [
            line
            for line in scrape(shard_port, everything=True)
            if line.startswith("panopticon_shard_config_faults_total{")
        ]
        assert len(faults) == 1 and 'config="explosive"' in faults[0] and 'stage="render"' in faults[0]
        assert float(faults[0].rsplit(" ", 1)[1]) >= 2  # both versions of boom
        assert run.poll() is None, log_path.read_text()
        text = log_path.read_text()
        assert "Traceback" not in text and "died" not in text, text
        # Logged, rate-limited: one line for the config within the minute.
        assert text.count("config explosive: ") == 1, text
    finally:
        run.terminate()
        run.wait(20)


def test_validate_reports_the_issues_constant_expression_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "cube-root.yaml"
    path.write_text(yaml.safe_dump(expression("cube-root", "(0-8) ** (1/3)", [])))
    done = subprocess.run(
        [sys.executable, "-m", "panopticon", "validate", str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "1 valid, 0 invalid" in done.stderr
