"""`aggregate: {function, by}`: validation by field path, partials, the combine rule, offline render."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from panopticon.config.documents import read_documents
from panopticon.render.combine import ExactSum, Groups, combine
from panopticon.render.exposition import Format
from panopticon.render.families import resolve_families
from panopticon.render.offline import render_exposition
from panopticon.render.program import compile_config
from panopticon.text import format_number
from tests.panopticon.render.test_program import OBJ, config, errors_of, metric

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data" / "aggregate"
GOLDEN = ROOT / "tests" / "golden" / "aggregate" / "pods.prom"
PHASE = {"key": "phase", "valuePath": ".status.phase"}


def counted(**fields: Any) -> dict[str, Any]:
    return metric(name="n", labels=[PHASE], metricValue={"value": 1}, **fields)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"aggregate": {"function": "avg", "by": ["phase"]}},
            "metrics[0].aggregate.function: 'avg' is not one of",
        ),
        ({"aggregate": {"by": ["phase"]}}, "metrics[0].aggregate.function: is required"),
        (
            {"aggregate": {"function": "count", "by": ["zone"]}},
            "metrics[0].aggregate.by[0]: 'zone' is not a label",
        ),
        ({"aggregate": {"function": "count", "by": "phase"}}, "metrics[0].aggregate.by: must be a list"),
        (
            {"aggregate": {"function": "count", "by": ["phase", "phase"]}},
            "aggregate.by[1]: duplicate label key",
        ),
        (
            {"aggregate": {"function": "count", "by": ["a-b"]}},
            "metrics[0].aggregate.by[0]: 'a-b' is not a label key",
        ),
        (
            {"aggregate": {"function": "count", "group": ["phase"]}},
            "metrics[0].aggregate.group: unknown field",
        ),
        ({"aggregate": "count"}, "metrics[0].aggregate: must be an object"),
        ({"aggregate": {"function": "sum", 1: "x", "a": "y"}}, "metrics[0].aggregate.1: unknown field"),
        ({"aggregate": {"function": ["sum"]}}, "metrics[0].aggregate.function: \"['sum']\" is not one of"),
    ],
)
def test_bad_aggregates_are_reported_by_field_path(fields: dict[str, Any], message: str) -> None:
    errors = errors_of(config(counted(**fields)))
    assert any(message in e for e in errors), errors


def test_aggregating_a_stateset_or_an_each_metric_is_refused() -> None:
    states = metric(
        name="phase",
        aggregate={"function": "count", "by": ["phase"]},
        states={"labelKey": "phase", "values": [{"labelValue": "Running", "metricValue": {"value": 1}}]},
    )
    assert any(
        "metrics[0].aggregate: cannot aggregate a metric with states" in e for e in errors_of(config(states))
    )
    each = {"name": "e", "help": "h", "type": "gauge", "each": {"type": "Gauge", "path": ".spec.replicas"}}
    each["aggregate"] = {"function": "sum"}
    assert any(
        "metrics[0].aggregate: cannot aggregate a metric with each" in e for e in errors_of(config(each))
    )


def test_by_may_name_the_default_and_common_labels_but_not_when_defaultlabels_is_false() -> None:
    by = {"function": "count", "by": ["namespace", "mongodb", "team"]}
    ok = config(counted(aggregate=by), commonLabels=[{"key": "team", "value": "a"}])
    assert errors_of(ok) == []
    bad = config(counted(aggregate=by), commonLabels=[{"key": "team", "value": "a"}], defaultLabels=False)
    assert sum("is not a label of this metric" in e for e in errors_of(bad)) == 2


def _program(name: str, kind: str, **aggregate: Any) -> Any:
    m = counted(aggregate=aggregate) if aggregate else counted()
    body = config(m, targetRef={"apiVersion": "v1", "kind": kind})
    body["metadata"]["name"] = name
    body["metadata"]["annotations"] = {"metrics.panopticon.dev/name-prefix": ""}
    compiled = compile_config(body)
    assert compiled.program is not None, compiled.errors
    return compiled.program


def test_an_aggregate_family_never_mixes_with_per_object_series_or_another_aggregation() -> None:
    resolution = resolve_families(
        [
            _program("a", "Pod", function="count", by=["phase"]),
            _program("b", "Node", function="count", by=["phase"]),  # agrees: shared
            _program("c", "Service"),  # per-object series of the same name
            _program("d", "Secret", function="sum", by=["phase"]),
        ]
    )
    assert resolution.families["n"].configs == ("a", "b")
    assert "per-object series vs aggregate count by (phase)" in str(resolution.conflicts["c"][0])
    assert "aggregate sum by (phase) vs aggregate count by (phase)" in str(resolution.conflicts["d"][0])


def test_each_object_stores_one_partial_line_per_group_with_only_the_by_labels() -> None:
    obj = dict(OBJ, status={"members": [{"role": "a", "n": 2}, {"role": "b", "n": 3}, {"role": "a", "n": 4}]})
    m = metric(
        name="members",
        field={"path": ".status.members", "type": "Array"},
        labels=[{"key": "role", "valuePath": ".status.members[*].role"}],
        metricValue={"valueFromPath": ".status.members[*].n"},
    )
    for function, expected in [("count", "2|1"), ("sum", "6|3"), ("min", "2|3"), ("max", "4|3")]:
        compiled = compile_config(config(dict(m, aggregate={"function": function, "by": ["role"]})))
        assert compiled.program is not None, compiled.errors
        text = compiled.program.render(obj).families["kubedb_com_mongodb_members"]
        assert text == (
            f'kubedb_com_mongodb_members{{role="a"}} {expected.split("|")[0]}\n'
            f'kubedb_com_mongodb_members{{role="b"}} {expected.split("|")[1]}\n'
        ), function


def test_the_combined_figure_does_not_depend_on_how_partials_are_split_or_ordered() -> None:
    rng = random.Random(17)
    for function in ("count", "sum", "min", "max"):
        for _ in range(50):
            values = [
                rng.choice([rng.uniform(-1e6, 1e6), rng.randint(-5, 5), 1e-9, 1e16, 0.1]) for _ in range(60)
            ]
            if rng.random() < 0.2:
                values.append(math.nan)
            lines = [f'f{{g="{rng.randint(0, 3)}"}} {v!r}\n'.encode() for v in values]
            whole = combine(function, [b"".join(lines)])
            for _ in range(3):
                rng.shuffle(lines)
                cut = sorted(rng.sample(range(len(lines)), 5))
                parts = [b"".join(lines[a:b]) for a, b in zip([0, *cut], [*cut, len(lines)], strict=True)]
                assert combine(function, parts) == whole


def test_sums_are_exact_and_min_max_ignore_nan_as_promql_does() -> None:
    total = ExactSum()
    for v in [1e16, 1.0, -1e16, 0.1, 0.2]:
        total.add(v)
    assert total.value() == math.fsum([1e16, 1.0, -1e16, 0.1, 0.2]) == 1.3
    assert combine("min", [b"f NaN\nf 3\nf NaN\n"]) == b"f 3\n"
    assert combine("max", [b"f NaN\n"]) == b"f NaN\n"
    assert combine("sum", [b"f +Inf\nf -Inf\n"]) == b"f NaN\n"
    assert combine("count", [b'f{a="x"} 2\nf{a="x"} 3\nf 1\n']) == b'f 1\nf{a="x"} 5\n'


def test_offline_render_matches_the_golden_file() -> None:
    configs = [c for c in yaml.safe_load_all((DATA / "configs.yaml").read_text())]
    programs = []
    for body in configs:
        compiled = compile_config(body)
        assert compiled.program is not None, compiled.errors
        programs.append(compiled.program)
    objects = [doc.body for doc in read_documents(str(DATA / "objects.yaml"))]
    expo = render_exposition(resolve_families(programs), objects)
    assert not expo.errors
    assert expo.to_bytes(Format.TEXT).decode() == GOLDEN.read_text()
    # The figures, independently of the golden file (4 Pods have a phase, 1 has none).
    text = GOLDEN.read_text()
    assert 'kube_pod_phase_count{phase="Running"} 2\n' in text
    assert 'kube_pod_phase_count{phase="Deployment"} 1\n' in text  # the second config's share
    assert "kube_pod_phase_count 1\n" in text  # no phase: the group without the label
    assert 'kube_pod_restarts_total{namespace="shop"} 8\n' in text  # 2 + 0 + 5 + 1
    assert "kube_pod_max_restarts 5\n" in text
    assert expo.series_count() == 9


def test_the_fast_paths_give_what_the_general_rule_gives() -> None:
    ones = b'f{g="a"} 1\nf{g="b"} 1\nf{g="a"} 1\nf 1\n'
    for function in ("count", "sum", "min", "max"):
        general = Groups[bytes](function)
        for line in ones.splitlines():
            key, _, text = line.rpartition(b" ")
            general.add(key, float(text))
        assert combine(function, [ones]) == b"".join(
            key + b" " + format_number(v).encode() + b"\n" for key, v in general.items()
        )
    # Integers and floats in one group: the integers' exact sum joins the floats'.
    assert combine("sum", [b"f 9007199254740993\nf 0.5\n", b"f -9007199254740992\n"]) == b"f 1.5\n"
    assert combine("sum", [b"f 1\nf x\n\nno-space\n"]) == b"f 1\n"  # malformed lines are skipped


def test_the_configuration_guide_shows_what_render_gives_for_its_aggregation_example() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    section = text[text.index("## Aggregations") :]
    config = section[section.index("```yaml\n") + 8 : section.index("```\n", section.index("```yaml\n"))]
    shown = section[section.index("```text\n") + 8 : section.index("```\n", section.index("```text\n"))]
    compiled = compile_config(yaml.safe_load(config))
    assert compiled.program is not None, compiled.errors
    objects = [doc.body for doc in read_documents(str(DATA / "objects.yaml")) if doc.body["kind"] == "Pod"]
    rendered = render_exposition(resolve_families([compiled.program]), objects).to_bytes().decode()
    assert [line for line in rendered.splitlines() if not line.startswith("#")] == shown.splitlines()


def test_hostile_label_values_stay_whole_through_partials_and_combine() -> None:
    m = counted(aggregate={"function": "count", "by": ["phase"]})
    compiled = compile_config(config(m))
    assert compiled.program is not None, compiled.errors
    texts = []
    for phase in ['a",phase="b', "x} 7\ny", "back\\slash 1", 'a",phase="b']:
        obj = dict(OBJ, status={"phase": phase})
        texts.append(compiled.program.render(obj).families["kubedb_com_mongodb_n"].encode())
    served = combine("count", texts).decode()
    assert served == (
        'kubedb_com_mongodb_n{phase="a\\",phase=\\"b"} 2\n'
        'kubedb_com_mongodb_n{phase="back\\\\slash 1"} 1\n'
        'kubedb_com_mongodb_n{phase="x} 7\\ny"} 1\n'
    )


def test_a_sum_beyond_the_float_range_is_an_infinity_not_an_error() -> None:
    assert combine("sum", [b"f 1e308\n", b"f 1e308\n"]) == b"f +Inf\n"
    assert combine("sum", [b"f -1e308\nf -1e308\n"]) == b"f -Inf\n"
