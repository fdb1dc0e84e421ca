"""`spec.namespaceSelector` (issue 17): a LabelSelector on the target's Namespace, read
through the joins' related index, so that relabelling a Namespace re-renders its objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from panopticon.render.families import resolve_families
from panopticon.render.offline import render_exposition
from panopticon.render.program import Program, compile_config
from panopticon.render.related import Dirty, Needs, RelatedIndex


def config(ns_selector: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "metrics.appscode.com/v1alpha1",
        "kind": "MetricsConfiguration",
        "metadata": {"name": "pods"},
        "spec": {
            "targetRef": {"apiVersion": "v1", "kind": "Pod"},
            "namespaceSelector": ns_selector,
            "metrics": [{"name": "info", "help": "h", "type": "gauge", "metricValue": {"value": 1}}],
            **extra,
        },
    }


def program(body: dict[str, Any]) -> Program:
    compiled = compile_config(body)
    assert compiled.errors == [], compiled.errors
    assert compiled.program is not None
    return compiled.program


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "uid": name, "labels": labels},
    }


def pod(name: str, ns: str | None) -> dict[str, Any]:
    meta = {"name": name, "uid": name} | ({"namespace": ns} if ns else {})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {}}


@pytest.mark.parametrize(
    ("selector", "selected"),
    [
        ({"matchLabels": {"team": "pay"}}, {"a"}),
        ({"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["pay"]}]}, {"b", "c", "d"}),
        ({"matchExpressions": [{"key": "team", "operator": "Exists"}]}, {"a", "b"}),
        ({"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}, {"c", "d"}),
        ({}, {"a", "b", "c", "d"}),
    ],
)
def test_objects_are_selected_by_their_namespace_labels_offline(
    selector: dict[str, Any], selected: set[str]
) -> None:
    # a: in namespace pay (team=pay); b: team=ops; c: namespace without labels;
    # d: namespace not in the input (unknown: no labels, as the API server would see it).
    docs = [namespace("pay", team="pay"), namespace("ops", team="ops"), namespace("bare")]
    docs += [pod("a", "pay"), pod("b", "ops"), pod("c", "bare"), pod("d", "gone")]
    expo = render_exposition(resolve_families([program(config(selector))]), docs)
    got = {line.split('pod="')[1].split('"')[0] for line in "".join(expo.lines["kube_pod_info"]).splitlines()}
    assert got == selected


def test_a_relabelled_namespace_is_dirty_and_flips_its_objects() -> None:
    p = program(config({"matchLabels": {"team": "pay"}}))
    index = RelatedIndex(Needs.of([p.joins]))
    index.apply("ADDED", namespace("ops", team="ops"))
    assert p.render(pod("x", "ops"), related=index).families == {}
    assert index.apply("MODIFIED", namespace("ops", team="pay")) == Dirty("namespace", "ops")
    assert "kube_pod_info" in p.render(pod("x", "ops"), related=index).families
    assert index.apply("MODIFIED", namespace("ops", team="pay", other="x")) == Dirty("namespace", "ops")


def test_namespace_selector_combines_with_selector_and_works_with_each() -> None:
    body = config({"matchLabels": {"team": "pay"}}, selector={"matchLabels": {"app": "web"}})
    p = program(body)
    index = RelatedIndex(Needs.of([p.joins]))
    index.apply("ADDED", namespace("pay", team="pay"))
    web = pod("w", "pay")
    web["metadata"]["uid"] = "7"
    web["metadata"]["labels"] = {"app": "web"}
    assert p.render(web, related=index).families
    assert p.render(pod("o", "pay"), related=index).families == {}
    body["spec"]["metrics"] = [
        {"name": "x", "help": "h", "type": "gauge", "each": {"type": "Gauge", "path": ".metadata.uid"}}
    ]
    each = program(body)
    assert each.render(web, related=index).families
    assert each.render(web).families == {}  # its namespace unknown: no labels, not selected


def test_a_bad_namespace_selector_is_an_error_naming_the_field() -> None:
    errors = compile_config(config({"matchLabels": {"team": "not valid!"}})).errors
    assert [e.field for e in errors] == ["spec.namespaceSelector.matchLabels['team']"], errors


def test_the_configuration_guide_shows_what_its_namespace_selector_example_renders() -> None:
    root = Path(__file__).parents[3]
    section = (root / "docs" / "configuration.md").read_text().split("### namespaceSelector", 1)[1]
    body = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    shown = section.split("```text\n", 1)[1].split("```", 1)[0]
    objects = list(yaml.safe_load_all((root / "tests" / "golden" / "joins" / "cluster.yaml").read_text()))
    expo = render_exposition(resolve_families([program(body)]), objects)
    assert "".join(expo.lines["kube_pod_payments_info"]) == shown
