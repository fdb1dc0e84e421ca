"""The documentation against the code: metric names, flags, links and examples.

- docs/metrics.md documents every self-metric the shard, the aggregator and the
  library (`panopticon.embed`) register,
  with its type and labels, and names no metric that does not exist; no other page
  names one either;
- docs/operations.md mentions every flag of `panopticon shard`, `aggregator` and `run`;
- every relative link in README.md, docs/*.md and manifests/README.md resolves to a
  file (and, with a `#fragment`, to a heading of a Markdown file);
- every MetricsConfiguration in a ```yaml block of those pages validates, and the
  exposition the README and the migration guide show is what `render` gives.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from aggregator.telemetry import AggregatorMetrics
from panopticon import cli
from panopticon._embed.telemetry import EmbedMetrics
from panopticon.config.documents import read_documents
from panopticon.render.exposition import Format
from panopticon.render.loading import load_configs
from panopticon.render.offline import render_exposition
from shard.telemetry import ShardMetrics

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
METRICS_DOC = DOCS / "metrics.md"
OPERATIONS_DOC = DOCS / "operations.md"
MIGRATION_DOC = DOCS / "migration.md"
README = ROOT / "README.md"
PAGES = [README, ROOT / "manifests" / "README.md", *sorted(DOCS.glob("*.md"))]
KUBEDB_CRDS = ROOT / "panopticon" / "data" / "crds" / "kubedb.yaml"
EXAMPLE_OBJECTS = ROOT / "panopticon" / "data" / "examples" / "objects"
TELEMETRY_MODULES = {
    ROOT / "shard" / "telemetry.py",
    ROOT / "aggregator" / "telemetry.py",
    ROOT / "panopticon" / "_embed" / "telemetry.py",
}
METRIC_CLASSES = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}

METRIC_NAME = re.compile(r"\bpanopticon_(?:shard|aggregator|embed)_[a-z0-9_]+(?![\w*])")
TABLE_ROW = re.compile(r"^\| `(panopticon_[a-z0-9_]+)` \| (\w+) \|([^|]*)\|", re.MULTILINE)
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


@dataclass(frozen=True)
class Family:
    _type: str
    _labelnames: tuple[str, ...]


def telemetry_metrics() -> dict[str, Family]:
    """Every metric family of the shard's, the aggregator's and the library's telemetry,
    by name: the metric objects, and the families custom collectors yield (read at
    scrape time)."""
    holders = [ShardMetrics(), AggregatorMetrics(CollectorRegistry()), EmbedMetrics(objects=list, ready=bool)]
    found: dict[str, Family] = {}
    for holder in holders:
        registered = {family.name for family in holder.registry.collect()}
        metrics = [m for m in vars(holder).values() if isinstance(m, MetricWrapperBase)]
        collectors = [
            c
            for c in vars(holder).values()
            if not isinstance(c, MetricWrapperBase | CollectorRegistry)
            and callable(getattr(c, "collect", None))
        ]
        collected = [f for c in collectors for f in c.describe()]
        names = {m._name for m in metrics} | {f.name for f in collected}
        assert names == registered, "a registered metric is neither an attribute nor a collector's"
        found.update((m._name, Family(m._type, tuple(m._labelnames))) for m in metrics)
        found.update((f.name, Family(f.type, tuple(getattr(f, "_labelnames", ())))) for f in collected)
    return found


def exposed_name(family: str, kind: str) -> str:
    """The name a family is queried by: counters carry `_total` on the wire."""
    return f"{family}_total" if kind == "counter" else family


def wire_names(family: str, kind: str) -> set[str]:
    """Every sample name a family exposes."""
    if kind == "counter":
        return {f"{family}_total", f"{family}_created"}
    if kind == "histogram":
        return {family, *(f"{family}_{s}" for s in ("bucket", "sum", "count", "created"))}
    return {family}


def families_and_types() -> dict[str, str]:
    return {name: metric._type for name, metric in telemetry_metrics().items()}


def fenced_blocks(path: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(path.read_text()) if lang == language]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    seen: Counter[str] = Counter()
    out = set()
    for heading in HEADING.findall(text):
        base = slug(heading)
        out.add(base if not seen[base] else f"{base}-{seen[base]}")
        seen[base] += 1
    return out


def test_every_self_metric_is_documented_with_its_type_and_labels() -> None:
    rows = {name: (kind, labels) for name, kind, labels in TABLE_ROW.findall(METRICS_DOC.read_text())}
    for family, metric in telemetry_metrics().items():
        name = exposed_name(family, metric._type)
        assert name in rows, f"{name} is not in a table of docs/metrics.md"
        kind, labels = rows[name]
        assert kind == metric._type, f"docs/metrics.md gives {name} the type {kind}, not {metric._type}"
        documented = set(re.findall(r"`(\w+)`", labels))
        assert documented == set(metric._labelnames), f"labels of {name} in docs/metrics.md"


def test_the_metrics_page_documents_no_metric_that_does_not_exist() -> None:
    kinds = families_and_types()
    rows = [name for name, _, _ in TABLE_ROW.findall(METRICS_DOC.read_text())]
    exposed = {exposed_name(f, k) for f, k in kinds.items()}
    assert sorted(set(rows) - exposed) == []
    assert len(rows) == len(set(rows)), "a metric has two rows"


def test_no_page_names_a_metric_that_does_not_exist() -> None:
    known = set().union(*(wire_names(f, k) for f, k in families_and_types().items()))
    for page in PAGES:
        unknown = sorted(set(METRIC_NAME.findall(page.read_text())) - known)
        assert unknown == [], f"{page.relative_to(ROOT)} names unknown metrics"


def test_only_the_telemetry_modules_define_prometheus_metrics() -> None:
    """Otherwise the metrics tests above would not see every registry."""
    for package in ("panopticon", "shard", "aggregator", "kubesim"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("prometheus_client"):
                    imported = {alias.name for alias in node.names} & METRIC_CLASSES
                    assert not imported or path in TELEMETRY_MODULES, f"{path.relative_to(ROOT)}"


@pytest.mark.parametrize("command", ["shard", "aggregator", "run"])
def test_every_flag_of_the_service_commands_is_in_the_operations_guide(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    flags = set(FLAG.findall(capsys.readouterr().out)) - {"--help"}
    assert len(flags) > 5, f"panopticon {command} --help lists almost no flags"
    text = OPERATIONS_DOC.read_text()
    missing = sorted(f for f in flags if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", text))
    assert missing == [], f"flags of panopticon {command} missing from docs/operations.md"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    text = FENCE.sub("", page.read_text())
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z+.-]*:", target):
            continue  # https:, mailto:
        path_part, _, fragment = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        assert resolved.exists(), f"{page.relative_to(ROOT)}: {target} does not exist"
        if fragment and resolved.suffix == ".md":
            assert fragment in anchors(resolved), f"{page.relative_to(ROOT)}: no heading for {target}"


def metrics_configuration_blocks() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for i, body in enumerate(fenced_blocks(page, "yaml")):
            if re.search(r"^kind: MetricsConfiguration$", body, re.MULTILINE):
                found.append((f"{page.relative_to(ROOT)}[{i}]", body))
    return found


CONFIG_BLOCKS = metrics_configuration_blocks()


@pytest.mark.parametrize(("where", "body"), CONFIG_BLOCKS, ids=[where for where, _ in CONFIG_BLOCKS])
def test_every_metrics_configuration_in_the_docs_validates(where: str, body: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(body)
    docs = list(yaml.safe_load_all(body))
    assert all(isinstance(d, dict) for d in docs), f"{where} is not a list of YAML objects"
    loaded = load_configs([str(config), str(KUBEDB_CRDS)])
    assert loaded.config_count == sum(1 for d in docs if d.get("kind") == "MetricsConfiguration")
    assert loaded.error_count == 0, "\n".join(loaded.report(warnings=False))


def test_the_docs_include_the_configurations_they_are_meant_to() -> None:
    names = {yaml.safe_load(body)["metadata"]["name"] for _, body in CONFIG_BLOCKS}
    assert {"apps-deployment", "kubedb-mongodb", "kubedb-com-mongodb"} <= names


@pytest.mark.parametrize(
    ("page", "config", "objects"),
    [
        (README, "apps-deployment", "deployment/gitops-engine-deployment-progressing.yaml"),
        (
            MIGRATION_DOC,
            "kubedb-mongodb",
            "mongodb/kubedb-docs-guide-clustering-replicaset-mgo-replicaset-status.yaml",
        ),
    ],
    ids=["README", "migration"],
)
def test_the_exposition_a_page_shows_is_what_render_gives(
    page: Path, config: str, objects: str, tmp_path: Path
) -> None:
    text = page.read_text()
    body = next(
        b
        for b in fenced_blocks(page, "yaml")
        if re.search(rf"^  name: {re.escape(config)}$", b, re.MULTILINE)
    )
    shown = text[text.index(body) + len(body) :]
    shown_block = FENCE.search(shown[shown.index("```text") :])
    assert shown_block is not None
    shown_lines = {line for line in shown_block.group(2).splitlines() if line and not line.startswith("#")}
    path = tmp_path / "config.yaml"
    path.write_text(body)
    loaded = load_configs([str(path)])
    objs = [doc.body for doc in read_documents(str(EXAMPLE_OBJECTS / objects))]
    rendered = render_exposition(loaded.resolution, objs).to_bytes(Format.TEXT).decode()
    assert shown_lines == {line for line in rendered.splitlines() if not line.startswith("#")}
