"""Joined labels (`from`, issue 17): syntax errors by field path, offline golden render,
the related index's projection, change detection and owner chains."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from panopticon.config.joinspec import JoinSource
from panopticon.render.program import Program, compile_config
from panopticon.render.related import Dirty, Needs, RelatedIndex

GOLDEN = Path(__file__).parents[2] / "golden" / "joins"
CONFIG = yaml.safe_load((GOLDEN / "pods-config.yaml").read_text())


def program(config: dict[str, Any] = CONFIG) -> Program:
    compiled = compile_config(config)
    assert compiled.errors == [], [str(f) for f in compiled.errors]
    assert compiled.program is not None
    return compiled.program


def with_label(label: dict[str, Any], kind: str = "Pod", api_version: str = "v1") -> dict[str, Any]:
    config = copy.deepcopy(CONFIG)
    config["spec"]["targetRef"] = {"apiVersion": api_version, "kind": kind}
    config["spec"]["metrics"][0]["labels"] = [label]
    return config


def test_the_offline_render_joins_on_the_related_documents_of_its_input() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "panopticon",
            "render",
            "-c",
            str(GOLDEN / "pods-config.yaml"),
            "-o",
            str(GOLDEN / "cluster.yaml"),
        ],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode() == (GOLDEN / "cluster.prom").read_text()


@pytest.mark.parametrize(
    ("label", "kind", "field", "text"),
    [
        (
            {"key": "x", "valuePath": ".metadata.name", "from": "cluster"},
            "Pod",
            "labels[0].from",
            "not one of",
        ),
        ({"key": "x", "valuePath": ".metadata.name", "from": 3}, "Pod", "labels[0].from", "not int"),
        ({"key": "x", "valuePath": ".a", "from": "owner:Deployment"}, "Pod", "labels[0].from", "owner:<apiV"),
        ({"key": "x", "valuePath": ".a", "from": "owner:apps/v1/deploy"}, "Pod", "labels[0].from", "owner:<"),
        ({"key": "x", "value": "1", "from": "namespace"}, "Pod", "labels[0].from", "needs valuePath"),
        (
            {"key": "x", "valuePath": ".a", "from": "node"},
            "Deployment",
            "labels[0].from",
            "Pod's spec.nodeName",
        ),
        ({"key": "x", "valuePath": ".a[*].b", "from": "namespace"}, "Pod", "labels[0].valuePath", "[*]"),
        ({"key": "x", "valuePath": ".a[", "from": "namespace"}, "Pod", "labels[0].valuePath", ""),
    ],
)
def test_a_bad_from_is_an_error_naming_the_field(
    label: dict[str, Any], kind: str, field: str, text: str
) -> None:
    api_version = "apps/v1" if kind == "Deployment" else "v1"
    compiled = compile_config(with_label(label, kind, api_version))
    assert compiled.program is None
    assert [f.field for f in compiled.errors] == [f"spec.metrics[0].{field}"], compiled.errors
    assert text in compiled.errors[0].message


def test_validate_reports_an_unknown_from_by_field_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(with_label({"key": "x", "valuePath": ".a", "from": "namespaces"})))
    done = subprocess.run(
        [sys.executable, "-m", "panopticon", "validate", str(path)], capture_output=True, check=False
    )
    assert done.returncode == 1
    assert "spec.metrics[0].labels[0].from" in (done.stdout + done.stderr).decode()


def test_without_related_objects_joined_labels_are_left_out_and_series_kept() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"}, "spec": {}}
    out = program().render(pod)
    assert out.errors == []
    assert out.families == {"kube_pod_info": 'kube_pod_info{pod="p",namespace="a"} 1\n'}


def test_the_render_does_not_change_the_object() -> None:
    index = RelatedIndex(Needs.of([program().joins]))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"}, "spec": {}}
    before = copy.deepcopy(pod)
    program().render(pod, related=index)
    assert pod == before


def namespace(labels: dict[str, str], rv: str = "1") -> dict[str, Any]:
    meta = {"name": "shop", "uid": "ns-1", "labels": labels, "resourceVersion": rv}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def test_a_related_change_is_dirty_only_when_a_joined_value_changes() -> None:
    index = RelatedIndex(Needs.of([program().joins]))
    assert index.apply("ADDED", namespace({"team": "a"})) == Dirty("namespace", "shop")
    assert index.apply("MODIFIED", namespace({"team": "a", "other": "x"}, rv="2")) is None
    assert index.apply("MODIFIED", namespace({"team": "b"}, rv="3")) == Dirty("namespace", "shop")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"}}
    assert index.record(JoinSource("namespace"), pod) == {".metadata.labels.team": "b"}
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "n-1"}}
    assert index.apply("ADDED", node) == Dirty("node", "n1")
    # A DELETED event may carry only the uid (a vanished object).
    assert index.apply("DELETED", {"metadata": {"uid": "ns-1"}}) == Dirty("namespace", "shop")
    assert index.record(JoinSource("namespace"), pod) is None
    # Kinds nobody joins are not kept.
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "uid": "c-1"}}
    assert index.apply("ADDED", config_map) is None
    assert index.size == 1


def owned(kind: str, uid: str, owner: tuple[str, str] | None, api_version: str = "apps/v1") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": uid, "namespace": "shop", "uid": uid}
    if owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": owner[0],
                "name": owner[1],
                "uid": owner[1],
                "controller": False,
            },
            {
                "apiVersion": "apps/v1",
                "kind": owner[0],
                "name": owner[1],
                "uid": owner[1],
                "controller": True,
            },
        ]
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def test_owner_chains_follow_controller_references_and_report_unwatched_kinds() -> None:
    index = RelatedIndex(Needs.of([program().joins]))
    deployment = JoinSource("owner", "apps/v1", "Deployment")
    pod = owned("Pod", "p", ("ReplicaSet", "rs"), "v1")
    assert index.record(deployment, pod) is None
    assert index.unwatched == {("apps/v1", "ReplicaSet")}
    index.watched.add(("apps", "ReplicaSet"))
    assert index.apply("ADDED", owned("ReplicaSet", "rs", ("Deployment", "d"))) == Dirty("owner", "shop")
    assert index.apply("ADDED", owned("Deployment", "d", None)) == Dirty("owner", "shop")
    assert index.record(deployment, pod) == {".metadata.name": "d"}
    # A cycle of controller references ends (no owner found), it does not loop.
    index.apply("ADDED", owned("ReplicaSet", "x", ("ReplicaSet", "y")))
    index.apply("ADDED", owned("ReplicaSet", "y", ("ReplicaSet", "x")))
    assert index.record(deployment, owned("Pod", "q", ("ReplicaSet", "x"), "v1")) is None


def test_an_owner_in_another_namespace_counts_as_absent_as_in_kubernetes() -> None:
    """Owner references carry no namespace: Kubernetes treats a namespaced owner in
    another namespace as absent. Following it would also leave the dependent out of
    the owner's change scope, so the label would stay after the owner changed."""
    index = RelatedIndex(Needs.of([program().joins]))
    index.watched.add(("apps", "ReplicaSet"))
    deployment = JoinSource("owner", "apps/v1", "Deployment")
    index.apply("ADDED", owned("Deployment", "d", None))  # in "shop"
    index.apply("ADDED", owned("ReplicaSet", "rs", ("Deployment", "d")))
    pod = owned("Pod", "p", ("ReplicaSet", "rs"), "v1")
    assert index.record(deployment, pod) == {".metadata.name": "d"}
    elsewhere = owned("Pod", "q", ("ReplicaSet", "rs"), "v1")
    elsewhere["metadata"]["namespace"] = "other"
    assert index.record(deployment, elsewhere) is None
    # A chain's later hop across namespaces breaks it the same way.
    away = owned("ReplicaSet", "rs2", ("Deployment", "d"))
    away["metadata"]["namespace"] = "other"
    index.apply("ADDED", away)
    other_pod = owned("Pod", "r", ("ReplicaSet", "rs2"), "v1")
    other_pod["metadata"]["namespace"] = "other"
    assert index.record(deployment, other_pod) is None
    # A cluster-scoped owner (no namespace) is followed from any namespace.
    cluster = owned("Deployment", "c", None)
    del cluster["metadata"]["namespace"]
    index.apply("ADDED", cluster)
    index.apply("ADDED", owned("ReplicaSet", "rs3", ("Deployment", "c")))
    assert index.record(deployment, owned("Pod", "s", ("ReplicaSet", "rs3"), "v1")) == {".metadata.name": "c"}


