"""`spec.selector` and `spec.filter`: which objects a config gives series for.

Selector cases follow the API server's LabelSelector semantics (apimachinery's
labels.Selector: In needs the key with a listed value, NotIn and DoesNotExist hold
for an object without the key, an empty selector selects everything).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from panopticon.render.program import compile_config
from tests.panopticon.render.test_program import BASE, OBJ

LABELS = {"app": "web", "tier": "front", "env": "prod"}


def scoped(**spec: Any) -> dict[str, Any]:
    body = copy.deepcopy(BASE)
    body["spec"].update(spec)
    return body


def obj(labels: dict[str, str] | None = None, **status: Any) -> dict[str, Any]:
    body = copy.deepcopy(OBJ)
    body["metadata"]["labels"] = dict(LABELS if labels is None else labels)
    if status:
        body["status"] = status
    return body


def series(config: dict[str, Any], target: dict[str, Any]) -> tuple[list[str], list[str]]:
    compiled = compile_config(config)
    assert compiled.program is not None, [str(f) for f in compiled.errors]
    out = compiled.program.render(target)
    lines = [line for text in out.families.values() for line in text.splitlines() if not line.startswith("#")]
    return lines, [f"{e.family}: {e.message}" for e in out.errors]


@pytest.mark.parametrize(
    ("selector", "selected"),
    [
        ({}, True),
        ({"matchLabels": {"app": "web"}}, True),
        ({"matchLabels": {"app": "web", "env": "dev"}}, False),
        ({"matchLabels": {"missing": "x"}}, False),
        ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "stage"]}]}, True),
        ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]}, False),
        ({"matchExpressions": [{"key": "missing", "operator": "In", "values": ["x"]}]}, False),
        ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, False),
        ({"matchExpressions": [{"key": "missing", "operator": "NotIn", "values": ["x"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "missing", "operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "missing", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, False),
        (
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["back"]}],
            },
            True,
        ),
    ],
)
def test_the_selector_follows_the_api_servers_label_selector(
    selector: dict[str, Any], selected: bool
) -> None:
    lines, errors = series(scoped(selector=selector), obj())
    assert bool(lines) is selected and errors == []


def test_an_object_without_labels_is_selected_only_by_selectors_that_allow_it() -> None:
    unlabeled = obj({})
    unlabeled["metadata"].pop("labels")
    assert series(scoped(selector={"matchLabels": {"app": "web"}}), unlabeled)[0] == []
    assert series(
        scoped(selector={"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}), unlabeled
    )[0]


FILTER = {
    "params": [{"key": "phase", "valuePath": ".status.phase"}],
    "expression": "phase != 'Succeeded' && phase != 'Failed'",
}


@pytest.mark.parametrize(
    ("status", "kept"),
    [({"phase": "Running"}, True), ({"phase": "Succeeded"}, False), ({"phase": "Failed"}, False), ({}, True)],
)
def test_the_filter_keeps_the_objects_it_is_true_for(status: dict[str, Any], kept: bool) -> None:
    lines, errors = series(scoped(filter=FILTER), obj(**status) if status else obj(conditions=[]))
    assert bool(lines) is kept and errors == []


def test_a_filter_that_fails_drops_only_that_objects_series_and_counts_an_error() -> None:
    bad = {"params": [{"key": "size", "valuePath": ".status.size"}], "expression": "size > 2"}
    assert series(scoped(filter=bad), obj(size="3"))[0]
    lines, errors = series(scoped(filter=bad), obj(size="huge"))
    assert lines == [] and len(errors) == 1 and errors[0].startswith("spec.filter: 'size > 2'"), errors
    lines, errors = series(scoped(filter={"expression": "'text'"}), obj())
    assert lines == [] and errors == ["spec.filter: \"'text'\" gave str, not true or false"]


def test_constant_params_and_selector_and_filter_together() -> None:
    both = scoped(
        selector={"matchLabels": {"app": "web"}},
        filter={
            "params": [{"key": "want", "value": "Ready"}, {"key": "p", "valuePath": ".status.phase"}],
            "expression": "p == want",
        },
    )
    assert series(both, obj(phase="Ready"))[0]
    assert series(both, obj(phase="Halted"))[0] == []
    assert series(both, obj({"app": "db"}, phase="Ready"))[0] == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"selector": "app=web"}, "spec.selector: must be a LabelSelector (an object), not str"),
        ({"selector": {"matchLabel": {"a": "b"}}}, "spec.selector: unknown field 'matchLabel'"),
        (
            {"selector": {"matchLabels": {"a b": "c"}}},
            "spec.selector.matchLabels: 'a b' is not a valid label key",
        ),
        (
            {"selector": {"matchLabels": {"a": "b c"}}},
            "spec.selector.matchLabels['a']: 'b c' is not a valid label value",
        ),
        (
            {"selector": {"matchExpressions": [{"key": "a", "operator": "Has"}]}},
            "spec.selector.matchExpressions[0].operator: 'Has' is not one of In, NotIn, Exists, DoesNotExist",
        ),
        (
            {"selector": {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}},
            "spec.selector.matchExpressions[0].values: In needs a non-empty list of values",
        ),
        (
            {"selector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}},
            "spec.selector.matchExpressions[0].values: Exists takes no values",
        ),
        (
            {"selector": {"matchExpressions": "a in (b)"}},
            "spec.selector.matchExpressions: must be a list, not str",
        ),
        ({"filter": {"params": []}}, "spec.filter.expression: is required"),
        ({"filter": {"expression": "x > 1"}}, "spec.filter.expression:"),
        (
            {
                "filter": {
                    "expression": "phase ==",
                    "params": [{"key": "phase", "valuePath": ".status.phase"}],
                }
            },
            "spec.filter.expression:",
        ),
        (
            {"filter": {"expression": "a", "params": [{"key": "a", "valuePath": ".status.x[*]"}]}},
            "[*] has no meaning in a filter",
        ),
        (
            {"filter": {"expression": "a", "params": [{"key": "a"}]}},
            "spec.filter.params[0]: needs value or valuePath",
        ),
        (
            {"namespaceSelector": {"matchLabels": {"team": "a"}}},
            "spec.namespaceSelector: is not supported by this version",
        ),
    ],
)
def test_bad_scopes_are_errors_that_name_the_field(spec: dict[str, Any], message: str) -> None:
    errors = [str(f) for f in compile_config(scoped(**spec)).errors]
    assert any(message in e for e in errors), errors
