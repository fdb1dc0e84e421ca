"""The conversion docs/migration.md shows is what `panopticon convert` gives, and the
exposition it shows is what rendering that gives."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from panopticon.config.documents import read_documents
from tests.panopticon.convert.helpers import convert_and_render, convert_text

ROOT = Path(__file__).resolve().parents[3]
MIGRATION = (ROOT / "docs" / "migration.md").read_text()
OBJECTS = ROOT / "panopticon" / "data" / "examples" / "objects" / "mongodb"
MONGODB = OBJECTS / "kubedb-docs-guide-clustering-replicaset-mgo-replicaset-status.yaml"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, str]]:
    return [(lang, body) for lang, body in BLOCK.findall(MIGRATION)]


def test_the_worked_example_is_what_convert_prints_and_render_gives() -> None:
    found = blocks()
    index = next(
        i
        for i, (lang, body) in enumerate(found)
        if "kind: CustomResourceStateMetrics" in body and "kubedb_mongodb" in body
    )
    crs, (_, shown_config), (_, shown_series) = found[index][1], found[index + 1], found[index + 2]
    (converted,) = convert_text(crs).configs
    assert yaml.safe_load(shown_config) == converted.body
    rendered = convert_and_render(crs, [doc.body for doc in read_documents(str(MONGODB))])
    lines = [line for line in rendered.text.splitlines() if not line.startswith("#")]
    assert lines == shown_series.splitlines()
