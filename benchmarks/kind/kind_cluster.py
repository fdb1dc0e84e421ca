"""What the kind benchmark scripts share: the tool guard, the cluster's kubeconfig and
REST paths of objects (the REST client is `kind_api`).

The scripts need Docker, kind and kubectl; `require_tools` stops them with a clear
message (exit status 3) where those are missing, as on CI. A script given an
explicit `--kubeconfig` talks to that cluster instead (the simulator, for example)
and needs none of them. This module imports nothing heavy, and the scripts import
the simulator and the HTTP client only once past the guard, so it answers at once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubesim.resources import Registry, ResourceType

HERE = Path(__file__).resolve().parent
WORK = Path(os.environ.get("PANOPTICON_KIND_WORK", str(HERE / ".work")))
"""Kubeconfigs, configs and logs of runs; not committed (see .gitignore)."""
DEFAULT_CLUSTER = "panopticon-bench"
KIND_TOOLS = ("docker", "kind", "kubectl")
MISSING_TOOLS_EXIT = 3
"""Exit status of every script (shell and Python) when Docker, kind or kubectl is missing."""
SIM_UID = "benchmarks.panopticon.dev/sim-uid"
"""Annotation holding the uid the simulator gives the same object (a real API server
assigns its own uid, so this is how a kind object is matched to its simulator twin)."""
FIELD_MANAGER = "panopticon-bench"


def require_tools(tools: tuple[str, ...] = KIND_TOOLS, *, script: str = "") -> None:
    """Exit with status 3 and say what is missing unless every tool is on PATH."""
    missing = [t for t in tools if shutil.which(t) is None]
    if not missing:
        return
    name = script or Path(sys.argv[0]).name
    print(
        f"{name}: missing {' '.join(missing)} on PATH. The kind benchmarks need Docker, "
        f"kind >= 0.32 and kubectl (see benchmarks/kind/README.md); they never run in CI.",
        file=sys.stderr,
    )
    raise SystemExit(MISSING_TOOLS_EXIT)


def kubeconfig_for(kubeconfig: str | None, cluster: str) -> str:
    """`kubeconfig` when given (any cluster, no tools needed); else the kind cluster's,
    written by `kind get kubeconfig` under WORK (needs Docker, kind and kubectl)."""
    if kubeconfig:
        return kubeconfig
    require_tools()
    path = WORK / cluster / "kubeconfig"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        raw = subprocess.run(
            ["kind", "get", "kubeconfig", "--name", cluster], check=True, capture_output=True
        ).stdout
    except subprocess.CalledProcessError as e:
        err = e.stderr.decode(errors="replace").strip()
        raise SystemExit(f"no kind cluster {cluster!r} ({err}); run benchmarks/kind/setup.sh first") from None
    path.write_bytes(raw)
    path.chmod(0o600)
    return str(path)


def registry() -> Registry:
    """The built-in kinds and the CRDs the simulator installs (plural, scope, subresources)."""
    from kubesim.crds import builtin_crds
    from kubesim.resources import Registry, type_from_crd

    reg = Registry()
    for crd in builtin_crds():
        reg.add(type_from_crd(crd))
    return reg


def object_path(rtype: ResourceType, api_version: str, namespace: str, name: str, sub: str = "") -> str:
    """The REST path of an object (or, without a name, of its collection; without a
    namespace, of the collection across namespaces)."""
    group, _, version = api_version.rpartition("/")
    path = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if rtype.namespaced and namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{rtype.plural}"
    if name:
        path += f"/{name}"
    return path + (f"/{sub}" if sub else "")
