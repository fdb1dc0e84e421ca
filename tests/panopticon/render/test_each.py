"""Metrics with `each` (kube-state-metrics' generators) and `spec.defaultLabels`:
validation by field, and the rendering rules that are Panopticon's own (KSM's are
checked by tests/panopticon/convert/test_ksm_unit_cases.py)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from panopticon.render.families import resolve_families
from panopticon.render.offline import render_exposition
from panopticon.render.program import compile_config
from panopticon.render.schema import native_schemas

FOO = {
    "apiVersion": "myteam.io/v1",
    "kind": "Foo",
    "metadata": {"name": "foo", "namespace": "ns", "labels": {"namespace": "sneaky", "tier": "web"}},
    "spec": {"replicas": 2, "items": [{"n": "a", "v": 1}, {"n": "a", "v": 1}, {"n": "b", "v": 2}]},
    "status": {"phase": "Running"},
}


def config(metrics: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "metrics.appscode.com/v1alpha1",
        "kind": "MetricsConfiguration",
        "metadata": {"name": "foo", "annotations": {"metrics.panopticon.dev/name-prefix": "foo"}},
        "spec": {"targetRef": {"apiVersion": "myteam.io/v1", "kind": "Foo"}, "metrics": metrics, **spec},
    }


def metric(each: dict[str, Any], name: str = "m", **extra: Any) -> dict[str, Any]:
    return {"name": name, "help": "h", "type": "gauge", "each": each, **extra}


def render(body: dict[str, Any], obj: dict[str, Any] = FOO) -> tuple[str, list[str]]:
    compiled = compile_config(body)
    assert compiled.program is not None, [str(f) for f in compiled.errors]
    expo = render_exposition(resolve_families([compiled.program]), [obj])
    lines = [line for line in expo.to_bytes().decode().splitlines() if not line.startswith("#")]
    return "\n".join(lines), [e.error.message for e in expo.errors]


def findings(body: dict[str, Any]) -> list[str]:
    return [str(f) for f in compile_config(body, schemas=native_schemas()).findings]


def test_labels_are_written_in_key_order_as_ksm_writes_them() -> None:
    body = config(
        [metric({"type": "Gauge", "path": ".spec.replicas"}, labels=[{"key": "quxx", "value": "qux"}])],
        defaultLabels=False,
        commonLabels=[{"key": "foo", "value": "bar"}, {"key": "bar", "value": "baz"}],
    )
    assert render(body) == ('foo_m{bar="baz",foo="bar",quxx="qux"} 2', [])


def test_with_default_labels_the_object_name_and_namespace_come_first_and_cannot_be_replaced() -> None:
    body = config(
        [metric({"type": "Info", "path": ".metadata", "labels": [{"key": "*", "valuePath": ".labels"}]})]
    )
    text, errors = render(body)
    assert text == 'foo_m{foo="foo",namespace="ns",tier="web"} 1'
    assert errors == ["label namespace is reserved for the object's own label"]


def test_without_default_labels_plain_metrics_lose_the_name_and_namespace_labels_too() -> None:
    body = config(
        [{"name": "r", "help": "h", "type": "gauge", "metricValue": {"valueFromPath": ".spec.replicas"}}]
    )
    assert render(body)[0] == 'foo_r{foo="foo",namespace="ns"} 2'
    assert render({**body, "spec": {**body["spec"], "defaultLabels": False}})[0] == "foo_r 2"


def test_a_repeated_label_set_is_dropped_and_counted() -> None:
    each = {
        "type": "Gauge",
        "path": ".spec.items",
        "labels": [{"key": "n", "valuePath": ".n"}],
        "valueFrom": ".v",
    }
    text, errors = render(config([metric(each)], defaultLabels=False))
    assert text.splitlines() == ['foo_m{n="a"} 1', 'foo_m{n="b"} 2']
    assert errors == ["duplicate series dropped (same labels twice)"]


def test_two_metrics_of_one_name_are_one_family_with_the_first_help() -> None:
    cpu = metric({"type": "Gauge", "path": ".spec.replicas"}, labels=[{"key": "resource", "value": "cpu"}])
    memory = metric(
        {"type": "Gauge", "path": ".spec.replicas"}, labels=[{"key": "resource", "value": "memory"}]
    )
    memory["help"] = "other"
    body = config([cpu, memory], defaultLabels=False)
    compiled = compile_config(body)
    assert compiled.program is not None
    assert [h.help for h in compiled.program.families] == ["h"]
    assert [str(w) for w in compiled.warnings if "help" in w.field] == [
        "spec.metrics[1].help: differs from spec.metrics[0]'s; the family keeps the first"
    ]
    assert render(body)[0].splitlines() == ['foo_m{resource="cpu"} 2', 'foo_m{resource="memory"} 2']


def test_map_labels_with_unusable_names_or_too_many_fields_are_dropped_and_counted() -> None:
    obj = {**FOO, "metadata": {**FOO["metadata"], "annotations": {"1st": "x", "ok": "y"}}}
    body = config(
        [metric({"type": "Info", "labels": [{"key": "a_*", "valuePath": ".metadata.annotations"}]})],
        defaultLabels=False,
        commonLabels=[{"key": "*", "valuePath": ".metadata.annotations"}],
    )
    text, errors = render(body, obj)
    assert text == 'foo_m{a_1st="x",a_ok="y",ok="y"} 1'
    assert errors == ["*: '1st' is not a usable label name"]
    many = {**FOO, "metadata": {"name": "m", "annotations": {f"k{i}": "v" for i in range(300)}}}
    text, errors = render(body, many)
    assert text.count("=") == 2 * 256
    assert errors.count("a_*: more than 256 fields; rest dropped") == 1


def test_a_config_without_name_labels_and_default_labels_is_warned_about() -> None:
    body = config([metric({"type": "Gauge", "path": ".spec.replicas"})], defaultLabels=False)
    assert any("no label of m reads .metadata.name" in f for f in findings(body))
    named = config(
        [metric({"type": "Gauge", "path": ".spec.replicas"})],
        defaultLabels=False,
        commonLabels=[{"key": "name", "valuePath": ".metadata.name"}],
    )
    assert not any("reads .metadata.name" in f for f in findings(named))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"type": "Counter"}, "spec.metrics[0].each.type: 'Counter' is not one of Gauge, Info, StateSet"),
        ({"list": ["a"]}, "spec.metrics[0].each.list: is not used by type Gauge (only by StateSet)"),
        (
            {"labelFromKey": "1x"},
            "spec.metrics[0].each.labelFromKey: '1x' is not a valid Prometheus label name",
        ),
        ({"nilIsZero": "maybe"}, "spec.metrics[0].each.nilIsZero: must be true or false"),
        (
            {"path": ".spec.items[*].n"},
            "spec.metrics[0].each.path: '.spec.items[*].n': [*] is not used with each",
        ),
        ({"valueFrom": ".a["}, "spec.metrics[0].each.valueFrom: unclosed '['"),
        (
            {"labels": [{"key": "x*", "value": "v"}]},
            "spec.metrics[0].each.labels[0].value: 'x*' is a map label",
        ),
        (
            {"labels": [{"key": "namespace", "valuePath": ".n"}]},
            "label 'namespace' is the object's own label",
        ),
    ],
)
def test_each_problems_are_reported_by_field(change: dict[str, Any], expected: str) -> None:
    body = config([metric({"type": "Gauge", "path": ".spec.replicas", **change})])
    assert any(expected in f for f in findings(body)), findings(body)
    assert compile_config(body).program is None


def test_state_sets_need_a_label_name_and_states() -> None:
    body = config([metric({"type": "StateSet", "path": ".status.phase"})])
    problems = findings(body)
    assert "spec.metrics[0].each.labelName: is required for type StateSet" in problems
    assert "spec.metrics[0].each.list: must list at least one state" in problems


def test_an_unknown_field_of_each_is_a_warning_naming_it() -> None:
    body = config([metric({"type": "Gauge", "path": ".spec.replicas", "valuefrom": ".x"})])
    compiled = compile_config(body)
    assert compiled.program is not None
    (warning,) = compiled.warnings
    assert warning.field == "spec.metrics[0].each.valuefrom"
    assert warning.message.startswith("unknown field, ignored (each has type, path, labels")


def test_each_does_not_mix_with_the_other_metric_fields_or_metrics() -> None:
    body = config([metric({"type": "Gauge", "path": ".spec.replicas"}, metricValue={"value": 1})])
    assert (
        "spec.metrics[0].metricValue: is not used with each (each gives the series and their values)"
        in findings(body)
    )
    mixed = config(
        [
            metric({"type": "Gauge", "path": ".spec.replicas"}),
            {"name": "r", "help": "h", "type": "gauge", "metricValue": {"value": 1}},
        ]
    )
    assert any("spec.metrics[1]: has no each, but spec.metrics[0] does" in f for f in findings(mixed))


def test_map_labels_are_for_each_metrics_only() -> None:
    body = config(
        [{"name": "r", "help": "h", "type": "gauge", "metricValue": {"value": 1}}],
        commonLabels=[{"key": "l_*", "valuePath": ".metadata.labels"}],
    )
    assert "spec.commonLabels[0].key: 'l_*': map labels are for metrics with each only" in findings(body)


def test_each_paths_are_checked_against_the_kinds_schema() -> None:
    body = yaml.safe_load(
        """
        apiVersion: metrics.appscode.com/v1alpha1
        kind: MetricsConfiguration
        metadata: {name: d}
        spec:
          targetRef: {apiVersion: apps/v1, kind: Deployment}
          metrics:
            - {name: r, help: h, type: gauge, each: {type: Gauge, path: .spec.replica}}
            - name: s
              help: h
              type: gauge
              each: {type: Gauge, path: ".status.conditions[type=Available].status"}
        """
    )
    problems = findings(body)
    assert any(
        f.startswith("spec.metrics[0].each.path: '.spec.replica'") and "no field 'replica'" in f
        for f in problems
    )
    assert not any(f.startswith("spec.metrics[1]") for f in problems)


def test_a_metric_whose_each_is_invalid_is_not_reported_as_lacking_each() -> None:
    body = config(
        [metric({"type": "Counter"}), metric({"type": "Gauge", "path": ".spec.replicas"}, name="n")]
    )
    problems = findings(body)
    assert problems == ["spec.metrics[0].each.type: 'Counter' is not one of Gauge, Info, StateSet"]
