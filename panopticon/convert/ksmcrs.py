"""`--from ksm-crs`: read CRS configs, expand wildcards, map, and check the result.

`convert_ksm_crs` never raises for bad input: unreadable files, documents that are
not CRS configs, unknown fields, paths that cannot be converted, empty resource
lists all come back as problems naming the file and the field. The configs it
returns have been compiled by Panopticon itself (against the built-in schemas and
the CRDs given), so what it prints is what the shards will accept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from panopticon.config.documents import read_documents
from panopticon.config.findings import Finding
from panopticon.convert.crs import CrsReader, Resource
from panopticon.convert.mapping import Converted, Mapper, unify_help
from panopticon.convert.reading import crs_documents, read_file
from panopticon.convert.wildcards import ServedKind, expand, served_kinds
from panopticon.errors import DocumentError
from panopticon.render.families import resolve_families
from panopticon.render.program import compile_config
from panopticon.render.schema import SchemaIndex, native_schemas


@dataclass(frozen=True, slots=True)
class Problem:
    """A finding, with the file (and document) it is about."""

    source: str
    finding: Finding

    @property
    def is_error(self) -> bool:
        return self.finding.severity == "error"

    def __str__(self) -> str:
        prefix = "" if self.is_error else "warning: "
        return f"{self.source}: {prefix}{self.finding}"


@dataclass(slots=True)
class Conversion:
    configs: list[Converted] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    def add(self, source: str, findings: list[Finding]) -> None:
        self.problems.extend(Problem(source, f) for f in findings)


def read_crds(paths: list[str], out: Conversion) -> list[dict[str, Any]]:
    """The documents of CRD files (a file that cannot be read is a problem in `out`)."""
    bodies: list[dict[str, Any]] = []
    for path in paths:
        try:
            bodies.extend(doc.body for doc in read_documents(path))
        except DocumentError as e:
            out.add(path, [Finding("", str(e))])
    return bodies


def convert_ksm_crs(
    paths: list[str],
    *,
    crds: list[dict[str, Any]] | None = None,
    ignore_unknown: bool = False,
    name_prefix: str = "ksm-",
    texts: dict[str, str] | None = None,
    out: Conversion | None = None,
) -> Conversion:
    """Convert the CRS configs in `paths` (`texts`, when given, holds their contents
    by path instead of the files: for stdin and tests). `crds` are the installed
    CustomResourceDefinitions (None: not known), for wildcards and path checks.
    Problems are added to `out` (a new Conversion by default), which is returned."""
    out = out if out is not None else Conversion()
    schemas = native_schemas()
    kinds: list[ServedKind] | None = None
    if crds is not None:
        for body in crds:
            if body.get("kind") == "CustomResourceDefinition":
                schemas.add_crd(body)
        kinds = served_kinds(crds)
    resources = _read(paths, texts, ignore_unknown, out)
    mapper = Mapper(name_prefix=name_prefix)
    seen: dict[tuple[str, str], Resource] = {}
    for resource in resources:
        found: list[Finding] = []
        for concrete in expand(resource, kinds, found):
            key = (concrete.group, concrete.kind)
            if key in seen:
                first = seen[key]
                found.append(
                    Finding(
                        f"{concrete.where}.groupVersionKind",
                        f"{concrete.group}/{concrete.kind} is already configured by "
                        f"{first.source}: {first.where} (KSM refuses two entries for one resource too)",
                    )
                )
                continue
            seen[key] = concrete
            start = len(mapper.findings)
            converted = mapper.resource(concrete)
            found.extend(mapper.findings[start:])
            if converted is not None:
                out.configs.append(converted)
        out.add(resource.source, found)
    shared: list[Finding] = []
    unify_help(out.configs, shared)
    out.add("families", shared)
    _check(out, schemas)
    return out


def _read(
    paths: list[str], texts: dict[str, str] | None, ignore_unknown: bool, out: Conversion
) -> list[Resource]:
    resources: list[Resource] = []
    for path in paths:
        try:
            text = texts[path] if texts is not None and path in texts else read_file(path)
            documents = crs_documents(text, source=path)
        except DocumentError as e:
            out.add(path, [Finding("", str(e).removeprefix(f"{path}: "))])
            continue
        for doc in documents:
            reader = CrsReader(ignore_unknown=ignore_unknown)
            resources.extend(reader.read(doc.body, source=doc.source, where=doc.where))
            out.add(doc.source, reader.findings)
    return resources


def _check(out: Conversion, schemas: SchemaIndex) -> None:
    """Compile every converted config as a shard would; keep only the valid ones."""
    valid: list[Converted] = []
    programs = []
    for config in out.configs:
        compiled = compile_config(config.body, schemas=schemas)
        where = f"{config.origin} -> config {config.name}"
        out.add(where, list(compiled.findings))
        if compiled.program is not None:
            valid.append(config)
            programs.append(compiled.program)
    resolution = resolve_families(programs)
    for name, conflicts in resolution.conflicts.items():
        out.add(f"config {name}", conflicts)
    out.configs = valid
