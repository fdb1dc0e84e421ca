"""The converter's input is hostile: no text and no structure makes it raise.

Whatever it reads, `convert_ksm_crs` returns configs and problems; a conversion with
no error gives configs that compile (it compiles them itself). Inputs: arbitrary
text, arbitrary YAML trees built from CRS field names, and valid configs with one
part replaced by something arbitrary.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panopticon.convert.ksmcrs import convert_ksm_crs
from panopticon.render.program import compile_config
from tests.panopticon.convert.helpers import KUADRANT

FIELDS = [
    "kind", "spec", "resources", "groupVersionKind", "group", "version", "kind", "metrics", "name", "help",
    "each", "type", "gauge", "info", "stateSet", "path", "labelsFromPath", "labelFromKey", "valueFrom",
    "nilIsZero", "labelName", "list", "commonLabels", "metricNamePrefix", "errorLogV", "customResourceState",
    "config", "*", "prefix_*", "[type=Ready]", "a=b", "0", "-1",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True),
    st.sampled_from(["Gauge", "Info", "StateSet", "*", "", "[x]", "[a=b]", "-3", "true", "%", "x" * 300]),
    st.text(max_size=20),
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), inner, max_size=5),
    ),
    max_leaves=40,
)
VALID = yaml.safe_load((KUADRANT / "gateway-api-custom-resource-state.yaml").read_text())
VALID["spec"]["resources"] = VALID["spec"]["resources"][:2]  # Gateway and GatewayClass: every construct


def convert(text: str) -> None:
    result = convert_ksm_crs(["fuzz.yaml"], texts={"fuzz.yaml": text})
    for problem in result.problems:
        assert str(problem).startswith(("fuzz.yaml", "families", "config ")), problem
    if not result.errors:
        for config in result.configs:
            assert compile_config(config.body).program is not None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_any_text_gives_problems_never_an_exception(text: str) -> None:
    convert(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TREES, st.sampled_from(["plain", "kind", "helm"]))
def test_any_yaml_tree_gives_problems_never_an_exception(tree: Any, form: str) -> None:
    body = {"plain": tree, "kind": {"kind": "CustomResourceStateMetrics", "spec": tree},
            "helm": {"customResourceState": {"config": tree}}}[form]  # fmt: skip
    convert(yaml.safe_dump(body))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_valid_config_with_any_part_replaced_gives_problems_never_an_exception(data: st.DataObject) -> None:
    body = copy.deepcopy(VALID)
    node: Any = body
    for _ in range(data.draw(st.integers(1, 8))):
        keys = (
            list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
        )
        if not keys:
            break
        key = data.draw(st.sampled_from(keys))
        if not isinstance(node[key], dict | list) or data.draw(st.booleans()):
            node[key] = data.draw(TREES)
            break
        node = node[key]
    convert(yaml.safe_dump(body))
