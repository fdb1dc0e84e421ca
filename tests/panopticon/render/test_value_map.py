"""`metricValue.valueMap`: a field's value (a phase, a flag) as a number, with a default."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.panopticon.render.test_program import OBJ, errors_of, metric, render

PHASES = {"Running": 1, "Pending": 2, "Succeeded": 3, "Failed": 4}


def obj_with(**status: Any) -> dict[str, Any]:
    body = copy.deepcopy(OBJ)
    body["status"] = status
    return body


@pytest.mark.parametrize(
    ("status", "default", "expected"),
    [
        ({"phase": "Pending"}, 0, ["2"]),
        ({"phase": "Failed"}, None, ["4"]),
        ({"phase": "Unknown"}, 0, ["0"]),  # not listed: the default
        ({"phase": "Unknown"}, None, []),  # not listed, no default: no series
        ({"phase": "Unknown"}, -1.5, ["-1.5"]),
        ({}, 0, []),  # a missing path: no series, whatever the default
        ({"phase": None}, 0, []),  # null is missing
        ({"phase": ["Running"]}, 7, ["7"]),  # not a scalar: not listed
        ({"phase": "running"}, 9, ["9"]),  # case matters, as in label matching
    ],
)
def test_a_value_map_codes_a_string_field(status: dict[str, Any], default: Any, expected: list[str]) -> None:
    value: dict[str, Any] = {"valueFromPath": ".status.phase", "valueMap": PHASES}
    if default is not None:
        value["default"] = default
    out = render(metric(name="phase_code", metricValue=value), obj=obj_with(**status))
    lines = out.get("kubedb_com_mongodb_phase_code", [])
    assert [line.rsplit(" ", 1)[1] for line in lines if not line.startswith("#")] == expected


def test_keys_match_booleans_and_numbers_as_written_in_yaml() -> None:
    # YAML reads `true:` and `1:` as a boolean and an int; objects hold booleans and numbers.
    # (Python's dicts take True and 1 as one key, so they are in separate maps here.)
    flags = yaml.safe_load("{true: 10, false: 20, 'null': 50}")
    numbers = yaml.safe_load("{1: 30, 2.5: 40}")
    cases = [(flags, True, "10"), (flags, False, "20"), (flags, "true", "10"), (flags, "null", "50")]
    cases += [(numbers, 1, "30"), (numbers, 2.5, "40"), (numbers, "1", "30"), (numbers, 1.0, "30")]
    for value_map, field, number in cases:
        value = {"valueFromPath": ".status.x", "valueMap": value_map}
        out = render(metric(name="x", metricValue=value), obj=obj_with(x=field))
        assert out["kubedb_com_mongodb_x"][-1].endswith(f" {number}"), (field, out)


def test_value_maps_work_inside_states_and_array_fan_outs() -> None:
    state = {
        "labelValue": "ready",
        "metricValue": {"valueFromPath": ".status.phase", "valueMap": {"Ready": 1}, "default": 0},
    }
    out = render(
        metric(name="s", states={"labelKey": "state", "values": [state]}), obj=obj_with(phase="Ready")
    )
    assert out["kubedb_com_mongodb_s"][-1].endswith('state="ready"} 1')
    fan = metric(
        name="members",
        field={"path": ".status.members", "type": "Array"},
        labels=[{"key": "member", "valuePath": ".status.members[*].name"}],
        metricValue={"valueFromPath": ".status.members[*].role", "valueMap": {"primary": 1, "secondary": 2}},
    )
    members = [
        {"name": "a", "role": "primary"},
        {"name": "b", "role": "secondary"},
        {"name": "c", "role": "arbiter"},
    ]
    out = render(fan, obj=obj_with(members=members))
    samples = [line for line in out["kubedb_com_mongodb_members"] if not line.startswith("#")]
    assert [s.split('member="')[1] for s in samples] == ['a"} 1', 'b"} 2']


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {"valueFromPath": ".status.phase", "valueMap": {"Running": "fast"}},
            "valueMap['Running']: must be a number, not str 'fast'",
        ),
        (
            {"valueFromPath": ".status.phase", "valueMap": {"Running": True}},
            "valueMap['Running']: must be a number, not bool",
        ),
        (
            {"valueFromPath": ".status.phase", "valueMap": {"Running": {"a": 1}}},
            "valueMap['Running']: must be a number, not dict",
        ),
        (
            {"valueFromPath": ".status.phase", "valueMap": ["Running"]},
            "valueMap: must be an object mapping values to numbers, not list",
        ),
        ({"valueFromPath": ".status.phase", "valueMap": {}}, "valueMap: must list at least one value"),
        (
            {"valueFromPath": ".status.phase", "valueMap": {"Running": 1}, "default": "none"},
            "default: must be a number, not str 'none'",
        ),
        ({"value": 1, "valueMap": {"Running": 1}}, "valueMap: needs valueFromPath"),
        ({"valueFromExpression": "1", "valueMap": {"Running": 1}}, "valueMap: needs valueFromPath"),
        ({"valueFromPath": ".status.phase", "default": 0}, "default: needs valueMap"),
        (
            {"valueFromPath": ".status.phase", "valueMap": {f"k{i}": i for i in range(1001)}},
            "has 1001 entries; at most 1000",
        ),
    ],
)
def test_bad_value_maps_are_errors_that_name_the_field(value: dict[str, Any], message: str) -> None:
    errors = errors_of(
        {
            "apiVersion": "metrics.appscode.com/v1alpha1",
            "kind": "MetricsConfiguration",
            "metadata": {"name": "t"},
            "spec": {
                "targetRef": {"apiVersion": "kubedb.com/v1", "kind": "MongoDB"},
                "metrics": [metric(metricValue=value)],
            },
        }
    )
    assert any(e.startswith("spec.metrics[0].metricValue.") and message in e for e in errors), errors


def test_numeric_strings_are_numbers_as_for_value() -> None:
    value = {"valueFromPath": ".status.phase", "valueMap": {"Ready": "1e3"}, "default": "-2"}
    assert render(metric(name="p", metricValue=value), obj=obj_with(phase="Ready"))["kubedb_com_mongodb_p"][
        -1
    ].endswith(" 1000")
    assert render(metric(name="p", metricValue=value), obj=obj_with(phase="X"))["kubedb_com_mongodb_p"][
        -1
    ].endswith(" -2")


def test_validate_and_render_on_the_command_line(tmp_path: Path) -> None:
    config = {
        "apiVersion": "metrics.appscode.com/v1alpha1",
        "kind": "MetricsConfiguration",
        "metadata": {"name": "pod-phase"},
        "spec": {
            "targetRef": {"apiVersion": "v1", "kind": "Pod"},
            "metrics": [
                {
                    "name": "phase_code",
                    "help": "Phase as a number",
                    "type": "gauge",
                    "metricValue": {"valueFromPath": ".status.phase", "valueMap": PHASES, "default": 0},
                }
            ],
        },
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "n", "uid": "u"},
        "status": {"phase": "Succeeded"},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "o.yaml").write_text(yaml.safe_dump(pod))
    run = [sys.executable, "-m", "panopticon"]
    assert (
        subprocess.run(
            [*run, "validate", str(tmp_path / "c.yaml")], capture_output=True, check=False
        ).returncode
        == 0
    )
    out = subprocess.run(
        [*run, "render", "-c", str(tmp_path / "c.yaml"), "-o", str(tmp_path / "o.yaml")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert 'kube_pod_phase_code{pod="p",namespace="n"} 3' in out, out
    config["spec"]["metrics"][0]["metricValue"]["valueMap"] = {"Running": "fast"}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    bad = subprocess.run(
        [*run, "validate", str(tmp_path / "c.yaml")], capture_output=True, text=True, check=False
    )
    assert (
        bad.returncode != 0
        and "spec.metrics[0].metricValue.valueMap['Running']: must be a number" in bad.stdout + bad.stderr
    )
    assert "Traceback" not in bad.stdout + bad.stderr
