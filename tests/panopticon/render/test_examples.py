"""The example corpus end to end: validation, golden renders, Prometheus' parsers, promtool.

Golden files live in tests/golden/render/<config>/<object dir>__<object file>.prom.
After a deliberate change of output, regenerate them with
`PANOPTICON_UPDATE_GOLDEN=1 .venv/bin/pytest tests/panopticon/render/test_examples.py`
and review the diff.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from panopticon.config.documents import read_documents
from panopticon.render.exposition import Format
from panopticon.render.families import resolve_families
from panopticon.render.offline import render_exposition
from tests.panopticon.examples import (
    GOLDEN_DIR,
    INVALID_CONFIGS,
    OBJECT_DIR,
    VALID_CONFIGS,
    compiled,
    golden_path,
    matching_pairs,
    rel,
)

UPDATE = os.environ.get("PANOPTICON_UPDATE_GOLDEN") == "1"
PAIRS = matching_pairs()
# promtool lints names; these findings are about names users chose (kept for
# wire compatibility), not about the validity of the exposition.
NAME_LINTS = re.compile(
    r"label names should be written in 'snake_case'|non-counter metrics should not have \"_total\""
)


def render(config: Path, objects: Path, fmt: Format = Format.TEXT) -> bytes:
    program = compiled(config).program
    assert program is not None
    expo = render_exposition(resolve_families([program]), [d.body for d in read_documents(str(objects))])
    return expo.to_bytes(fmt)


@pytest.mark.parametrize("config", VALID_CONFIGS, ids=rel)
def test_every_example_config_validates_with_no_errors(config: Path) -> None:
    result = compiled(config)
    assert result.errors == [], [str(f) for f in result.errors]
    assert result.program is not None


@pytest.mark.parametrize(
    ("config", "field", "text"),
    [
        ("dpl-error-config.yaml", "spec.metrics[0].metricValue.valueFromPath", "'.spec.replica'"),
        ("pod-error-config.yaml", "spec.metrics[0].labels[0].valuePath", "did you mean .spec.nodeName?"),
        ("sts-error-config.yaml", "spec.metrics[0].field.path", "'specreplicas'"),
    ],
)
def test_every_invalid_example_fails_naming_the_bad_field(config: str, field: str, text: str) -> None:
    (path,) = [p for p in INVALID_CONFIGS if p.name == config]
    result = compiled(path)
    assert result.program is None
    assert [f.field for f in result.errors] == [field]
    assert text in result.errors[0].message


def test_the_checker_examples_old_function_names_are_accepted_with_a_warning_naming_the_new_one() -> None:
    (pod,) = [p for p in VALID_CONFIGS if p.name == "pod-config.yaml"]
    warnings = [f.message for f in compiled(pod).warnings]
    assert any("toInt() is the old name of int()" in w for w in warnings)
    assert any("toUnix() is the old name of unix()" in w for w in warnings)


def test_every_config_targets_some_example_object_or_is_known_to_have_none() -> None:
    covered = {config for config, _ in PAIRS}
    uncovered = sorted(c.name for c in VALID_CONFIGS if c not in covered)
    # The corpus has no objects of these kinds.
    assert uncovered == [
        "kafka-kubedb-com-connectcluster.yaml",
        "kubedb-com-druid.yaml",
        "kubedb-com-mariadb.yaml",
        "kubedb-com-pgbouncer.yaml",
        "kubedb-com-proxysql.yaml",
        "kubedb-com-solr.yaml",
    ]


@pytest.mark.parametrize(("config", "objects"), PAIRS, ids=[f"{c.stem}:{o.stem}" for c, o in PAIRS])
def test_rendering_an_example_matches_its_golden_file_and_parses(config: Path, objects: Path) -> None:
    text = render(config, objects)
    golden = golden_path(config, objects)
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(text)
    assert golden.exists(), f"no golden file {golden}; run with PANOPTICON_UPDATE_GOLDEN=1"
    assert text == golden.read_bytes()
    families = list(parse_text(text.decode()))
    names = [f.name for f in families]
    assert len(names) == len(set(names)), "a family appears twice"
    om = render(config, objects, Format.OPENMETRICS)
    om_families = list(parse_openmetrics(om.decode()))
    assert sorted(
        (s.name, tuple(sorted(s.labels.items())), s.value) for f in families for s in f.samples
    ) == sorted((s.name, tuple(sorted(s.labels.items())), s.value) for f in om_families for s in f.samples)


def test_no_golden_file_is_stale() -> None:
    expected = {golden_path(c, o) for c, o in PAIRS}
    present = set(GOLDEN_DIR.glob("*/*.prom"))
    assert present - expected == set()


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (scripts/setup installs it)"
)
def test_promtool_accepts_every_golden_file() -> None:
    for config, objects in PAIRS:
        data = golden_path(config, objects).read_bytes()
        proc = subprocess.run(
            ["promtool", "check", "metrics"], check=False, input=data, capture_output=True, timeout=30
        )
        out = (proc.stdout + proc.stderr).decode()
        problems = [line for line in out.splitlines() if line.strip() and not NAME_LINTS.search(line)]
        assert proc.returncode in (0, 3) and not problems, f"{config.name} x {objects.name}: {out}"


def test_the_reference_example_from_the_contract_holds() -> None:
    """METRICSCONFIGURATION.md: the blog's MongoDB config against a MongoDB in phase Ready."""
    (config,) = [p for p in VALID_CONFIGS if p.name == "blog-introducing-panopticon-kubedb-com-mongodb.yaml"]
    obj = read_documents(str(OBJECT_DIR / "mongodb" / "blog-mongodb-demo.yaml"))[0].body
    # The blog shows this object with `status.phase: Ready` (its status block is elided
    # in the post, kept as blog-mongodb-demo-with-status-elided.txt).
    assert (
        "  phase: Ready" in (OBJECT_DIR / "mongodb" / "blog-mongodb-demo-with-status-elided.txt").read_text()
    )
    obj["status"] = {"phase": "Ready"}
    program = compiled(config).program
    assert program is not None
    lines = program.render(obj).families["kubedb_mongodb_status_phase"].splitlines()
    expected = [
        'kubedb_mongodb_status_phase{mongodb="mongodb-demo",namespace="demo",phase="Ready"} 1',
        'kubedb_mongodb_status_phase{mongodb="mongodb-demo",namespace="demo",phase="Halted"} 0',
        'kubedb_mongodb_status_phase{mongodb="mongodb-demo",namespace="demo",phase="Provisioning"} 0',
        'kubedb_mongodb_status_phase{mongodb="mongodb-demo",namespace="demo",phase="Critical"} 0',
        'kubedb_mongodb_status_phase{mongodb="mongodb-demo",namespace="demo",phase="NotReady"} 0',
        'kubedb_mongodb_status_phase{mongodb="mongodb-demo",namespace="demo",phase="DataRestoring"} 0',
    ]
    parsed = {
        (tuple(sorted(s.labels.items())), s.value)
        for f in parse_text("\n".join(lines) + "\n")
        for s in f.samples
    }
    want = {
        (tuple(sorted(s.labels.items())), s.value)
        for f in parse_text("\n".join(expected) + "\n")
        for s in f.samples
    }
    assert parsed == want
    info = program.render(obj).families["kubedb_mongodb_info"]
    assert info.endswith(" 1\n") and 'mongodb="mongodb-demo"' in info
