"""`panopticon convert --from ksm-crs`: the forms it reads, the errors it gives (one
line each, naming file and field, no traceback, exit 1, nothing written), wildcards,
and families shared by several kinds."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from panopticon import cli
from panopticon.config.documents import parse_documents
from tests.panopticon.convert.helpers import convert_and_render, convert_text, crs, parse_series, series

FOO = {"group": "myteam.io", "version": "v1", "kind": "Foo"}
UPTIME = {
    "groupVersionKind": FOO,
    "labelsFromPath": {"name": ["metadata", "name"]},
    "metrics": [
        {
            "name": "uptime",
            "help": "Foo uptime",
            "each": {"type": "Gauge", "gauge": {"path": ["status", "uptime"]}},
        }
    ],
}
FOO_OBJECT = {
    "apiVersion": "myteam.io/v1",
    "kind": "Foo",
    "metadata": {"name": "a"},
    "status": {"uptime": 43.21},
}


def run(args: list[str], capsys: pytest.CaptureFixture[str], stdin: str = "") -> tuple[int, str, str]:
    if stdin:
        capsys.readouterr()
        import sys

        old, sys.stdin = sys.stdin, io.StringIO(stdin)
        try:
            code = cli.main(["convert", "--from", "ksm-crs", *args])
        finally:
            sys.stdin = old
    else:
        code = cli.main(["convert", "--from", "ksm-crs", *args])
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: [unclosed\n", "not valid YAML: while parsing a flow sequence"),
        ("apiVersion: v1\nkind: ConfigMap\n", "not a CRS config: expected kind: CustomResourceStateMetrics"),
        ("- a\n- b\n", "not a CRS config: a list, not a mapping"),
        ("- groupVersionKind: {}\n", "not a CRS config but a list of resources: put it under spec.resources"),
        ("kind: CustomResourceStateMetrics\nspec:\n  resources: []\n", "spec.resources: is empty"),
        ("kind: CustomResourceStateMetrics\n", "spec: is required"),
        (
            "kind: CustomResourceStateMetrics\nspec: {resources: [{}]}\n",
            "spec.resources[0]: must be a mapping",
        ),
        (
            "kind: CustomResourceStateMetrics\nspec:\n  resources: []\n  resources: []\n",
            "'resources' is given twice",
        ),
        ("", "no YAML document in it"),
        (
            "l0: &a0 [x]\n" + "".join(f"l{i}: &a{i} [*a{i - 1}, *a{i - 1}]\n" for i in range(1, 600)),
            "aliases",
        ),
    ],
    ids=[
        "not YAML",
        "not CRS",
        "a list",
        "a list of resources",
        "empty resources",
        "no spec",
        "empty resource",
        "duplicate key",
        "empty",
        "alias bomb",
    ],
)
def test_bad_input_is_one_line_naming_file_and_field_and_exit_1(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "in.yaml", text)
    code, out, err = run([path, "--out", str(tmp_path / "out")], capsys)
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert lines[0].startswith(f"{path}: ") and message in lines[0], err
    assert lines[-1].endswith("error(s): nothing written") and len(lines) == 2
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_unknown_fields_are_named_with_a_suggestion_or_ignored_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    resource = {**UPTIME, "labelFromPath": {"x": ["y"]}}
    resource["metrics"] = [
        {**UPTIME["metrics"][0], "each": {"type": "Gauge", "gauge": {"path": ["a"], "valuefrom": ["b"]}}}
    ]
    path = write(tmp_path, "in.yaml", crs(resource))
    code, _, err = run([path], capsys)
    assert code == 1
    assert f"{path}: spec.resources[0].labelFromPath: unknown field (did you mean labelsFromPath?" in err
    assert (
        f"{path}: spec.resources[0].metrics[0].each.gauge.valuefrom: unknown field (did you mean valueFrom?"
        in err
    )
    code, out, err = run([path, "--ignore-unknown"], capsys)
    assert code == 0 and "kind: MetricsConfiguration" in out
    assert f"{path}: warning: spec.resources[0].labelFromPath: unknown field" in err


def test_a_path_that_cannot_be_converted_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    resource = {
        **UPTIME,
        "metrics": [
            {"name": "x", "each": {"type": "Info", "info": {"labelsFromPath": {"l": ["a", "[a=b]c]"]}}}}
        ],
    }
    path = write(tmp_path, "in.yaml", crs(resource))
    code, _, err = run([path], capsys)
    assert code == 1
    assert f"{path}: spec.resources[0].metrics[0].each.info.labelsFromPath.l: cannot be converted" in err


def test_two_entries_for_one_kind_are_refused_as_ksm_refuses_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = write(tmp_path, "a.yaml", crs(UPTIME))
    second = write(tmp_path, "b.yaml", crs({**UPTIME, "groupVersionKind": {**FOO, "version": "v2"}}))
    code, _, err = run([first, second], capsys)
    assert code == 1
    assert (
        f"{second}: spec.resources[0].groupVersionKind: myteam.io/Foo is already configured by {first}" in err
    )


def test_the_three_forms_convert_alike(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = yaml.safe_load(crs(UPTIME))
    forms = {
        "document": document,
        "bare spec": {"spec": document["spec"]},
        "helm values": {"replicas": 1, "customResourceState": {"enabled": True, "config": document}},
        "helm string": {"customResourceState": {"config": yaml.safe_dump(document)}},
        "kube-prometheus-stack": {"kube-state-metrics": {"customResourceState": {"config": document}}},
    }
    outputs = {}
    for form, body in forms.items():
        code, out, err = run([write(tmp_path, "in.yaml", yaml.safe_dump(body))], capsys)
        assert code == 0, (form, err)
        outputs[form] = [doc.body for doc in parse_documents(out, source=form)]
    assert all(bodies == outputs["document"] for bodies in outputs.values())
    assert outputs["document"][0]["spec"]["targetRef"] == {"apiVersion": "myteam.io/v1", "kind": "Foo"}


def test_standard_input_and_an_output_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        ["-", "--out", str(tmp_path / "out"), "--name-prefix", "x-"], capsys, stdin=crs(UPTIME)
    )
    assert code == 0, err
    written = tmp_path / "out" / "x-foo.myteam.io.yaml"
    assert f"wrote {written}" in err
    (doc,) = parse_documents(written.read_text(), source="out")
    assert doc.body["metadata"]["name"] == "x-foo.myteam.io"


def test_the_output_validates_and_renders_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run([write(tmp_path, "in.yaml", crs(UPTIME))], capsys)
    assert code == 0
    config = write(tmp_path, "config.yaml", out)
    objects = write(tmp_path, "objects.yaml", yaml.safe_dump(FOO_OBJECT))
    assert cli.main(["validate", config]) == 0
    capsys.readouterr()  # validate's report (a "paths not checked" warning: no CRD given)
    assert cli.main(["render", "--config", config, "--object", objects]) == 0
    out = capsys.readouterr().out
    labels = {
        "customresource_group": "myteam.io",
        "customresource_kind": "Foo",
        "customresource_version": "v1",
    }
    assert parse_series(out) == {series("kube_customresource_uptime", 43.21, **labels, name="a")}


# --- wildcards, against CRDs


def crd(kind: str, versions: list[tuple[str, bool, bool]]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.lower()}s.myteam.io"},
        "spec": {
            "group": "myteam.io",
            "names": {"kind": kind, "plural": f"{kind.lower()}s"},
            "scope": "Namespaced",
            "versions": [
                {"name": n, "served": served, "storage": storage} for n, served, storage in versions
            ],
        },
    }


CRDS = [
    crd("Foo", [("v1", True, True), ("v1beta1", True, False)]),
    crd("Bar", [("v1", True, True)]),
    crd("Old", [("v1alpha1", False, True)]),
]
INFO = {
    "groupVersionKind": {"group": "myteam.io", "version": "*", "kind": "*"},
    "metrics": [
        {
            "name": "myobject_info",
            "help": "Foo Bar Baz",
            "each": {
                "type": "Info",
                "info": {
                    "path": ["metadata"],
                    "labelsFromPath": {"object": ["name"], "namespace": ["namespace"]},
                },
            },
        }
    ],
}


def test_a_wildcard_needs_the_crds_and_says_so() -> None:
    (error,) = convert_text(crs(INFO)).errors
    assert error.finding.field == "spec.resources[0].groupVersionKind"
    assert "--crds" in error.finding.message


def test_a_wildcard_expands_to_every_served_kind_of_the_group_at_its_storage_version() -> None:
    conversion = convert_text(crs(INFO), crds=CRDS)
    assert conversion.errors == []
    targets = [c.body["spec"]["targetRef"] for c in conversion.configs]
    assert targets == [
        {"apiVersion": "myteam.io/v1", "kind": "Foo"},
        {"apiVersion": "myteam.io/v1", "kind": "Bar"},
    ]
    (warning,) = [str(p) for p in conversion.problems if "once per served version" in str(p)]
    assert (
        "Foo: KSM serves each object once per served version (v1, v1beta1); converted for v1 only" in warning
    )


def test_a_pinned_version_that_is_not_served_matches_nothing_and_says_so() -> None:
    conversion = convert_text(
        crs({**INFO, "groupVersionKind": {"group": "myteam.io", "version": "v1alpha1", "kind": "*"}}),
        crds=CRDS,
    )
    (error,) = conversion.errors
    assert "myteam.io/v1alpha1/* matches none of the CRDs given" in error.finding.message


def test_the_ksm_docs_wildcard_example_renders_one_family_for_both_kinds() -> None:
    objects = [
        {"apiVersion": "myteam.io/v1", "kind": kind, "metadata": {"name": name, "namespace": "ns"}}
        for kind, name in (("Foo", "foo"), ("Bar", "bar"))
    ]
    conversion = convert_text(crs(INFO), crds=CRDS)
    rendered = convert_and_render_configs(conversion, objects)
    gvk = {"customresource_group": "myteam.io", "customresource_version": "v1"}
    assert rendered == {
        series(
            "kube_customresource_myobject_info",
            1,
            **gvk,
            customresource_kind=kind,
            namespace="ns",
            object=name,
        )
        for kind, name in (("Foo", "foo"), ("Bar", "bar"))
    }


def convert_and_render_configs(conversion: Any, objects: list[dict[str, Any]]) -> set[Any]:
    from panopticon.convert.output import to_yaml
    from panopticon.render.families import resolve_families
    from panopticon.render.offline import render_exposition
    from panopticon.render.program import compile_config

    programs = [
        compile_config(d.body).program for d in parse_documents(to_yaml(conversion.configs), source="x")
    ]
    text = render_exposition(resolve_families([p for p in programs if p]), objects).to_bytes().decode()
    assert text.count("# HELP kube_customresource_myobject_info ") == 1
    return parse_series(text)


# --- one family from several kinds, and one name twice in a resource


def flux_like(helps: list[str]) -> str:
    """A config in the style of Flux's: one `gotk_resource_info` family for several kinds."""
    kinds = ["GitRepository", "Kustomization", "HelmRelease"]
    return crs(
        [
            {
                "groupVersionKind": {"group": "toolkit.fluxcd.io", "version": "v1", "kind": kind},
                "metricNamePrefix": "gotk",
                "labelsFromPath": {
                    "name": ["metadata", "name"],
                    "exported_namespace": ["metadata", "namespace"],
                },
                "metrics": [
                    {
                        "name": "resource_info",
                        "help": help_text,
                        "each": {
                            "type": "Info",
                            "info": {
                                "labelsFromPath": {
                                    "ready": ["status", "conditions", "[type=Ready]", "status"]
                                }
                            },
                        },
                        "commonLabels": {"customresource_kind": kind},
                    }
                ],
            }
            for kind, help_text in zip(kinds, helps, strict=True)
        ]
    )


