"""Load MetricsConfigurations from files: parse, compile, resolve families.

Shared by the `validate` and `render` commands. A file that cannot be read, a
document that is not a MetricsConfiguration and an invalid config are all reported
with the file and config they come from; valid configs still load.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from panopticon.documents import Document, read_documents
from panopticon.errors import DocumentError
from panopticon.families import Resolution, resolve_families
from panopticon.model import Finding
from panopticon.program import CompiledConfig, compile_config
from panopticon.schema import native_schemas


@dataclass(frozen=True, slots=True)
class Located:
    """A finding with the file and config it belongs to."""

    source: str
    config: str
    finding: Finding

    def __str__(self) -> str:
        where = f"{self.source}: {self.config}" if self.config else self.source
        prefix = "warning: " if self.finding.severity == "warning" else ""
        return f"{where}: {prefix}{self.finding}"


@dataclass(slots=True)
class LoadedConfigs:
    compiled: list[tuple[str, CompiledConfig]] = field(default_factory=list)
    findings: list[Located] = field(default_factory=list)
    resolution: Resolution = field(default_factory=Resolution)

    @property
    def config_count(self) -> int:
        return len(self.compiled)

    @property
    def error_count(self) -> int:
        return sum(1 for f in self.findings if f.finding.severity == "error")

    @property
    def warning_count(self) -> int:
        return sum(1 for f in self.findings if f.finding.severity == "warning")

    def report(self, *, warnings: bool = True) -> Iterator[str]:
        for located in self.findings:
            if warnings or located.finding.severity == "error":
                yield str(located)


def load_configs(paths: list[str], *, check_schemas: bool = True) -> LoadedConfigs:
    """Load every MetricsConfiguration in `paths`.

    CustomResourceDefinitions among the documents are not configs: they provide the
    schemas custom-resource paths are checked against (built-in kinds are always
    known). Other kinds of documents are reported and skipped.
    """
    loaded = LoadedConfigs()
    sources: dict[str, str] = {}
    schemas = native_schemas() if check_schemas else None
    documents: list[Document] = []
    for path in paths:
        try:
            documents.extend(read_documents(path))
        except DocumentError as e:
            loaded.findings.append(Located(path, "", Finding("", str(e))))
    configs: list[Document] = []
    for doc in documents:
        if doc.body.get("kind") == "CustomResourceDefinition":
            if schemas is not None:
                schemas.add_crd(doc.body)
        else:
            configs.append(doc)
    for doc in configs:
        compiled = compile_config(doc.body, schemas=schemas)
        name = compiled.spec.name if compiled.spec else ""
        label = f"config {name}" if name else ""
        if name and name in sources:
            duplicate = Finding("metadata.name", f"duplicate config name (also in {sources[name]})")
            loaded.findings.append(Located(doc.source, label, duplicate))
            continue
        sources[name] = doc.source
        loaded.compiled.append((doc.source, compiled))
        loaded.findings.extend(Located(doc.source, label, f) for f in compiled.findings)
    programs = [c.program for _, c in loaded.compiled if c.program is not None]
    loaded.resolution = resolve_families(programs)
    by_name = {c.spec.name: src for src, c in loaded.compiled if c.spec is not None}
    for config, conflicts in loaded.resolution.conflicts.items():
        loaded.findings.extend(Located(by_name.get(config, "?"), f"config {config}", f) for f in conflicts)
    return loaded
