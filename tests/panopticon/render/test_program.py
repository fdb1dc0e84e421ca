"""Config validation (every message names its field) and render semantics, table-driven."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from panopticon.render.program import MAX_LABEL_VALUE, compile_config

BASE: dict[str, Any] = {
    "apiVersion": "metrics.appscode.com/v1alpha1",
    "kind": "MetricsConfiguration",
    "metadata": {"name": "test"},
    "spec": {
        "targetRef": {"apiVersion": "kubedb.com/v1", "kind": "MongoDB"},
        "metrics": [{"name": "info", "help": "h", "type": "gauge", "metricValue": {"value": 1}}],
    },
}

OBJ: dict[str, Any] = {
    "apiVersion": "kubedb.com/v1",
    "kind": "MongoDB",
    "metadata": {
        "name": "db",
        "namespace": "ns",
        "creationTimestamp": "2024-01-02T03:04:05Z",
        "labels": {"app.kubernetes.io/name": "mongo"},
    },
    "spec": {"replicas": 3, "version": "7.0", "ready": True, "size": "1Gi", "nothing": None},
    "status": {
        "phase": "Ready",
        "conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "False"}],
        "members": [{"name": "m0", "ports": [1, 2]}, {"name": "m1", "ports": [3]}],
    },
}


def config(*metrics: dict[str, Any], **spec: Any) -> dict[str, Any]:
    body = copy.deepcopy(BASE)
    if metrics:
        body["spec"]["metrics"] = list(metrics)
    body["spec"].update(spec)
    return body


def metric(**fields: Any) -> dict[str, Any]:
    return {"name": "m", "help": "h", "type": "gauge", **fields}


def errors_of(body: dict[str, Any]) -> list[str]:
    return [str(f) for f in compile_config(body).errors]


def render(*metrics: dict[str, Any], obj: dict[str, Any] | None = None, **spec: Any) -> dict[str, list[str]]:
    compiled = compile_config(config(*metrics, **spec))
    assert compiled.program is not None, [str(f) for f in compiled.errors]
    out = compiled.program.render(OBJ if obj is None else obj)
    return {k: v.splitlines() for k, v in out.families.items()}


# --- validation ------------------------------------------------------------------

INVALID = [
    ({"spec": {"metrics": []}}, "spec.targetRef: is required"),
    ({"spec": {"targetRef": {"kind": "Pod"}, "metrics": []}}, "spec.targetRef.apiVersion: is required"),
    (
        {"spec": {"targetRef": {"apiVersion": "a/b/c", "kind": "Pod"}, "metrics": []}},
        "spec.targetRef.apiVersion",
    ),
    ({"spec": {"targetRef": {"apiVersion": "v1", "kind": "pod"}, "metrics": []}}, "spec.targetRef.kind"),
    ({"spec": {"targetRef": {"apiVersion": "v1", "kind": "Pod"}}}, "spec.metrics: is required"),
    (
        {"spec": {"targetRef": {"apiVersion": "v1", "kind": "Pod"}, "metrics": {}}},
        "spec.metrics: must be a list",
    ),
]


@pytest.mark.parametrize(("patch", "message"), INVALID)
def test_structural_problems_name_the_field(patch: dict[str, Any], message: str) -> None:
    body = copy.deepcopy(BASE)
    body.update(patch)
    assert any(message in e for e in errors_of(body)), errors_of(body)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            metric(name="bad-name", metricValue={"value": 1}),
            "spec.metrics[0].name: 'bad-name' is not a valid",
        ),
        (
            metric(type="counter", metricValue={"value": 1}),
            "spec.metrics[0].type: 'counter' is not supported",
        ),
        ({"name": "m", "type": "gauge", "metricValue": {"value": 1}}, "spec.metrics[0].help: is required"),
        (metric(), "spec.metrics[0]: needs metricValue"),
        (metric(metricValue={"value": "one"}), "spec.metrics[0].metricValue.value: 'one' is not a number"),
        (metric(metricValue={"valueFromPath": ".a["}), "spec.metrics[0].metricValue.valueFromPath: unclosed"),
        (
            metric(metricValue={"valueFromExpression": "x +"}),
            "spec.metrics[0].metricValue.valueFromExpression",
        ),
        (metric(metricValue={"valueFromExpression": "int(x)"}), "unknown parameter 'x'"),
        (metric(labels=[{"key": "1a", "value": "v"}], metricValue={"value": 1}), "labels[0].key: '1a'"),
        (metric(labels=[{"key": "__x", "value": "v"}], metricValue={"value": 1}), "reserved by Prometheus"),
        (
            metric(labels=[{"key": "a"}], metricValue={"value": 1}),
            "spec.metrics[0].labels[0]: needs value or valuePath",
        ),
        (
            metric(labels=[{"key": "a", "value": "1"}, {"key": "a", "value": "2"}], metricValue={"value": 1}),
            "spec.metrics[0].labels[1].key: label 'a' is already set by spec.metrics[0].labels[0]",
        ),
        (
            metric(labels=[{"key": "namespace", "value": "x"}], metricValue={"value": 1}),
            "label 'namespace' is already the namespace label",
        ),
        (
            metric(labels=[{"key": "mongodb", "value": "x"}], metricValue={"value": 1}),
            "label 'mongodb' is already the object name label",
        ),
        (
            metric(params=[{"key": "a", "value": "1"}, {"key": "a", "value": "2"}], metricValue={"value": 1}),
            "params[1].key: duplicate param 'a'",
        ),
        (metric(params=[{"key": "a-b", "value": "1"}], metricValue={"value": 1}), "params[0].key: 'a-b'"),
        (
            metric(states={"labelKey": "phase", "values": [{"labelValue": "A"}]}),
            "spec.metrics[0].states.values[0].metricValue: is required",
        ),
        (
            metric(
                states={
                    "labelKey": "p",
                    "values": [
                        {"labelValue": "A", "metricValue": {"value": 1}},
                        {"labelValue": "A", "metricValue": {"value": 0}},
                    ],
                }
            ),
            "states.values[1].labelValue: duplicate state 'A'",
        ),
        (metric(states={"labelKey": "p", "values": []}), "states.values: must list at least one state"),
        (metric(field={"type": "Number", "path": ".a"}, metricValue={"value": 1}), "field.type: 'Number'"),
        (
            metric(field={"type": "Array"}, metricValue={"value": 1}),
            "field.path: is required when field.type is Array",
        ),
        (
            metric(
                labels=[{"key": "t", "valuePath": ".status.conditions[*].type"}], metricValue={"value": 1}
            ),
            "labels[0].valuePath: '.status.conditions[*].type' uses [*]",
        ),
        (
            metric(
                field={"type": "Array", "path": ".status.conditions"},
                labels=[{"key": "n", "valuePath": ".status.members[*].name"}],
                metricValue={"value": 1},
            ),
            "must follow '.status.conditions'",
        ),
        (
            metric(field={"type": "Integer", "path": ".a[*]"}, metricValue={"value": 1}),
            "[*] needs field.type: Array",
        ),
    ],
)
def test_metric_problems_name_the_field(bad: dict[str, Any], message: str) -> None:
    errors = errors_of(config(bad))
    assert any(message in e for e in errors), errors


def test_two_metrics_of_one_family_in_one_config_are_refused() -> None:
    errors = errors_of(config(metric(metricValue={"value": 1}), metric(metricValue={"value": 2})))
    assert any("spec.metrics[1].name" in e and "already defined by spec.metrics[0]" in e for e in errors)


def test_every_problem_is_listed_not_only_the_first() -> None:
    errors = errors_of(config(metric(name="a b", metricValue={"value": "x"}), metric(type="summary")))
    assert len(errors) >= 3


def test_precedence_is_reported_as_warnings() -> None:
    body = config(
        metric(
            labels=[{"key": "a", "value": "1", "valuePath": ".x"}],
            states={"labelKey": "s", "values": [{"labelValue": "v", "metricValue": {"value": 1}}]},
            metricValue={"value": 1, "valueFromPath": ".y"},
        )
    )
    warnings = [str(w) for w in compile_config(body).warnings]
    assert any("labels[0].valuePath: ignored" in w for w in warnings)
    assert any("metricValue: ignored: states take precedence" in w for w in warnings)


# --- naming ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_version", "kind", "name", "annotations", "family"),
    [
        ("kubedb.com/v1", "MongoDB", "status_phase", {}, "kubedb_com_mongodb_status_phase"),
        ("kubedb.com/v1alpha2", "MongoDB", "kubedb_mongodb_status_phase", {}, "kubedb_mongodb_status_phase"),
        ("v1", "Pod", "kube_pod_info", {}, "kube_pod_info"),
        ("v1", "Pod", "info", {}, "kube_pod_info"),
        ("apps/v1", "Deployment", "replicas", {}, "apps_deployment_replicas"),
        ("ops.kubedb.com/v1alpha1", "MongoDBOpsRequest", "type", {}, "ops_kubedb_com_mongodbopsrequest_type"),
        ("kubedb.com/v1", "MongoDB", "created", {"metrics.panopticon.dev/name-prefix": ""}, "created"),
        ("kubedb.com/v1", "MongoDB", "created", {"metrics.panopticon.dev/name-prefix": "db"}, "db_created"),
    ],
)
def test_family_names_follow_the_documented_rule(
    api_version: str, kind: str, name: str, annotations: dict[str, str], family: str
) -> None:
    body = config(
        metric(name=name, metricValue={"value": 1}), targetRef={"apiVersion": api_version, "kind": kind}
    )
    body["metadata"]["annotations"] = annotations
    program = compile_config(body).program
    assert program is not None
    assert [f.name for f in program.families] == [family]


# --- render semantics ------------------------------------------------------------


def test_default_labels_are_the_object_name_under_the_kind_and_the_namespace() -> None:
    assert render(metric(name="info", metricValue={"value": 1})) == {
        "kubedb_com_mongodb_info": ['kubedb_com_mongodb_info{mongodb="db",namespace="ns"} 1']
    }


def test_common_labels_and_labels_follow_in_order_and_missing_paths_are_omitted() -> None:
    out = render(
        metric(
            name="info",
            labels=[
                {"key": "version", "valuePath": ".spec.version"},
                {"key": "missing", "valuePath": ".spec.nope"},
                {"key": "null", "valuePath": ".spec.nothing"},
                {"key": "unit", "value": "byte"},
                {"key": "ready", "valuePath": ".spec.ready"},
                {"key": "name", "valuePath": ".metadata.labels['app.kubernetes.io/name']"},
            ],
            metricValue={"value": 1},
        ),
        commonLabels=[{"key": "app", "valuePath": ".metadata.name"}],
    )
    assert out["kubedb_com_mongodb_info"] == [
        'kubedb_com_mongodb_info{mongodb="db",namespace="ns",app="db",version="7.0",unit="byte",'
        'ready="true",name="mongo"} 1'
    ]


@pytest.mark.parametrize(
    ("value", "field", "sample"),
    [
        ({"valueFromPath": ".spec.replicas"}, None, "3"),
        ({"valueFromPath": ".spec.ready"}, None, "1"),
        ({"valueFromPath": ".spec.size"}, None, "1073741824"),
        (
            {"valueFromPath": ".metadata.creationTimestamp"},
            {"type": "DateTime", "path": ".metadata"},
            "1704164645",
        ),
        ({"value": "2.50"}, None, "2.5"),
        ({"valueFromExpression": "2 * 3"}, None, "6"),
        ({"value": 7, "valueFromPath": ".spec.replicas"}, None, "7"),
        ({"valueFromPath": ".spec.replicas", "valueFromExpression": "1"}, None, "3"),
    ],
)
def test_metric_values_follow_precedence_and_conversions(
    value: dict[str, Any], field: dict[str, Any] | None, sample: str
) -> None:
    m = metric(name="v", metricValue=value)
    if field:
        m["field"] = field
    assert render(m)["kubedb_com_mongodb_v"] == [
        f'kubedb_com_mongodb_v{{mongodb="db",namespace="ns"}} {sample}'
    ]


def test_a_value_path_that_resolves_to_nothing_gives_no_series_and_no_error() -> None:
    program = compile_config(config(metric(metricValue={"valueFromPath": ".spec.absent"}))).program
    assert program is not None
    out = program.render(OBJ)
    assert out.families == {} and out.errors == []


def test_a_field_path_that_resolves_to_nothing_skips_the_metric() -> None:
    m = metric(field={"type": "Integer", "path": ".spec.shardTopology"}, metricValue={"value": 1})
    assert render(m) == {}


def test_states_give_one_series_per_value_with_params_as_strings_and_nil() -> None:
    out = render(
        metric(
            name="phase",
            params=[
                {"key": "phase", "valuePath": ".status.phase"},
                {"key": "topo", "valuePath": ".spec.topo"},
            ],
            states={
                "labelKey": "phase",
                "values": [
                    {"labelValue": "Ready", "metricValue": {"valueFromExpression": "int(phase == 'Ready')"}},
                    {
                        "labelValue": "Halted",
                        "metricValue": {"valueFromExpression": "int(phase == 'Halted')"},
                    },
                    {"labelValue": "Nil", "metricValue": {"valueFromExpression": "int(topo == 'nil')"}},
                ],
            },
        )
    )
    assert out["kubedb_com_mongodb_phase"] == [
        'kubedb_com_mongodb_phase{mongodb="db",namespace="ns",phase="Ready"} 1',
        'kubedb_com_mongodb_phase{mongodb="db",namespace="ns",phase="Halted"} 0',
        'kubedb_com_mongodb_phase{mongodb="db",namespace="ns",phase="Nil"} 1',
    ]


def test_an_array_field_fans_out_one_series_per_element() -> None:
    out = render(
        metric(
            name="cond",
            field={"type": "Array", "path": ".status.conditions"},
            labels=[
                {"key": "type", "valuePath": ".status.conditions[*].type"},
                {"key": "status", "valuePath": ".status.conditions[*].status"},
                {"key": "version", "valuePath": ".spec.version"},
            ],
            params=[{"key": "s", "valuePath": ".status.conditions[*].status"}],
            metricValue={"valueFromExpression": "int(s == 'True')"},
        )
    )
    assert out["kubedb_com_mongodb_cond"] == [
        'kubedb_com_mongodb_cond{mongodb="db",namespace="ns",type="A",status="True",version="7.0"} 1',
        'kubedb_com_mongodb_cond{mongodb="db",namespace="ns",type="B",status="False",version="7.0"} 0',
    ]


def test_a_nested_array_field_fans_out_over_every_inner_element() -> None:
    out = render(
        metric(
            name="port",
            field={"type": "Array", "path": ".status.members[*].ports"},
            labels=[{"key": "member", "valuePath": ".status.members[*].name"}],
            metricValue={"valueFromPath": ".status.members[*].ports[*]"},
        )
    )
    assert [line.split("{", 1)[1] for line in out["kubedb_com_mongodb_port"]] == [
        'mongodb="db",namespace="ns",member="m0"} 1',
        'mongodb="db",namespace="ns",member="m0"} 2',
        'mongodb="db",namespace="ns",member="m1"} 3',
    ]


def test_duplicate_series_from_a_fan_out_are_dropped_and_counted() -> None:
    obj = copy.deepcopy(OBJ)
    obj["status"]["conditions"].append({"type": "A", "status": "True"})
    program = compile_config(
        config(
            metric(
                field={"type": "Array", "path": ".status.conditions"},
                labels=[{"key": "type", "valuePath": ".status.conditions[*].type"}],
                metricValue={"value": 1},
            )
        )
    ).program
    assert program is not None
    out = program.render(obj)
    assert len(out.families["kubedb_com_mongodb_m"].splitlines()) == 2
    assert [e.message for e in out.errors] == ["duplicate series dropped (same labels twice)"]


def test_a_bad_value_drops_only_its_series_and_counts_an_error() -> None:
    obj = copy.deepcopy(OBJ)
    obj["spec"]["replicas"] = "three"
    program = compile_config(
        config(
            metric(name="a", metricValue={"valueFromPath": ".spec.replicas"}),
            metric(name="b", metricValue={"value": 1}),
        )
    ).program
    assert program is not None
    out = program.render(obj)
    assert list(out.families) == ["kubedb_com_mongodb_b"]
    assert len(out.errors) == 1 and out.errors[0].family == "kubedb_com_mongodb_a"
    assert "'three' is not a number" in out.errors[0].message


def test_hostile_label_values_are_escaped_and_huge_ones_cut_and_counted() -> None:
    obj = copy.deepcopy(OBJ)
    obj["spec"]["version"] = 'a"b\\c\nd'
    obj["spec"]["huge"] = "x" * (MAX_LABEL_VALUE + 10)
    program = compile_config(
        config(
            metric(
                labels=[{"key": "v", "valuePath": ".spec.version"}, {"key": "h", "valuePath": ".spec.huge"}],
                metricValue={"value": 1},
            )
        )
    ).program
    assert program is not None
    out = program.render(obj)
    line = out.families["kubedb_com_mongodb_m"]
    assert 'v="a\\"b\\\\c\\nd"' in line
    assert f'h="{"x" * MAX_LABEL_VALUE}"' in line
    assert [e.message for e in out.errors] == [f"label h cut to {MAX_LABEL_VALUE} characters"]


def test_a_cluster_scoped_object_has_no_namespace_label() -> None:
    obj = copy.deepcopy(OBJ)
    del obj["metadata"]["namespace"]
    assert render(metric(name="i", metricValue={"value": 1}), obj=obj)["kubedb_com_mongodb_i"] == [
        'kubedb_com_mongodb_i{mongodb="db"} 1'
    ]


@pytest.mark.parametrize("obj", [None, 3, "x", [], {}, {"metadata": "x"}, {"metadata": {"name": 5}}])
def test_non_objects_render_without_exception(obj: Any) -> None:
    program = compile_config(config(metric(metricValue={"valueFromPath": ".spec.replicas"}))).program
    assert program is not None
    assert program.render(obj).families == {}