FLUX_OBJECTS = [
    {
        "apiVersion": "toolkit.fluxcd.io/v1",
        "kind": kind,
        "metadata": {"name": "app", "namespace": "flux-system"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    for kind in ("GitRepository", "Kustomization", "HelmRelease")
]


def test_several_kinds_sharing_a_family_give_one_valid_family(tmp_path: Path) -> None:
    rendered = convert_and_render(flux_like(["The current status of a Flux resource."] * 3), FLUX_OBJECTS)
    assert rendered.text.count("# HELP gotk_resource_info ") == 1
    assert rendered.text.count("# TYPE gotk_resource_info gauge") == 1
    assert len(rendered.series) == 3
    if shutil.which("promtool"):
        proc = subprocess.run(
            ["promtool", "check", "metrics"], input=rendered.text.encode(), capture_output=True, check=False
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_differing_help_texts_of_one_family_are_made_one_and_reported() -> None:
    rendered = convert_and_render(flux_like(["one", "two", "one"]), FLUX_OBJECTS)
    assert rendered.text.count("# HELP gotk_resource_info one\n") == 1
    warnings = [str(p) for p in rendered.conversion.problems if "HELP differs" in str(p)]
    assert len(warnings) == 1 and "family gotk_resource_info" in warnings[0]


def test_one_name_twice_in_a_resource_is_one_family_with_both_series() -> None:
    """KSM's documentation example (VPA, memory and CPU under one name), which KSM
    itself writes as two families of one name."""

    def bound(resource: str, unit: str, help_text: str) -> dict[str, Any]:
        return {
            "name": "verticalpodautoscaler_status_recommendation_containerrecommendations_lowerbound",
            "help": help_text,
            "commonLabels": {"unit": unit, "resource": resource},
            "each": {
                "type": "Gauge",
                "gauge": {
                    "path": ["status", "recommendation", "containerRecommendations"],
                    "labelsFromPath": {"container": ["containerName"]},
                    "valueFrom": ["lowerBound", resource],
                },
            },
        }

    config = crs(
        {
            "groupVersionKind": {
                "group": "autoscaling.k8s.io",
                "version": "v1",
                "kind": "VerticalPodAutoscaler",
            },
            "labelsFromPath": {
                "verticalpodautoscaler": ["metadata", "name"],
                "namespace": ["metadata", "namespace"],
            },
            "metrics": [bound("memory", "byte", "Minimum memory"), bound("cpu", "core", "Minimum cpu")],
        }
    )
    vpa = {
        "apiVersion": "autoscaling.k8s.io/v1",
        "kind": "VerticalPodAutoscaler",
        "metadata": {"name": "vpa-example", "namespace": "namespace-example"},
        "status": {
            "recommendation": {
                "containerRecommendations": [
                    {"containerName": "consumer", "lowerBound": {"cpu": "100m", "memory": "262144k"}}
                ]
            }
        },
    }
    rendered = convert_and_render(config, [vpa])
    name = (
        "kube_customresource_verticalpodautoscaler_status_recommendation_containerrecommendations_lowerbound"
    )
    assert rendered.text.count(f"# HELP {name} ") == 1
    common = {
        "container": "consumer",
        "customresource_group": "autoscaling.k8s.io",
        "customresource_kind": "VerticalPodAutoscaler",
        "customresource_version": "v1",
        "namespace": "namespace-example",
        "verticalpodautoscaler": "vpa-example",
    }
    assert rendered.series == {
        series(name, 262144000, **common, resource="memory", unit="byte"),
        series(name, 0.1, **common, resource="cpu", unit="core"),
    }
