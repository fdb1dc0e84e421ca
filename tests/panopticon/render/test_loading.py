"""What `validate` (and `render`) make of the files they are given: unchecked paths
are said to be unchecked, files without a MetricsConfiguration are errors, and the
summary's counts agree with the findings listed above it."""

from __future__ import annotations

from pathlib import Path

import orjson

from panopticon.render.loading import load_configs


def config(name: str, api_version: str, kind: str, *, metric: str = "size", path: str = ".spec.size") -> str:
    return orjson.dumps(
        {
            "apiVersion": "metrics.appscode.com/v1alpha1",
            "kind": "MetricsConfiguration",
            "metadata": {"name": name},
            "spec": {
                "targetRef": {"apiVersion": api_version, "kind": kind},
                "metrics": [
                    {"name": metric, "help": "h", "type": "gauge", "metricValue": {"valueFromPath": path}}
                ],
            },
        }
    ).decode()


def write(tmp_path: Path, name: str, *docs: str) -> str:
    path = tmp_path / name
    path.write_text("\n".join(docs))
    return str(path)


def test_a_kind_or_version_without_a_schema_warns_that_its_paths_were_not_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.json",
        config("typo", "apps/v1", "Deploymnet"),
        config("old", "apps/v1beta9", "Deployment"),
        config("crd", "example.com/v1", "Widget"),
        config("ok", "apps/v1", "Deployment", metric="replicas", path=".spec.replicas"),
    )
    loaded = load_configs([path])
    lines = list(loaded.report())
    assert [line.split(": ", 2)[1] for line in lines] == ["config typo", "config old", "config crd"]
    assert all(
        "warning: spec.targetRef: no schema for" in line and "paths not checked" in line for line in lines
    )
    assert "apps/v1 Deploymnet: paths not checked; did you mean apps/v1 Deployment?" in lines[0]
    assert "apps/v1beta9 Deployment: paths not checked; did you mean apps/v1 Deployment?" in lines[1]
    assert "give its CustomResourceDefinition along with the config" in lines[2]
    assert loaded.summary() == "4 config(s): 4 valid, 0 invalid; 0 error(s), 3 warning(s)"


def test_files_without_a_metrics_configuration_are_errors(tmp_path: Path) -> None:
    empty = write(tmp_path, "empty.yaml", "# nothing here\n")
    deployment = write(tmp_path, "dep.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n")
    crd = write(tmp_path, "crd.yaml", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n")
    for paths, expected in (
        ([empty], "empty.yaml: no MetricsConfiguration: the file is empty"),
        ([deployment], "dep.yaml: not a MetricsConfiguration (apiVersion 'apps/v1', kind 'Deployment')"),
        ([crd], "crd.yaml: no MetricsConfiguration found"),
    ):
        loaded = load_configs(paths)
        assert [line.replace(f"{tmp_path}/", "") for line in loaded.report()] == [expected]
        assert (
            loaded.summary()
            == "0 config(s): 0 valid, 0 invalid; 1 error(s) (1 outside configs), 0 warning(s)"
        )
    # A CRD given with a config is a schema, not a mistake.
    with_config = load_configs(
        [crd, write(tmp_path, "c.json", config("c", "v1", "Pod", path=".spec.nodeName"))]
    )
    assert with_config.error_count == 0


def test_the_summary_counts_every_config_and_every_error_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.json",
        config("a", "v1", "Pod", path=".spec.nodeName"),
        config("a", "v1", "Pod", path=".spec.nodeName"),  # duplicate name
        config("b", "v1", "Pod", path=".spec.nodename"),  # unknown field under .spec
        config("c", "v1", "Pod", metric="info", path=".spec.nodeName"),
        config("d", "v1", "Pod", metric="info", path=".spec.nodeName"),  # the same family as c
    )
    other = write(tmp_path, "svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n")
    loaded = load_configs([path, str(tmp_path / "missing.yaml"), other])
    errors = list(loaded.report(warnings=False))
    assert len(errors) == loaded.error_count == 5, errors
    # Before: "4 config(s): 3 valid, 1 invalid" beside 5 errors (the duplicate and the
    # other files counted nowhere, the conflicting config counted valid).
    assert loaded.summary() == "5 config(s): 2 valid, 3 invalid; 5 error(s) (2 outside configs), 0 warning(s)"
