"""kube-state-metrics' own unit tests of CRS semantics, ported: convert, render, compare.

Source: tests/data/ksm-crs/ksm-tests/ (KSM pkg/customresourcestate at c92fe0c5). Each Go
case builds compiled generators by hand and checks what they produce for one object
(`cr` in registry_factory_test.go). Here each case is written as the CRS config that
compiles to those generators, converted by `panopticon convert`, rendered by Panopticon
against the same object, and compared with KSM's expected series. KSM's expectations
are the element labels and values of `scrapeValuesFor`; the full pipeline adds the
resource's `customresource_*` labels to every series (`DefaultLabels`), so they are
added to the expectation here.

Errors: KSM logs "got nil while resolving path" for a value that is missing;
Panopticon counts no error for missing data (docs/migration.md). Where KSM's expected
error is about bad data (a value of the wrong type), Panopticon must count a render
error too.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.panopticon.convert.helpers import KSM_CRS, Series, convert_and_render, convert_text, crs, series

GVK = {"group": "myteam.io", "version": "v1", "kind": "Foo"}
GVK_LABELS = {
    "customresource_group": "myteam.io",
    "customresource_version": "v1",
    "customresource_kind": "Foo",
}

# registry_factory_test.go's `cr`, marshalled to JSON and back (numbers are float64 in
# Go; whole ones print the same as Python's ints), with the apiVersion and kind the
# converted config targets.
CR: dict[str, Any] = {
    "apiVersion": "myteam.io/v1",
    "kind": "Foo",
    "spec": {
        "replicas": 1,
        "version": "v0.0.0",
        "order": [{"id": 1, "value": True}, {"id": 3, "value": False}],
    },
    "status": {
        "active": {"type-a": 1, "type-b": 3},
        "phase": "foo",
        "sub": {"type-a": {"active": 1, "ready": 2}, "type-b": {"active": 3, "ready": 4}},
        "uptime": 43.21,
        "quantity_milli": "250m",
        "quantity_binarySI": "5Gi",
        "percentage": "28%",
        "condition_values": [{"name": "a", "value": 45}, {"name": "b", "value": 66}],
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "Provisioned", "status": "False"}],
    },
    "metadata": {
        "name": "foo",
        "labels": {"foo": "bar"},
        "annotations": {"qux": "quxx", "bar": "baz"},
        "percentage": "39%",
        "creationTimestamp": "2022-06-28T00:00:00Z",
    },
}

NAME = "kube_customresource_m"


def resource(each: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """One resource with one metric `m` whose `each` is `each`."""
    metric = {"name": "m", "help": "test", "each": each, **extra.pop("metric", {})}
    return {"groupVersionKind": GVK, "metrics": [metric], **extra}


def gauge(**fields: Any) -> dict[str, Any]:
    return {"type": "Gauge", "gauge": fields}


def info(**fields: Any) -> dict[str, Any]:
    return {"type": "Info", "info": fields}


def state_set(**fields: Any) -> dict[str, Any]:
    return {"type": "StateSet", "stateSet": fields}


def expect(*values: tuple[float, dict[str, str]], name: str = NAME) -> set[Series]:
    """KSM's expected eachValues, with the labels DefaultLabels adds."""
    return {series(name, value, **{**GVK_LABELS, **labels}) for value, labels in values}


def v(value: float, /, **labels: str) -> tuple[float, dict[str, str]]:
    return (value, labels)