def test_joins_are_refused_in_each_configs() -> None:
    config = copy.deepcopy(CONFIG)
    config["spec"]["commonLabels"] = [
        {"key": "team", "valuePath": ".metadata.labels.team", "from": "namespace"}
    ]
    config["spec"]["metrics"] = [
        {"name": "x", "help": "h", "type": "gauge", "each": {"type": "Info", "info": {"labelsFromPath": {}}}}
    ]
    compiled = compile_config(config)
    assert any(f.field == "spec.commonLabels[0].from" for f in compiled.errors), compiled.errors


def test_the_crd_schema_admits_the_joins_and_refuses_an_unknown_from() -> None:
    import jsonschema

    from tests.manifests.test_manifests import _crd_version, crd_json_schema

    validator = jsonschema.Draft202012Validator(crd_json_schema(_crd_version()["schema"]["openAPIV3Schema"]))
    assert [e.message for e in validator.iter_errors(CONFIG)] == []
    bad = with_label({"key": "x", "valuePath": ".a", "from": "owner:Deployment"})
    assert any("does not match" in e.message for e in validator.iter_errors(bad))
    common = copy.deepcopy(CONFIG)
    common["spec"]["commonLabels"] = [{"key": "team", "valuePath": ".a", "from": "namespaces"}]
    assert any("does not match" in e.message for e in validator.iter_errors(common))


def test_the_configuration_guide_shows_the_golden_config_and_its_render() -> None:
    text = (Path(__file__).parents[3] / "docs" / "configuration.md").read_text()
    config = (GOLDEN / "pods-config.yaml").read_text().split("\n", 1)[1]
    assert config in text
    assert (GOLDEN / "cluster.prom").read_text() in text
