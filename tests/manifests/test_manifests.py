"""The kustomize base and overlays render, and every object is valid, offline.

- Built-in kinds validate against the Kubernetes 1.37 OpenAPI schemas bundled in the
  `kubernetes-validate` package, in strict mode (unknown fields are errors, as with
  `kubectl apply --validate=strict`).
- Prometheus Operator kinds (their CRDs are not bundled) get structural checks of the
  fields the operator requires.
- The MetricsConfiguration CRD is the simulator's, byte for byte, and the example configs
  validate against its openAPIV3Schema (converted to JSON Schema, unknown fields rejected
  where the API server's strict field validation would reject them).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.manifests.conftest import MANIFESTS, ROOT, TARGETS, Rendered

KUBERNETES_VERSION = "1.37"
OPERATOR_GROUP = "monitoring.coreos.com/v1"
CRD_NAME = "metricsconfigurations.metrics.appscode.com.yaml"
SIMULATOR_CRD = ROOT / "panopticon" / "data" / "crds" / CRD_NAME
MANIFESTS_CRD = MANIFESTS / "base" / "crds" / CRD_NAME
EXAMPLES = ROOT / "panopticon" / "data" / "examples" / "metricsconfigurations"
EXAMPLE_FILES = sorted([*(EXAMPLES / "kubedb").glob("*.yaml"), *(EXAMPLES / "native").glob("*.yaml")])


def test_the_examples_exist() -> None:
    assert len(EXAMPLE_FILES) >= 20, EXAMPLE_FILES


@pytest.mark.parametrize("target", TARGETS)
def test_every_kustomization_builds_into_uniquely_named_objects(
    rendered: dict[str, Rendered], target: str
) -> None:
    objects = rendered[target].objects
    assert objects
    keys = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys)), keys
    namespaced = [o for o in objects if o["metadata"].get("namespace")]
    assert {o["metadata"]["namespace"] for o in namespaced} == {"panopticon"}


@pytest.mark.parametrize("target", TARGETS)
def test_every_builtin_object_validates_against_the_kubernetes_schema(
    rendered: dict[str, Rendered], target: str
) -> None:
    errors = []
    for obj in rendered[target].objects:
        if obj["apiVersion"].startswith(OPERATOR_GROUP.rpartition("/")[0] + "/"):
            continue  # no bundled schema: test_prometheus_operator_objects_have_their_required_fields
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"{where}: {'.'.join(map(str, e.path))}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            errors.append(f"{where}: {e.message}")
    assert not errors, "\n".join(errors)


def test_the_schema_validation_is_not_vacuous(rendered: dict[str, Rendered]) -> None:
    deployment = copy.deepcopy(rendered["base"].get("Deployment", "panopticon-aggregator"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def _require(obj: dict[str, Any], path: str) -> Any:
    node: Any = obj
    for key in path.split("."):
        assert isinstance(node, dict) and key in node, f"{obj['kind']}/{obj['metadata']['name']}: no {path}"
        node = node[key]
    return node


@pytest.mark.parametrize("target", TARGETS)
def test_prometheus_operator_objects_have_their_required_fields(
    rendered: dict[str, Rendered], target: str
) -> None:
    for obj in rendered[target].objects:
        if not obj["apiVersion"].startswith(OPERATOR_GROUP.rpartition("/")[0] + "/"):
            continue
        kind = obj["kind"]
        assert kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule", "ScrapeConfig"), kind
        if kind == "PrometheusRule":
            for group in _require(obj, "spec.groups"):
                assert group["name"] and group["rules"]
                for rule in group["rules"]:
                    assert set(rule) <= {"alert", "record", "expr", "for", "labels", "annotations"}, rule
                    assert ("alert" in rule) != ("record" in rule) and rule["expr"], rule
            continue
        if kind == "ScrapeConfig":
            for static in _require(obj, "spec.staticConfigs"):
                assert static["targets"] and all(":" in t for t in static["targets"]), static
            for duration in ("scrapeInterval", "scrapeTimeout"):
                assert str(obj["spec"].get(duration, "1s"))[-1] in "smh", obj["spec"]
            continue
        selector = _require(obj, "spec.selector")
        assert selector.get("matchLabels") or selector.get("matchExpressions")
        key = "endpoints" if kind == "ServiceMonitor" else "podMetricsEndpoints"
        for endpoint in _require(obj, f"spec.{key}"):
            assert endpoint.get("port"), endpoint
            for duration in ("interval", "scrapeTimeout"):
                assert str(endpoint.get(duration, "1s"))[-1] in "smh", endpoint


@pytest.mark.parametrize("target", TARGETS)
def test_every_image_is_pinned_to_a_tag_other_than_latest(rendered: dict[str, Rendered], target: str) -> None:
    for workload in rendered[target].workloads():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            name, _, tag = container["image"].rpartition(":")
            assert name and "/" not in tag and tag != "latest", container["image"]


def test_the_panopticon_image_tag_is_the_project_version(rendered: dict[str, Rendered]) -> None:
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    shard = rendered["base"].get("StatefulSet", "panopticon-shard")
    assert shard["spec"]["template"]["spec"]["containers"][0]["image"] == f"panopticon:{version}"


def test_every_component_is_built_by_some_overlay() -> None:
    used = set()
    for path in (MANIFESTS / "overlays").glob("*/kustomization.yaml"):
        for ref in yaml.safe_load(path.read_text()).get("components", []):
            used.add((path.parent / ref).resolve())
    components = {p.parent.resolve() for p in (MANIFESTS / "components").glob("*/kustomization.yaml")}
    assert components and components <= used, components - used


# --- the MetricsConfiguration CRD -------------------------------------------------------------


def test_the_manifests_crd_is_the_simulators_crd() -> None:
    assert MANIFESTS_CRD.read_bytes() == SIMULATOR_CRD.read_bytes(), (
        f"{MANIFESTS_CRD.relative_to(ROOT)} drifted from {SIMULATOR_CRD.relative_to(ROOT)}: "
        f"cp {SIMULATOR_CRD.relative_to(ROOT)} {MANIFESTS_CRD.relative_to(ROOT)}"
    )


def _crd_version() -> dict[str, Any]:
    crd = yaml.safe_load(MANIFESTS_CRD.read_text())
    (version,) = crd["spec"]["versions"]
    return dict(version)


def _structural_problems(node: dict[str, Any], path: str) -> list[str]:
    """Where the schema breaks the structural-schema rules the API server enforces."""
    problems = []
    untyped_ok = node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
    if "type" not in node and not untyped_ok:
        problems.append(f"{path}: no type")
    if node.get("x-kubernetes-int-or-string") and "type" in node:
        problems.append(f"{path}: int-or-string with a type")
    if "properties" in node and "additionalProperties" in node:
        problems.append(f"{path}: both properties and additionalProperties")
    for name, child in node.get("properties", {}).items():
        problems += _structural_problems(child, f"{path}.{name}")
    if "items" in node:
        problems += _structural_problems(node["items"], f"{path}[]")
    return problems


def test_the_crd_schema_is_structural_with_a_status_subresource() -> None:
    version = _crd_version()
    schema = version["schema"]["openAPIV3Schema"]
    assert not _structural_problems(schema, "")
    assert version["subresources"] == {"status": {}}
    status = schema["properties"]["status"]["properties"]
    assert {"observedGeneration", "conditions"} <= set(status)
    assert set(status["conditions"]["items"]["required"]) == {"type", "status"}
    assert schema["properties"]["spec"]["properties"]["targetRef"]["required"] == ["apiVersion", "kind"]


def test_the_crd_printer_columns_point_at_fields_of_the_schema() -> None:
    version = _crd_version()
    schema = version["schema"]["openAPIV3Schema"]
    for column in version["additionalPrinterColumns"]:
        path = column["jsonPath"].split("[", 1)[0].strip(".").split(".")
        if path == ["metadata", "creationTimestamp"]:
            continue
        node = schema
        for key in path:
            node = node["properties"][key] if "properties" in node else node["items"]["properties"][key]
        assert node, column


def crd_json_schema(node: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema that accepts what the API server admits for this structural schema.

    Unknown fields are rejected unless `x-kubernetes-preserve-unknown-fields` (kubectl
    defaults to strict server-side field validation: they would be an error, not pruned).
    """
    out: dict[str, Any] = {}
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    for key in ("type", "enum", "required", "minimum", "maximum", "minLength", "maxLength", "pattern"):
        if key in node:
            out[key] = node[key]
    if "properties" in node:
        out["properties"] = {k: crd_json_schema(v) for k, v in node["properties"].items()}
        if not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = crd_json_schema(node["additionalProperties"])
    if "items" in node:
        out["items"] = crd_json_schema(node["items"])
    return out


