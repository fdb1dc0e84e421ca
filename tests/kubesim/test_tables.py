"""Server-side printing: Tables for list, get and watch; CRD printer columns; ages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubesim.jsonpath import JsonPathError, compile_path
from kubesim.printers import human_duration
from tests.kubesim.client import Api

CRD_FILE = Path(__file__).parents[2] / "panopticon/data/crds/metricsconfigurations.metrics.appscode.com.yaml"
TABLE = (  # what kubectl get sends
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
    "application/json"
)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (150, "2m30s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600 + 60, "3h1m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (50 * 3600, "2d2h"),
        (8 * 86400, "8d"),
        (800 * 86400, "2y70d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_ages_are_printed_as_apimachinery_human_duration(seconds: int, shown: str) -> None:
    assert human_duration(seconds) == shown


CONDITIONS = {
    "status": {"conditions": [{"type": "Synced", "status": "True"}, {"type": "Ready", "status": "False"}]},
    "spec": {"targetRef": {"kind": "MongoDB"}, "items": [1, 2, 3], "dotted.key": "d"},
}


@pytest.mark.parametrize(
    ("path", "found"),
    [
        (".spec.targetRef.kind", ["MongoDB"]),
        ('.status.conditions[?(@.type=="Ready")].status', ["False"]),
        ('.status.conditions[?(@.type!="Ready")].type', ["Synced"]),
        (".status.conditions[?(@.reason)].type", []),
        (".spec.items[-1]", [3]),
        (".spec.items[*]", [1, 2, 3]),
        (".spec['dotted.key']", ["d"]),
        ("{.spec.missing}", []),
    ],
)
def test_printer_column_json_paths_select_as_client_go_jsonpath_does(path: str, found: list[object]) -> None:
    assert compile_path(path)(CONDITIONS) == found


@pytest.mark.parametrize("path", ["", ".spec..x", ".spec[?(@.a > 1)]", "spec(x)"])
def test_json_paths_outside_the_subset_are_refused(path: str) -> None:
    with pytest.raises(JsonPathError):
        compile_path(path)


def deployment(name: str, replicas: int, ready: int) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"spec": {"containers": [{"name": "c", "image": "nginx:1"}]}},
        },
        "status": {"readyReplicas": ready, "updatedReplicas": ready, "availableReplicas": ready},
    }


def test_a_deployment_list_as_table_has_kubectls_columns_and_metadata_rows(api: Api, ns: str) -> None:
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    for name, replicas in (("a", 3), ("b", 1)):
        created = api.must(api.post(path, deployment(name, replicas, 0)), 201)
        api.must(
            api.put(f"{path}/{name}/status", {**created, "status": deployment(name, 0, 1)["status"]}), 200
        )
    got = api.must(api.request("GET", path, headers={"Accept": TABLE}), 200)
    assert (got["kind"], got["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    names = [(c["name"], c["type"], c["priority"]) for c in got["columnDefinitions"]]
    assert names[:5] == [
        ("Name", "string", 0),
        ("Ready", "string", 0),
        ("Up-to-date", "integer", 0),
        ("Available", "integer", 0),
        ("Age", "string", 0),
    ]
    assert [n for n, _, p in names if p == 1] == ["Containers", "Images", "Selector"]
    rows = {r["cells"][0]: r for r in got["rows"]}
    assert rows["a"]["cells"][1:4] == ["1/3", 1, 1] and rows["b"]["cells"][1:4] == ["1/1", 1, 1]
    assert rows["a"]["cells"][5:] == ["c", "nginx:1", "app=a"]
    assert rows["a"]["object"]["kind"] == "PartialObjectMetadata"
    assert rows["a"]["object"]["metadata"]["name"] == "a"
    assert got["metadata"]["resourceVersion"]
    whole = api.must(
        api.request("GET", path, params={"includeObject": "Object"}, headers={"Accept": TABLE}), 200
    )
    assert whole["rows"][0]["object"]["kind"] == "Deployment" and "spec" in whole["rows"][0]["object"]
    bare = api.must(
        api.request("GET", f"{path}/a", params={"includeObject": "None"}, headers={"Accept": TABLE}), 200
    )
    assert len(bare["rows"]) == 1 and "object" not in bare["rows"][0]


def test_a_custom_resource_table_uses_the_crds_printer_columns(
    api: Api, ns: str, request: pytest.FixtureRequest
) -> None:
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    crd = yaml.safe_load(CRD_FILE.read_text())
    if api.post(crds, crd).status == 201:  # created here: removed again (other tests list CRDs)
        request.addfinalizer(lambda: api.must(api.delete(f"{crds}/{crd['metadata']['name']}"), 200))
    path = "/apis/metrics.appscode.com/v1alpha1/metricsconfigurations"
    config = {
        "apiVersion": "metrics.appscode.com/v1alpha1",
        "kind": "MetricsConfiguration",
        "metadata": {"name": f"mc-{ns}"},
        "spec": {"targetRef": {"apiVersion": "kubedb.com/v1", "kind": "MongoDB"}, "metrics": []},
    }
    created = api.must(api.post(path, config), 201)
    ready = {"conditions": [{"type": "Ready", "status": "True", "reason": "Compiled"}]}
    api.must(api.put(f"{path}/mc-{ns}/status", {**created, "status": ready}), 200)
    got = api.must(api.request("GET", f"{path}/mc-{ns}", headers={"Accept": TABLE}), 200)
    api.must(api.delete(f"{path}/mc-{ns}"), 200)
    assert [c["name"] for c in got["columnDefinitions"]] == ["Name", "API Version", "Kind", "Ready", "Age"]
    assert got["rows"][0]["cells"][:4] == [f"mc-{ns}", "kubedb.com/v1", "MongoDB", "True"]
    assert got["rows"][0]["cells"][4].endswith("s")  # an age, not the timestamp


def test_a_table_watch_sends_one_row_tables_and_the_columns_once(api: Api, ns: str) -> None:
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    api.must(api.post(path, deployment("w", 2, 0)), 201)
    w = api.watch(path, {}, headers={"Accept": TABLE})
    try:
        first = w.next_of(("ADDED",))
        api.must(api.patch(f"{path}/w", {"spec": {"replicas": 4}}), 200)
        second = w.next_of(("MODIFIED",))
    finally:
        w.close()
    assert first["object"]["kind"] == "Table" and first["object"]["columnDefinitions"]
    assert first["object"]["rows"][0]["cells"][:2] == ["w", "0/2"]
    assert not second["object"]["columnDefinitions"]
    assert second["object"]["rows"][0]["cells"][:2] == ["w", "0/4"]


def test_an_unknown_include_object_is_400(api: Api, ns: str) -> None:
    resp = api.request(
        "GET",
        f"/api/v1/namespaces/{ns}/configmaps",
        params={"includeObject": "All"},
        headers={"Accept": TABLE},
    )
    assert resp.status == 400
