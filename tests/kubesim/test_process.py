"""`panopticon sim` as a separate process, driven through the admin HTTP API, the
way the reflector's fault tests and the shard tests will use it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubesim import AdminClient, AdminError, SimProcess
from tests.kubesim.client import Api

ARGS = ["--seed", "5", "--scale", "2", "--with-configs", "--namespaces", "2", "--bench-mongodbs", "200"]


@pytest.fixture(scope="module")
def proc() -> Iterator[SimProcess]:
    with SimProcess(ARGS) as p:
        yield p


@pytest.fixture
def api(proc: SimProcess) -> Api:
    return Api(proc.url, token=proc.token, admin=proc.admin)


def test_the_process_serves_the_default_workload(api: Api, proc: SimProcess) -> None:
    state = proc.admin.state()
    objects = state["objects"]
    assert objects["metricsconfigurations.metrics.appscode.com"] == 22
    assert objects["mongodbs.kubedb.com"] >= 200 + 2 * 10
    assert objects["pods"] > 0 and objects["deployments.apps"] == 2 * 3 + 4 * 2  # native + examples × scale
    pods = api.must(api.get("/api/v1/pods"), 200)
    assert len(pods["items"]) == objects["pods"]
    assert (
        api.must(api.get("/apis/kubedb.com/v1alpha2/namespaces/demo/mongodbs/mongodb-demo"), 200)[
            "apiVersion"
        ]
        == "kubedb.com/v1alpha2"
    )


def test_bulk_mutations_create_update_and_delete_thousands_quickly(api: Api, proc: SimProcess) -> None:
    def cm(i: int, value: str) -> dict[str, object]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"bulk-{i:05d}", "namespace": "bulk"},
            "data": {"v": value},
        }

    started = time.monotonic()
    created = proc.admin.bulk([{"op": "create", "object": cm(i, "1")} for i in range(3000)])
    assert {r["code"] for r in created["results"]} == {200}
    assert len({r["uid"] for r in created["results"]}) == 3000
    updated = proc.admin.bulk([{"op": "apply", "object": cm(i, "2")} for i in range(0, 3000, 2)])
    deleted = proc.admin.bulk(
        [
            {
                "op": "delete",
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "namespace": "bulk",
                "name": f"bulk-{i:05d}",
            }
            for i in range(1, 3000, 2)
        ]
    )
    assert time.monotonic() - started < 20
    assert updated["revision"] < deleted["revision"]
    listed = api.must(api.get("/api/v1/namespaces/bulk/configmaps"), 200)
    assert len(listed["items"]) == 1500 and {i["data"]["v"] for i in listed["items"]} == {"2"}
    bad = proc.admin.bulk(
        [{"op": "delete", "apiVersion": "v1", "kind": "ConfigMap", "namespace": "bulk", "name": "nope"}]
    )
    assert bad["results"][0]["code"] == 404


def test_admin_compaction_and_error_injection_reach_open_watches(api: Api, proc: SimProcess) -> None:
    api.create_namespace("proc-watch")
    old = api.rv_now("proc-watch")
    api.configmap("proc-watch", "a")
    proc.admin.compact()
    with api.watching("/api/v1/namespaces/proc-watch/configmaps", resourceVersion=str(old)) as w:
        assert w.next()["object"]["code"] == 410  # type: ignore[index]
    now = api.rv_now("proc-watch")
    with api.watching("/api/v1/namespaces/proc-watch/configmaps", resourceVersion=str(now)) as w:
        deadline = time.monotonic() + 5
        while not proc.admin.watches() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.admin.inject_watch_error(500, resource="configmaps") == 1
        events = w.events()
    assert [(e["type"], e["object"]["code"]) for e in events] == [("ERROR", 500)]


def test_admin_faults_config_and_request_log(api: Api, proc: SimProcess) -> None:
    mark = proc.admin.requests()["lastSeq"]
    proc.admin.throttle(1, form="json", retry_after=2)
    assert api.get("/api/v1/namespaces").status == 429
    assert api.get("/api/v1/namespaces").status == 200
    items = proc.admin.requests(since=mark)["items"]
    assert [r["status"] for r in items] == [429, 200]
    proc.admin.config(sharding=True)
    try:
        body = api.must(
            api.get(
                "/apis/kubedb.com/v1/mongodbs",
                shardSelector="shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000')",
            ),
            200,
        )
        assert body["metadata"]["shardInfo"]
    finally:
        proc.admin.config(sharding=False)
    with pytest.raises(AdminError):
        proc.admin.config(no_such_knob=1)


def test_admin_churn_streams_changes_at_the_asked_rate(api: Api, proc: SimProcess) -> None:
    now = api.rv_now("demo")
    with api.watching("/apis/kubedb.com/v1/mongodbs", resourceVersion=str(now), timeoutSeconds=2) as w:
        proc.admin.start_churn(400, resources=["mongodbs.kubedb.com"], seed=1)
        events = w.events()
        stats = proc.admin.stop_churn()
    assert stats["churn"] is None
    types = {e["type"] for e in events}
    assert {"MODIFIED"} <= types and len(events) > 200


def test_the_workload_endpoint_loads_mongodb_like_objects(api: Api, proc: SimProcess) -> None:
    loaded = proc.admin.load_workload(mongodbs={"count": 50, "seed": 9, "namespaces": ["wl-a", "wl-b"]})
    assert loaded["loaded"] == {"mongodbs": 50}
    assert len(api.must(api.get("/apis/kubedb.com/v1/namespaces/wl-b/mongodbs"), 200)["items"]) == 25


def test_sigterm_stops_the_process_cleanly(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    cmd = [
        sys.executable,
        "-m",
        "panopticon",
        "sim",
        "--port",
        "0",
        "--scale",
        "0",
        "--namespaces",
        "0",
        "--nodes",
        "0",
        "--ready-file",
        str(ready),
    ]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert child.stdout is not None
        line = child.stdout.readline().decode()
        assert line.startswith("READY http://127.0.0.1:")
        assert ready.read_text().strip() == line.split()[1]
        token = "panopticon-sim-token"
        assert AdminClient(line.split()[1], token).state()["revision"] > 0
        child.send_signal(signal.SIGTERM)
        assert child.wait(10) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        assert child.stdout is not None
        child.stdout.close()


def sim_stderr(tmp_path: Path, *extra: str) -> str:
    cmd = [sys.executable, "-m", "panopticon", "sim", "--port", "0", "--scale", "0", "--namespaces", "0",
           "--nodes", "0", "--kubeconfig-out", str(tmp_path / "kc"), *extra]  # fmt: skip
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().startswith("READY http")
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    return err


def test_a_plain_http_kubeconfig_comes_with_a_warning_that_kubectl_needs_https(tmp_path: Path) -> None:
    warning = "kubectl (client-go) sends the bearer token only over TLS"
    assert warning in sim_stderr(tmp_path)
    assert warning not in sim_stderr(tmp_path, "--https")
