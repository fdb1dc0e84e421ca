"""Converting CRS configs and rendering the result, for the converter's tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from panopticon.config.documents import parse_documents
from panopticon.convert.ksmcrs import Conversion, convert_ksm_crs
from panopticon.convert.output import to_yaml
from panopticon.render.exposition import Format
from panopticon.render.families import resolve_families
from panopticon.render.offline import Exposition, render_exposition
from panopticon.render.program import compile_config

KSM_CRS = Path(__file__).resolve().parents[2] / "data" / "ksm-crs"
KUADRANT = KSM_CRS / "kuadrant"
Series = tuple[str, frozenset[tuple[str, str]], float]
"""A series as Prometheus sees it: name, label set, value."""


@dataclass
class Rendered:
    conversion: Conversion
    exposition: Exposition
    text: str

    @property
    def series(self) -> set[Series]:
        return parse_series(self.text)

    @property
    def errors(self) -> list[str]:
        return [str(e) for e in self.exposition.errors]


def convert_text(
    text: str, *, ignore_unknown: bool = False, crds: list[dict[str, Any]] | None = None
) -> Conversion:
    texts = {"config.yaml": text}
    return convert_ksm_crs(["config.yaml"], texts=texts, ignore_unknown=ignore_unknown, crds=crds)


def crs(resource: dict[str, Any] | list[dict[str, Any]]) -> str:
    """A CRS document with `resource` (or resources)."""
    resources = resource if isinstance(resource, list) else [resource]
    return yaml.safe_dump({"kind": "CustomResourceStateMetrics", "spec": {"resources": resources}})


def convert_and_render(text: str, objects: list[dict[str, Any]], *, ignore_unknown: bool = False) -> Rendered:
    """Convert, print, read back as Panopticon reads files, compile and render."""
    conversion = convert_text(text, ignore_unknown=ignore_unknown)
    assert not conversion.errors, "\n".join(map(str, conversion.errors))
    programs = []
    for doc in parse_documents(to_yaml(conversion.configs), source="converted"):
        compiled = compile_config(doc.body)
        assert compiled.program is not None, [str(f) for f in compiled.errors]
        programs.append(compiled.program)
    exposition = render_exposition(resolve_families(programs), objects)
    return Rendered(conversion, exposition, exposition.to_bytes(Format.TEXT).decode())


def parse_series(text: str) -> set[Series]:
    """The series of an exposition, read by prometheus_client's parser (which also
    rejects invalid text)."""
    out: set[Series] = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.add((sample.name, frozenset(sample.labels.items()), float(sample.value)))
    return out


def series(family: str, value: float, /, **labels: str) -> Series:
    return (family, frozenset(labels.items()), float(value))


@cache
def kuadrant_crds() -> tuple[dict[str, Any], ...]:
    """Kuadrant's CRDs, parsed once, with libyaml (1.3 MB of YAML: seconds for the
    pure-Python parser `read_documents` uses; these files hold no timestamps, which
    is where the two would differ)."""
    out = []
    for path in sorted((KUADRANT / "crds").glob("*.yaml")):
        out.extend(doc for doc in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader) if doc)
    assert all(json.dumps(doc) for doc in out)  # plain JSON data: no datetime crept in
    return tuple(out)
