"""Converted configs are admitted by Panopticon's CRD (strict field validation, as
`kubectl apply` uses it), whose schema covers `each` and `defaultLabels` field by field."""

from __future__ import annotations

import copy

import jsonschema
import pytest

from panopticon.convert.ksmcrs import convert_ksm_crs
from panopticon.convert.mapping import Converted
from tests.manifests.test_manifests import _crd_version, crd_json_schema
from tests.panopticon.convert.helpers import KUADRANT
from tests.panopticon.convert.test_each_properties import EVERYTHING

VALIDATOR = jsonschema.Draft202012Validator(crd_json_schema(_crd_version()["schema"]["openAPIV3Schema"]))
CONFIGS = convert_ksm_crs(
    [str(KUADRANT / "kuadrant-custom-resource-state.yaml"), "everything.yaml"],
    texts={"everything.yaml": EVERYTHING},
).configs


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_a_converted_config_is_valid_against_the_crd_schema(config: Converted) -> None:
    errors = [e.message for e in VALIDATOR.iter_errors(config.body)]
    assert errors == []


def test_the_schema_rejects_an_unknown_field_of_each() -> None:
    body = copy.deepcopy(CONFIGS[0].body)
    body["spec"]["metrics"][0]["each"]["valuefrom"] = ".x"
    assert any("valuefrom" in e.message for e in VALIDATOR.iter_errors(body))
    body["spec"]["metrics"][0]["each"] = {"path": ".x"}
    assert any("'type' is a required property" in e.message for e in VALIDATOR.iter_errors(body))
