"""The offline CLI as users run it: `panopticon validate` and `panopticon render`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from tests.panopticon.examples import CONFIG_DIR, OBJECT_DIR

MONGO_CONFIG = CONFIG_DIR / "kubedb" / "kubedb-com-mongodb.yaml"


def cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "panopticon", *args], input=stdin, capture_output=True, timeout=60, check=False
    )


def test_validate_exits_zero_for_valid_configs_and_one_listing_every_problem_otherwise(
    tmp_path: Path,
) -> None:
    ok = cli("validate", str(MONGO_CONFIG))
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: metrics.appscode.com/v1alpha1\nkind: MetricsConfiguration\nmetadata: {name: bad}\n"
        "spec:\n  targetRef: {apiVersion: v1, kind: Pod}\n  metrics:\n"
        "  - {name: a, help: h, type: gauge, metricValue: {valueFromExpression: 'nope(1)'}}\n"
        "  - {name: b, help: h, type: gauge, metricValue: {value: 1},\n"
        "     labels: [{key: x, valuePath: .spec.nodename}]}\n"
    )
    result = cli("validate", str(bad), str(MONGO_CONFIG))
    out = result.stdout.decode()
    assert result.returncode == 1
    assert "spec.metrics[0].metricValue.valueFromExpression: unknown function 'nope'" in out
    assert "spec.metrics[1].labels[0].valuePath" in out and "did you mean .spec.nodeName?" in out
    assert "2 config(s): 1 valid, 1 invalid" in result.stderr.decode()


def test_validate_reports_an_unreadable_file_by_name(tmp_path: Path) -> None:
    result = cli("validate", str(tmp_path / "missing.yaml"))
    assert result.returncode == 1 and "missing.yaml" in result.stdout.decode()


def test_validate_uses_crds_given_alongside_to_check_custom_resource_paths(tmp_path: Path) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                            },
                        }
                    },
                }
            ],
        },
    }
    config = {
        "apiVersion": "metrics.appscode.com/v1alpha1",
        "kind": "MetricsConfiguration",
        "metadata": {"name": "w"},
        "spec": {
            "targetRef": {"apiVersion": "example.com/v1", "kind": "Widget"},
            "metrics": [
                {"name": "size", "help": "h", "type": "gauge", "metricValue": {"valueFromPath": ".spec.sise"}}
            ],
        },
    }
    (tmp_path / "crd.json").write_bytes(orjson.dumps(crd))
    (tmp_path / "config.json").write_bytes(orjson.dumps(config))
    without = cli("validate", str(tmp_path / "config.json"))
    assert without.returncode == 0
    with_crd = cli("validate", str(tmp_path / "crd.json"), str(tmp_path / "config.json"))
    assert with_crd.returncode == 1 and ".spec has no field 'sise'" in with_crd.stdout.decode()


def test_render_reads_objects_from_stdin_as_a_list_and_prints_openmetrics() -> None:
    objects = (OBJECT_DIR / "mongodb" / "resource-metrics-v1-replicaset.yaml").read_text()
    as_list = "apiVersion: v1\nkind: List\nitems:\n" + "".join(
        "- " + line + "\n" if i == 0 else "  " + line + "\n" for i, line in enumerate(objects.splitlines())
    )
    result = cli(
        "render",
        "--config",
        str(MONGO_CONFIG),
        "--object",
        "-",
        "--format",
        "openmetrics",
        stdin=as_list.encode(),
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert text.endswith("# EOF\n")
    samples = {s.name: s.value for f in parse_openmetrics(text) for s in f.samples}
    assert samples["kubedb_com_mongodb_resource_request_cpu"] == 2.4
    assert samples["kubedb_com_mongodb_resource_limit_memory"] == 2988441600


def test_render_reports_render_errors_and_fails_only_when_strict() -> None:
    obj = OBJECT_DIR / "mongodb" / "kubedb-docs-guide-clustering-standalone-mg-alone-status.yaml"
    relaxed = cli("render", "-c", str(MONGO_CONFIG), "-o", str(obj))
    assert relaxed.returncode == 0
    assert "render error: config kubedb-com-mongodb, object MongoDB demo/mg-alone" in relaxed.stderr.decode()
    assert cli("render", "-c", str(MONGO_CONFIG), "-o", str(obj), "--strict").returncode == 1


def test_render_skips_an_invalid_config_but_renders_the_others(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: metrics.appscode.com/v1alpha1\nkind: MetricsConfiguration\nspec: {}\n")
    obj = OBJECT_DIR / "mongodb" / "resource-metrics-v1-standalone.yaml"
    result = cli("render", "-c", str(bad), str(MONGO_CONFIG), "-o", str(obj))
    assert result.returncode == 1
    assert b"kubedb_com_mongodb_replicas" in result.stdout
    assert "spec.targetRef: is required" in result.stderr.decode()


def test_validate_says_which_paths_it_could_not_check_and_fails_on_a_file_without_configs(
    tmp_path: Path,
) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text(
        "apiVersion: metrics.appscode.com/v1alpha1\nkind: MetricsConfiguration\nmetadata: {name: t}\n"
        "spec:\n  targetRef: {apiVersion: apps/v1, kind: Deploymnet}\n  metrics:\n"
        "  - {name: r, help: h, type: gauge, metricValue: {valueFromPath: .spec.replicaz}}\n"
    )
    warned = cli("validate", str(typo))
    assert warned.returncode == 0, warned.stderr
    assert "no schema for apps/v1 Deploymnet: paths not checked; did you mean apps/v1 Deployment?" in (
        warned.stdout.decode()
    )
    assert warned.stderr.decode() == "1 config(s): 1 valid, 0 invalid; 0 error(s), 1 warning(s)\n"
    (tmp_path / "empty.yaml").write_text("")
    empty = cli("validate", str(tmp_path / "empty.yaml"))
    assert empty.returncode == 1
    assert "empty.yaml: no MetricsConfiguration: the file is empty" in empty.stdout.decode()
