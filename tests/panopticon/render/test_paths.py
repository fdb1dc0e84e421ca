"""Table tests for the path engine."""

from __future__ import annotations

from typing import Any

import pytest

from panopticon.errors import PathError
from panopticon.render.paths import MISSING, compile_path
from panopticon.render.shapes.fanout import FanOut

OBJ: dict[str, Any] = {
    "metadata": {
        "name": "web",
        "labels": {"app.kubernetes.io/name": "web", "tier": "front"},
        "annotations": {"a.b": {"c": 1}},
    },
    "spec": {
        "replicas": 3,
        "paused": False,
        "nothing": None,
        "containers": [
            {"name": "app", "ports": [{"containerPort": 80}, {"containerPort": 443}]},
            {"name": "sidecar", "ports": []},
            {"name": "logger"},
        ],
    },
    "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (".", OBJ),
        (".spec.replicas", 3),
        ("spec.replicas", 3),
        ("$.spec.replicas", 3),
        ("{.spec.replicas}", 3),
        (".spec.paused", False),
        (".spec.nothing", MISSING),
        (".spec.missing", MISSING),
        (".spec.replicas.deeper", MISSING),
        (".spec.containers[0].name", "app"),
        (".spec.containers[-1].name", "logger"),
        (".spec.containers[7].name", MISSING),
        (".spec.containers.name", MISSING),
        (".metadata.labels['app.kubernetes.io/name']", "web"),
        ('.metadata.labels["app.kubernetes.io/name"]', "web"),
        (".metadata.labels.app\\.kubernetes\\.io/name", "web"),
        (".metadata.annotations['a.b'].c", 1),
        (".metadata[0]", MISSING),
        (".spec.containers['0']", MISSING),
    ],
)
def test_a_path_resolves_to_the_value_it_names_or_to_missing(text: str, expected: Any) -> None:
    assert compile_path(text).get(OBJ) == expected


@pytest.mark.parametrize(
    "text",
    ["", "  ", ".a[", ".a[x]", ".a..b", ".a['x", ".a[1.5]", "x" * 2000, ".a" * 100],
)
def test_a_malformed_path_is_rejected_with_a_path_error(text: str) -> None:
    with pytest.raises(PathError):
        compile_path(text)


def test_a_non_string_path_is_rejected() -> None:
    with pytest.raises(PathError):
        compile_path(3)  # type: ignore[arg-type]


def test_paths_resolve_nothing_on_non_container_objects() -> None:
    for obj in (None, 3, "text", [1, 2], True):
        assert compile_path(".a.b").get(obj) is MISSING
        assert compile_path(".a[0].b.c").get(obj) is MISSING


def test_an_array_fan_out_yields_one_context_per_element() -> None:
    fan = FanOut(compile_path(".status.conditions"))
    contexts = fan.contexts(OBJ, 100)
    assert [c[0]["type"] for c in contexts] == ["Ready", "Synced"]
    label = compile_path(".status.conditions[*].status")
    assert fan.accepts(label) is None
    assert [label.get_in(OBJ, c) for c in contexts] == ["True", "False"]
    root = compile_path(".metadata.name")
    assert [root.get_in(OBJ, c) for c in contexts] == ["web", "web"]


def test_a_nested_fan_out_visits_every_element_of_every_level() -> None:
    fan = FanOut(compile_path(".spec.containers[*].ports"))
    contexts = fan.contexts(OBJ, 100)
    port = compile_path(".spec.containers[*].ports[*].containerPort")
    container = compile_path(".spec.containers[*].name")
    assert fan.accepts(port) is None
    assert fan.accepts(container) is None
    assert [(container.get_in(OBJ, c), port.get_in(OBJ, c)) for c in contexts] == [("app", 80), ("app", 443)]


def test_a_fan_out_stops_at_its_limit() -> None:
    fan = FanOut(compile_path(".items"))
    assert len(fan.contexts({"items": list(range(50))}, 10)) == 10


def test_a_wildcard_outside_the_fan_out_array_is_refused_with_the_reason() -> None:
    fan = FanOut(compile_path(".status.conditions"))
    problem = fan.accepts(compile_path(".spec.containers[*].name"))
    assert problem is not None and ".status.conditions" in problem
    assert fan.accepts(compile_path(".a[*].b[*].c")) is not None


def test_normalized_text_round_trips() -> None:
    for text in (".a.b[0]", ".metadata.labels['app.kubernetes.io/name']", ".a[*].b", "."):
        path = compile_path(text)
        assert compile_path(path.normalized()).segments == path.segments


# kube-state-metrics' lookups (`[key=value]` in a list, `key=value` on an object),
# with KSM's own test object (registry_factory_test.go) and expectations.
KSM_OBJECT: dict[str, Any] = {
    "spec": {"order": [{"id": 1, "value": True}, {"id": 3, "value": False}]},
    "status": {
        "condition_values": [{"name": "a", "value": 45}, {"name": "b", "value": 66}],
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "Provisioned", "status": "False"}],
        "flags": [{"ready": "yes", "n": "1"}, {"ready": None, "n": "2"}],
    },
    "metadata": {"annotations": {"bar": "baz", "qux": "quxx", "bar=qux": "literal"}},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (".status.condition_values[name=b].value", 66),
        (".spec.order[id=3].value", False),  # compared as numbers: the text 3 and the number 3
        (".spec.order[value=false].id", 3),  # compared as booleans
        (".status.conditions[type=Ready].status", "True"),
        (".status.conditions[type=Missing].status", MISSING),
        (".status.flags[ready=true].n", "1"),  # KSM reads "yes" as true, like the text true
        (".status.conditions.type=Ready", MISSING),  # key=value reads objects, not lists
        (".status.conditions[0][type=Ready]", MISSING),  # [key=value] reads lists, not objects
        (".metadata.annotations.bar=baz", "baz"),
        (".metadata.annotations.bar=qux", "literal"),  # not equal: the field named "bar=qux"
        (".metadata.annotations['bar=baz']", MISSING),  # quoted: always the literal name
        (".metadata.annotations.nope=baz", MISSING),
    ],
)
def test_ksm_lookups_pick_the_element_or_field_ksm_picks(text: str, expected: Any) -> None:
    assert compile_path(text).get(KSM_OBJECT) == expected


def test_ksm_lookups_round_trip_through_their_normalized_text() -> None:
    for text in (".a[type=Ready].b", ".a.b=c", ".a[x=1=2]", ".a\\.b=c\\.d"):
        path = compile_path(text)
        assert compile_path(path.normalized()).segments == path.segments, text


def test_a_subscript_without_an_equals_sign_names_the_forms_accepted() -> None:
    with pytest.raises(PathError, match=r"\[name=value\]"):
        compile_path(".status.conditions[Ready]")