@pytest.fixture(scope="module")
def config_validator() -> jsonschema.Draft202012Validator:
    schema = crd_json_schema(_crd_version()["schema"]["openAPIV3Schema"])
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_example_config_is_valid_against_the_crd_schema(
    config_validator: jsonschema.Draft202012Validator, path: Path
) -> None:
    for doc in _documents(path):
        assert (doc["apiVersion"], doc["kind"]) == ("metrics.appscode.com/v1alpha1", "MetricsConfiguration")
        errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in config_validator.iter_errors(doc)]
        assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["spec"].pop("targetRef"), "'targetRef' is a required property"),
        (lambda c: c["spec"]["targetRef"].pop("kind"), "'kind' is a required property"),
        (lambda c: c["spec"]["metrics"][0].update(field={"path": ".x", "type": "Float"}), "'Float'"),
        (lambda c: c["spec"]["metrics"][0].update(helpp="typo"), "'helpp' was unexpected"),
        (lambda c: c["spec"]["metrics"][0].update(labels=[{"key": "k", "value": 0.5}]), "0.5"),
        (lambda c: c.update(status={"observedGeneration": "many"}), "'many' is not of type 'integer'"),
    ],
)
def test_the_crd_schema_rejects_malformed_configs(
    config_validator: jsonschema.Draft202012Validator, change: Any, message: str
) -> None:
    config = copy.deepcopy(_documents(EXAMPLES / "native" / "dpl-config.yaml")[0])
    assert not list(config_validator.iter_errors(config))
    change(config)
    errors = [e.message for e in config_validator.iter_errors(config)]
    assert any(message in e for e in errors), errors


def test_the_readme_tells_users_to_replace_the_placeholder_password() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "base" / "kustomization.yaml").read_text())
    (generator,) = kustomization["secretGenerator"]
    (literal,) = generator["literals"]
    placeholder = literal.split("=", 1)[1]
    readme = (MANIFESTS / "README.md").read_text()
    assert placeholder.startswith("CHANGE-ME") and placeholder in readme
    assert "behavior: replace" in readme
