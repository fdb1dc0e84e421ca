"""Hostile objects through configs with `each` (kube-state-metrics' generators):
valid exposition and counted errors, never an exception (invariants 1 and 6)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panopticon.config.documents import read_documents
from panopticon.convert.ksmcrs import convert_ksm_crs
from panopticon.render.program import Program, compile_config
from tests.panopticon.convert.helpers import KUADRANT, crs
from tests.panopticon.render.test_properties import JSON, _mutate, assert_valid_exposition, deeply_nested


def each(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, {"Gauge": "gauge", "Info": "info", "StateSet": "stateSet"}[kind]: fields}


EVERYTHING = crs(
    {
        "groupVersionKind": {"group": "myteam.io", "version": "v1", "kind": "Foo"},
        "labelsFromPath": {
            "name": ["metadata", "name"],
            "*": ["metadata", "labels"],
            "a_*": ["metadata", "annotations"],
        },
        "metrics": [
            {
                "name": "map",
                "each": each(
                    "Gauge",
                    path=["status", "sub"],
                    labelFromKey="k",
                    labelsFromPath={"x": ["x"]},
                    valueFrom=["ready"],
                ),
            },
            {
                "name": "list",
                "each": each(
                    "Gauge",
                    path=["status", "conditions"],
                    nilIsZero="true",
                    labelsFromPath={"t": ["type"]},
                    valueFrom=["status"],
                ),
            },
            {"name": "pick", "each": each("Gauge", path=["status", "conditions", "[type=Ready]", "status"])},
            {
                "name": "info",
                "each": each(
                    "Info", path=["spec"], labelFromKey="key", labelsFromPath={"*": [], "v": ["version"]}
                ),
            },
            {
                "name": "phase",
                "each": each(
                    "StateSet", path=["status", "phase"], labelName="phase", list=["Pending", "Running"]
                ),
            },
        ],
    }
)


def programs() -> list[Program]:
    texts = {"everything.yaml": EVERYTHING}
    result = convert_ksm_crs(
        [str(KUADRANT / "kuadrant-custom-resource-state.yaml"), "everything.yaml"], texts=texts
    )
    assert not result.errors, result.errors
    out = [compile_config(c.body).program for c in result.configs]
    assert all(p is not None for p in out)
    return [p for p in out if p is not None]


PROGRAMS = programs()
BASES = [
    doc.body for path in sorted((KUADRANT / "objects").glob("*.yaml")) for doc in read_documents(str(path))
]


@st.composite
def hostile_objects(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 3)) == 0:
        return draw(JSON)
    return _mutate(draw, copy.deepcopy(draw(st.sampled_from(BASES))), depth=0)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(obj=hostile_objects(), target=st.sampled_from(PROGRAMS))
def test_any_object_through_any_each_config_gives_valid_exposition(obj: Any, target: Program) -> None:
    if isinstance(obj, dict):
        obj = dict(obj, apiVersion=target.target.api_version, kind=target.target.kind)
    out = target.render(obj)
    for family, text in out.families.items():
        assert text.startswith(family)
        assert_valid_exposition(text)
    assert all(e.family and e.message for e in out.errors)


def test_a_deeply_nested_object_renders_without_exception() -> None:
    obj = {
        "apiVersion": "myteam.io/v1",
        "kind": "Foo",
        "metadata": {"name": "x"},
        "spec": deeply_nested(5000),
    }
    obj["status"] = {"sub": deeply_nested(3000), "conditions": [deeply_nested(3000)]}
    for program in PROGRAMS:
        for text in program.render(obj).families.values():
            assert_valid_exposition(text)