# (Go test / case, CRS resource, expected series, KSM expects an error about bad data)
CASES: list[tuple[str, dict[str, Any], set[Series], bool]] = [
    # --- Test_addPathLabels: labels read from paths on the object (an Info on the object).
    (
        "Test_addPathLabels/all",
        resource(
            info(
                labelsFromPath={
                    "bool": ["spec", "order", "-1", "value"],
                    "number": ["spec", "replicas"],
                    "string": ["metadata", "labels", "foo"],
                }
            )
        ),
        expect(v(1, bool="false", number="1", string="bar")),
        False,
    ),
    (
        "Test_addPathLabels/*",
        resource(
            info(
                labelsFromPath={
                    "*1": ["metadata", "annotations"],
                    "bar": ["metadata", "labels", "foo"],
                    "label_object_*": ["metadata", "annotations"],
                }
            )
        ),
        expect(v(1, qux="quxx", bar="bar", label_object_qux="quxx", label_object_bar="baz")),
        False,
    ),
    (
        "Test_addPathLabels_indexOutOfRange",
        resource(info(labelsFromPath={"idx": ["spec", "order", "5"]})),
        set(),  # the label is skipped, so the Info has no label and no series
        False,
    ),
    # --- Test_values
    ("Test_values/single", resource(gauge(path=["spec", "replicas"])), expect(v(1)), False),
    (
        "Test_values/obj",
        resource(gauge(path=["status", "active"], labelFromKey="type")),
        expect(v(1, type="type-a"), v(3, type="type-b")),
        False,
    ),
    (
        "Test_values/deep obj",
        resource(
            gauge(
                path=["status", "sub"],
                labelFromKey="type",
                labelsFromPath={"active": ["active"]},
                valueFrom=["ready"],
            )
        ),
        expect(v(2, type="type-a", active="1"), v(4, type="type-b", active="3")),
        False,
    ),
    (
        "Test_values/path-relative valueFrom value",
        resource(
            gauge(path=["metadata"], labelsFromPath={"name": ["name"]}, valueFrom=["creationTimestamp"])
        ),
        expect(v(1.6563744e09, name="foo")),
        False,
    ),
    (
        "Test_values/non-existent path",
        resource(gauge(path=["foo"], labelsFromPath={"name": ["name"]}, valueFrom=["creationTimestamp"])),
        set(),  # KSM also logs "[foo]: got nil while resolving path": missing data, no error here
        False,
    ),
    (
        "Test_values/exist path but valueFrom path is non-existent single",
        resource(gauge(path=["spec", "replicas"], valueFrom=["non-existent"])),
        set(),
        False,
    ),
    (
        "Test_values/exist path but valueFrom path non-existent array",
        resource(
            gauge(
                path=["status", "condition_values"],
                labelsFromPath={"name": ["name"]},
                valueFrom=["non-existent"],
            )
        ),
        set(),
        False,
    ),
    (
        "Test_values/array",
        resource(
            gauge(path=["status", "condition_values"], labelsFromPath={"name": ["name"]}, valueFrom=["value"])
        ),
        expect(v(45, name="a"), v(66, name="b")),
        False,
    ),
    (
        "Test_values/timestamp",
        resource(gauge(path=["metadata", "creationTimestamp"])),
        expect(v(1656374400)),
        False,
    ),
    (
        "Test_values/quantity_milli",
        resource(gauge(path=["status", "quantity_milli"])),
        expect(v(0.25)),
        False,
    ),
    (
        "Test_values/quantity_binarySI",
        resource(gauge(path=["status", "quantity_binarySI"])),
        expect(v(5.36870912e09)),
        False,
    ),
    ("Test_values/percentage", resource(gauge(path=["status", "percentage"])), expect(v(0.28)), False),
    (
        "Test_values/path-relative valueFrom percentage",
        resource(gauge(path=["metadata"], labelsFromPath={"name": ["name"]}, valueFrom=["percentage"])),
        expect(v(0.39, name="foo")),
        False,
    ),
    (
        "Test_values/boolean_string",
        resource(gauge(path=["spec", "paused"], nilIsZero=True)),
        expect(v(0)),
        False,
    ),
    (
        "Test_values/info",
        resource(info(labelsFromPath={"version": ["spec", "version"]})),
        expect(v(1, version="v0.0.0")),
        False,
    ),
    ("Test_values/info nil path", resource(info(path=["does", "not", "exist"])), set(), False),
    (
        "Test_values/info label from key",
        resource(info(path=["status", "active"], labelFromKey="type")),
        expect(v(1, type="type-a"), v(1, type="type-b")),
        False,
    ),
    (
        "Test_values/info label from path",
        resource(info(path=["status", "sub"], labelsFromPath={"active": ["active"]})),
        expect(v(1, active="1"), v(1, active="3")),
        False,
    ),
    (
        "Test_values/stateset",
        resource(state_set(path=["status", "phase"], labelName="phase", list=["foo", "bar"])),
        expect(v(0, phase="bar"), v(1, phase="foo")),
        False,
    ),
    (
        "Test_values/stateset nil path",
        resource(state_set(path=["does", "not", "exist"], labelName="phase", list=["foo", "bar"])),
        set(),
        False,
    ),
    (
        "Test_values/stateset nil valueFrom",
        resource(
            state_set(
                path=["status"], valueFrom=["does", "not", "exist"], labelName="phase", list=["foo", "bar"]
            )
        ),
        set(),
        False,
    ),
    (
        "Test_values/stateset non-string value",
        resource(state_set(path=["spec", "replicas"], labelName="phase", list=["1", "2"])),
        set(),
        True,  # "[spec,replicas]: expected value for path to be string, got float64"
    ),
    (
        "Test_values/stateset non-string valueFrom",
        resource(state_set(path=["status"], valueFrom=["uptime"], labelName="phase", list=["foo", "bar"])),
        set(),
        True,
    ),
    (
        "Test_values/status_conditions",
        resource(gauge(path=["status", "conditions", "[type=Ready]", "status"])),
        expect(v(1)),
        False,
    ),
    (
        "Test_values/status_conditions_all",
        resource(
            gauge(path=["status", "conditions"], labelsFromPath={"type": ["type"]}, valueFrom=["status"])
        ),
        expect(v(0, type="Provisioned"), v(1, type="Ready")),
        False,
    ),
    (
        "Test_values/= expression matching",
        resource(info(labelsFromPath={"bar": ["metadata", "annotations", "bar=baz"]})),
        expect(v(1, bar="baz")),
        False,
    ),
    # --- Test_compiledFamily_BaseLabels: a family's constant and path labels.
    (
        "Test_compiledFamily_BaseLabels/both",
        resource(
            gauge(path=["spec", "replicas"]),
            metric={
                "commonLabels": {"hello": "world"},
                "labelsFromPath": {"foo": ["metadata", "annotations", "bar"]},
            },
        ),
        expect(v(1, hello="world", foo="baz")),
        False,
    ),
    # --- Test_eachValue_DefaultLabels: the element's labels win over the family's.
    (
        "Test_eachValue_DefaultLabels/all",
        resource(
            info(labelsFromPath={"foo": ["metadata", "labels", "foo"]}),
            metric={"commonLabels": {"foo": "baz", "baz": "quxx"}},
        ),
        expect(v(1, foo="bar", baz="quxx")),
        False,
    ),
    # --- Test_valuePath_Get: what a path reads, as a label (Go's %v of the value).
    *(
        (
            f"Test_valuePath_Get/{case}",
            resource(info(labelsFromPath={"got": path})),
            expect(v(1, got=text)),
            False,
        )
        for case, text, path in [
            ("obj", "1", ["spec", "replicas"]),
            ("array", "66", ["status", "condition_values", "[name=b]", "value"]),
            ("array index", "true", ["spec", "order", "0", "value"]),
            ("string", "bar", ["metadata", "labels", "foo"]),
            ("match number", "false", ["spec", "order", "[id=3]", "value"]),
            ("match bool", "3", ["spec", "order", "[value=false]", "id"]),
        ]
    ),
]


