"""The MetricsConfigurations an exporter is built with: files, dicts or other mappings.

They go through the same loading as `panopticon validate` (`panopticon.render.loading`):
CRDs among them give schemas, duplicates and family conflicts are found, and every
problem names its file (or `configs[i]` for a mapping), its config and its field.
An invalid config is reported and left out; the others are used.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from panopticon.config.documents import Document
from panopticon.render.families import Resolution
from panopticon.render.loading import LoadedConfigs, load_documents, read_config_file
from panopticon.render.program import Program

ConfigSource = str | os.PathLike[str] | Mapping[str, Any]
"""A file of MetricsConfigurations (YAML or JSON, several documents allowed), or one
MetricsConfiguration as a mapping (a dict, or an object such as kopf's `Body`)."""


@dataclass(frozen=True, slots=True)
class ConfigReport:
    """What loading said about one config (or, with `name` empty, one source)."""

    name: str
    source: str
    valid: bool
    """False when the config is left out (any error); a config whose metric clashes
    with another config's family is valid and runs without that metric."""
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LoadedSet:
    resolution: Resolution
    reports: tuple[ConfigReport, ...]

    def programs_by_target(self) -> dict[tuple[str, str], list[Program]]:
        """(apiVersion, kind) -> its programs, by config name."""
        out: dict[tuple[str, str], list[Program]] = {}
        for program in sorted(self.resolution.programs.values(), key=lambda p: p.config_name):
            out.setdefault((program.target.api_version, program.target.kind), []).append(program)
        return out


def load(sources: Iterable[ConfigSource]) -> LoadedSet:
    loaded = LoadedConfigs()
    documents: list[Document] = []
    given = 0
    for index, source in enumerate(sources):
        given += 1
        if isinstance(source, Mapping):
            documents.append(Document(f"configs[{index}]", _plain(source)))
            continue
        documents.extend(read_config_file(os.fspath(source), loaded))
    if given:
        loaded = load_documents(documents, where="configs", loaded=loaded)
    return LoadedSet(loaded.resolution, _reports(loaded))


def _reports(loaded: LoadedConfigs) -> tuple[ConfigReport, ...]:
    grouped: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
    for located in loaded.findings:
        errors, warnings = grouped.setdefault((located.source, located.config), ([], []))
        (errors if located.finding.severity == "error" else warnings).append(str(located))
    running: set[tuple[str, str]] = set()
    """(source, name) of the configs that compiled: they run, without the metrics a
    family conflict excluded."""
    for source, compiled in loaded.compiled:
        if compiled.spec is not None and compiled.spec.name:
            grouped.setdefault((source, f"config {compiled.spec.name}"), ([], []))
            if compiled.program is not None:
                running.add((source, compiled.spec.name))
    reports = []
    for (source, label), (errors, warnings) in grouped.items():
        name = label.removeprefix("config").strip()
        valid = (source, name) in running
        reports.append(ConfigReport(name, source, valid, tuple(errors), tuple(warnings)))
    return tuple(reports)


def _plain(value: Any) -> Any:
    """A mapping's content as the plain dicts and lists the compiler expects."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(v) for v in value]
    return value
