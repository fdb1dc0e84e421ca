"""Load MetricsConfigurations from files: parse, compile, resolve families.

Shared by the `validate` and `render` commands. A file that cannot be read, a
document that is not a MetricsConfiguration and an invalid config are all reported
with the file and config they come from; valid configs still load.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field

from panopticon.config.documents import Document, read_documents
from panopticon.config.findings import Finding
from panopticon.errors import DocumentError
from panopticon.render.families import Resolution, resolve_families
from panopticon.render.program import CompiledConfig, compile_config
from panopticon.render.schema import SchemaIndex, native_schemas


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
    config_count: int = 0
    """MetricsConfiguration documents read, a duplicate name included."""
    invalid_count: int = 0
    """Of those, the ones with at least one error (a duplicate, a family conflict too)."""

    @property
    def error_count(self) -> int:
        return sum(1 for f in self.findings if f.finding.severity == "error")

    @property
    def warning_count(self) -> int:
        return sum(1 for f in self.findings if f.finding.severity == "warning")

    @property
    def other_error_count(self) -> int:
        """Errors that belong to no config: unreadable files, files without a
        MetricsConfiguration, documents of other kinds."""
        return sum(1 for f in self.findings if f.finding.severity == "error" and not f.config)

    def report(self, *, warnings: bool = True) -> Iterator[str]:
        for located in self.findings:
            if warnings or located.finding.severity == "error":
                yield str(located)

    def summary(self) -> str:
        """`N config(s): V valid, I invalid; E error(s) (F outside configs), W warning(s)`:
        every invalid config has an error, and every error is in a config or outside."""
        others = self.other_error_count
        outside = f" ({others} outside configs)" if others else ""
        return (
            f"{self.config_count} config(s): {self.config_count - self.invalid_count} valid, "
            f"{self.invalid_count} invalid; {self.error_count} error(s){outside}, "
            f"{self.warning_count} warning(s)"
        )


def load_configs(paths: list[str], *, check_schemas: bool = True) -> LoadedConfigs:
    """Load every MetricsConfiguration in `paths`.

    CustomResourceDefinitions among the documents are not configs: they provide the
    schemas custom-resource paths are checked against (built-in kinds are always
    known); a config whose kind has no schema gets a warning that its paths were not
    checked. Documents of other kinds, an empty file, and finding no config at all
    (CRDs alone) are errors.
    """
    loaded = LoadedConfigs()
    documents = [doc for path in paths for doc in read_config_file(path, loaded)]
    return load_documents(documents, check_schemas=check_schemas, where=", ".join(paths), loaded=loaded)


def read_config_file(path: str, loaded: LoadedConfigs) -> list[Document]:
    """The documents of one file; a file that cannot be read, or is empty, is an error
    recorded in `loaded`."""
    try:
        read = read_documents(path)
    except DocumentError as e:
        loaded.findings.append(Located(path, "", Finding("", str(e))))
        return []
    if not read:
        empty = Finding("", "no MetricsConfiguration: the file is empty")
        loaded.findings.append(Located(path, "", empty))
    return read


def load_documents(
    documents: list[Document],
    *,
    check_schemas: bool = True,
    where: str = "",
    loaded: LoadedConfigs | None = None,
) -> LoadedConfigs:
    """`load_configs` of documents already read (the embeddable library takes
    configs as dicts too); `where` names them in the "no MetricsConfiguration found"
    error, and findings go into `loaded` when given."""
    loaded = loaded if loaded is not None else LoadedConfigs()
    sources: dict[str, str] = {}
    schemas = native_schemas() if check_schemas else None
    configs: list[Document] = []
    for doc in documents:
        kind = doc.body.get("kind")
        if kind == "CustomResourceDefinition":
            if schemas is not None:
                schemas.add_crd(doc.body)
        elif kind == "MetricsConfiguration":
            configs.append(doc)
        else:
            what = f"apiVersion {doc.body.get('apiVersion')!r}, kind {kind!r}"
            other = Finding("", f"not a MetricsConfiguration ({what})")
            loaded.findings.append(Located(doc.source, "", other))
    invalid: set[int] = set()
    for doc in configs:
        loaded.config_count += 1
        compiled = compile_config(doc.body, schemas=schemas)
        name = compiled.spec.name if compiled.spec else ""
        label = f"config {name}" if name else "config"
        if name and name in sources:
            duplicate = Finding("metadata.name", f"duplicate config name (also in {sources[name]})")
            loaded.findings.append(Located(doc.source, label, duplicate))
            loaded.invalid_count += 1
            continue
        sources[name] = doc.source
        findings = [*compiled.findings, *_unchecked(compiled, schemas)]
        if any(f.severity == "error" for f in findings):
            invalid.add(len(loaded.compiled))
        loaded.compiled.append((doc.source, compiled))
        loaded.findings.extend(Located(doc.source, label, f) for f in findings)
    programs = [c.program for _, c in loaded.compiled if c.program is not None]
    loaded.resolution = resolve_families(programs)
    for i, (source, c) in enumerate(loaded.compiled):
        conflicts = loaded.resolution.conflicts.get(c.spec.name, []) if c.spec else []
        loaded.findings.extend(Located(source, f"config {c.spec.name}", f) for f in conflicts if c.spec)
        if conflicts:
            invalid.add(i)
    loaded.invalid_count += len(invalid)
    if not loaded.config_count and not loaded.error_count:
        loaded.findings.append(Located(where, "", Finding("", "no MetricsConfiguration found")))
    return loaded


def _unchecked(compiled: CompiledConfig, schemas: SchemaIndex | None) -> list[Finding]:
    """A warning when the target kind has no schema: its paths were not checked
    (a typo in the kind or version, or a CRD that was not given)."""
    target = compiled.spec.target if compiled.spec else None
    if schemas is None or target is None or schemas.lookup(target.api_version, target.kind) is not None:
        return []
    by_kind: dict[str, list[str]] = {}
    for key in schemas.kinds:
        group_version, _, kind = key.rpartition("/")
        by_kind.setdefault(kind, []).append(f"{group_version} {kind}")
    close = difflib.get_close_matches(target.kind, list(by_kind), n=2, cutoff=0.8)
    known = sorted(k for kind in close for k in by_kind[kind])[:4]
    hint = (
        f"did you mean {' or '.join(known)}?"
        if known
        else "give its CustomResourceDefinition along with the config"
    )
    message = f"no schema for {target.api_version} {target.kind}: paths not checked; {hint}"
    return [Finding("spec.targetRef", message, "warning")]