@pytest.mark.parametrize(("case", "config", "expected", "bad_data"), CASES, ids=[c[0] for c in CASES])
def test_a_ksm_case_converts_and_renders_to_the_series_ksm_expects(
    case: str, config: dict[str, Any], expected: set[Series], bad_data: bool
) -> None:
    rendered = convert_and_render(crs(config), [copy.deepcopy(CR)])
    assert rendered.series == expected
    if bad_data:
        assert rendered.errors, "KSM reports bad data here; Panopticon must count a render error"
    else:
        assert rendered.errors == []


def test_every_case_of_the_go_tests_is_ported() -> None:
    """The case names above are those of the Go files (`name: "..."` entries and test
    functions without a table), so a case added upstream shows up here."""
    source = (KSM_CRS / "ksm-tests" / "registry_factory_test.go").read_text()
    ported = {c[0].split("/", 1)[-1] for c in CASES}
    for line in source.splitlines():
        if '{name: "' in line and "Test_newCompiledMetric" not in line:
            name = line.split('{name: "', 1)[1].split('"', 1)[0]
            if name not in {"gauge path", "info path", "stateSet path"} and "labelsFromPath" not in name:
                assert name in ported, name
        if 'tt("' in line:
            assert line.split('tt("', 1)[1].split('"', 1)[0] in ported


# --- Test_newCompiledMetric_compileError: "[Ready]" is not a list lookup.
@pytest.mark.parametrize("kind", ["gauge", "info", "stateSet"])
@pytest.mark.parametrize("where", ["path", "labelsFromPath"])
def test_a_list_lookup_without_key_and_value_is_refused_by_field(kind: str, where: str) -> None:
    bad = ["status", "conditions", "[Ready]"]
    fields: dict[str, Any] = {"path": bad} if where == "path" else {"labelsFromPath": {"cond": bad}}
    if kind == "stateSet":
        fields |= {"labelName": "phase", "list": ["a"]}
    conversion = convert_text(crs(resource({"type": kind, kind: fields})))
    (error,) = conversion.errors
    field = "path" if where == "path" else "labelsFromPath.cond"
    assert error.finding.field == f"spec.resources[0].metrics[0].each.{kind}.{field}"
    assert "[Ready]" in error.finding.message and "list lookup" in error.finding.message


# --- Test_fullName: the family name from metricNamePrefix.
@pytest.mark.parametrize(
    ("prefix", "family"),
    [(None, "kube_customresource_count"), ("", "count"), ("bar_baz", "bar_baz_count")],
    ids=["defaults", "no prefix", "custom"],
)
def test_the_family_name_is_the_prefix_and_the_metric_name(prefix: str | None, family: str) -> None:
    config: dict[str, Any] = {
        "groupVersionKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "metrics": [{"name": "count", "help": "h", "each": gauge(path=["spec", "replicas"])}],
    }
    if prefix is not None:
        config["metricNamePrefix"] = prefix
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"replicas": 2},
    }
    rendered = convert_and_render(crs(config), [deployment])
    assert {name for name, _, _ in rendered.series} == {family}


# --- TestNewCustomResourceMetrics (custom_resource_metrics_test.go)
def new_custom_resource_metrics(prefix: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "groupVersionKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "labelsFromPath": {"name": ["metadata", "name"]},
        "commonLabels": {"hello": "world"},
        "metrics": [
            {
                "name": "test_metrics",
                "help": "metrics for testing",
                "each": info(path=["metadata", "annotations"], labelFromKey="test"),
            }
        ],
    }
    if prefix is not None:
        config["metricNamePrefix"] = prefix
    return config


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "annotations": {"a": "1", "b": "2"}},
}
DEPLOYMENT_LABELS = {
    "customresource_group": "apps",
    "customresource_kind": "Deployment",
    "customresource_version": "v1",
    "hello": "world",
    "name": "web",
}


@pytest.mark.parametrize(
    ("prefix", "family"),
    [(None, "kube_customresource_test_metrics"), ("apps_deployment", "apps_deployment_test_metrics")],
    ids=["cr metric with dynamic metric type", "cr metric with custom prefix"],
)
def test_a_resource_compiles_to_its_family_with_the_gvk_and_common_labels(
    prefix: str | None, family: str
) -> None:
    rendered = convert_and_render(crs(new_custom_resource_metrics(prefix)), [DEPLOYMENT])
    assert rendered.series == {
        series(family, 1, **DEPLOYMENT_LABELS, test="a"),
        series(family, 1, **DEPLOYMENT_LABELS, test="b"),
    }
    (config,) = rendered.conversion.configs
    assert config.body["spec"]["metrics"][0]["help"] == "metrics for testing"


def test_cr_metric_with_custom_prefix_expect_error() -> None:
    """The Go case: the same resource, compared with a result that lacks the prefix,
    must differ."""
    rendered = convert_and_render(crs(new_custom_resource_metrics("apps_deployment")), [DEPLOYMENT])
    assert {name for name, _, _ in rendered.series} != {"kube_customresource_test_metrics"}


# --- Test_Metrics_deserialization (config_test.go, example_config.yaml)
EXAMPLE_CONFIG = (KSM_CRS / "ksm-tests" / "example_config.yaml").read_text()


def test_ksm_example_config_has_a_field_ksm_ignores_and_the_converter_names_it() -> None:
    conversion = convert_text(EXAMPLE_CONFIG)
    assert [str(p.finding.field) for p in conversion.errors] == [
        "spec.resources[0].metrics[0].each.gauge.value"
    ]


def test_ksm_example_config_deserializes_merges_labels_and_keeps_errorlogv_as_a_note() -> None:
    foo = copy.deepcopy(CR)
    foo["status"]["other"] = 7
    rendered = convert_and_render(EXAMPLE_CONFIG, [foo], ignore_unknown=True)
    (config,) = rendered.conversion.configs
    metrics = config.body["spec"]["metrics"]
    assert metrics[0]["name"] == "active_count"
    # "labels are merged": the resource's name label reaches the second family.
    assert series("kube_customresource_other_count", 7, **GVK_LABELS, name="foo") in rendered.series
    # "errorLogV": KSM's log verbosity; Panopticon counts render errors instead, and says so.
    notes = [p for p in rendered.conversion.problems if p.finding.field.endswith("metrics[1].errorLogV")]
    assert len(notes) == 1 and not notes[0].is_error
