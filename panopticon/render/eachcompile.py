"""Compiling metrics with `each` into `panopticon.render.each`'s generators, once per config change.

`compile_each_metrics` checks what `panopticon.config.model` cannot (paths, label keys
against the object's own labels, the config's metrics all using `each`), groups
metrics of one name into one family, and warns about configs whose series may not
tell two objects apart. Labels are compiled into the layers `panopticon.render.each`
applies in KSM's order: constants, map labels, path labels.
"""

from __future__ import annotations

from panopticon.config.eachspec import EachSpec
from panopticon.config.findings import Finding
from panopticon.config.model import ConfigSpec, LabelSpec, MetricSpec
from panopticon.errors import PathError
from panopticon.render.each import EachMetric, Generator, LabelSet, PathCompiler, Writer
from panopticon.render.exposition import FamilyHeader, escape_label_value
from panopticon.render.paths import Path, compile_path
from panopticon.render.shapes.metrics import Metric


def compile_each_metrics(
    spec: ConfigSpec,
    names: list[str],
    *,
    reserved: frozenset[str],
    path: PathCompiler,
    findings: list[Finding],
) -> list[Metric]:
    """Compile a config whose metrics use `each`; `names[i]` is metric i's family name,
    `path` compiles (and schema-checks) a path read on the object. Problems go to
    `findings`; a metric with an error is left out."""
    compiler = _Compiler(spec, reserved, path, findings)
    common = compiler.layers(spec.common_labels, path)
    groups: dict[str, tuple[MetricSpec, list[Generator]]] = {}
    for m, name in zip(spec.metrics, names, strict=True):
        if m.each is None:
            first = next(x for x in spec.metrics if x.each is not None)
            compiler.error(
                m.where, f"has no each, but {first.where} does: a config's metrics all use each or none"
            )
            continue
        generator = compiler.generator(m, m.each, name, common)
        if generator is None:
            continue
        known = groups.get(name)
        if known is None:
            groups[name] = (m, [generator])
            continue
        first_spec, generators = known
        if first_spec.help != m.help:
            findings.append(
                Finding(
                    f"{m.where}.help",
                    f"differs from {first_spec.where}'s; the family keeps the first",
                    "warning",
                )
            )
        generators.append(generator)
    if not spec.default_labels:
        anonymous = [m.name for m in spec.metrics if m.each is not None and not _names_object(spec, m)]
        if anonymous:
            findings.append(
                Finding(
                    "spec.defaultLabels",
                    f"false, and no label of {', '.join(anonymous)} reads .metadata.name: two objects can "
                    "give the same series, of which Prometheus keeps one (add labels from .metadata.name "
                    "and, for a namespaced kind, .metadata.namespace)",
                    "warning",
                )
            )
    return [
        EachMetric(FamilyHeader(name, m.help), generators, reserved)
        for name, (m, generators) in groups.items()
    ]


def _names_object(spec: ConfigSpec, m: MetricSpec) -> bool:
    """Whether some label of `m` is the object's name (so objects' series differ)."""
    family = [label.value_path for label in (*spec.common_labels, *m.labels)]
    if any(_is_path(text, ".metadata.name") for text in family):
        return True
    each = m.each
    if each is None or not _is_path(each.path, ".metadata"):
        return False
    return any(_is_path(label.value_path, ".name") for label in each.labels)


def _is_path(text: str | None, normalized: str) -> bool:
    try:
        return text is not None and compile_path(text).normalized() == normalized
    except PathError:
        return False


class _Compiler:
    def __init__(
        self, spec: ConfigSpec, reserved: frozenset[str], path: PathCompiler, findings: list[Finding]
    ) -> None:
        self.spec = spec
        self.reserved = reserved
        self.root_path = path
        self.findings = findings

    def error(self, where: str, message: str) -> None:
        self.findings.append(Finding(where, message, "error"))

    def relative_path(self, text: str, where: str) -> Path | None:
        """A path read on an element: not checked against the kind's schema."""
        try:
            return compile_path(text)
        except PathError as e:
            self.error(where, str(e))
            return None

    def checked(self, compiled: Path | None, text: str, where: str) -> Path | None:
        if compiled is not None and compiled.wildcards:
            self.error(where, f"{text!r}: [*] is not used with each (each.path gives the elements)")
            return None
        return compiled

    def layers(
        self, specs: tuple[LabelSpec, ...], compile_one: PathCompiler
    ) -> tuple[list[tuple[str, str]], list[Writer], list[Writer]]:
        """Constants, map labels and path labels of `specs`, in order."""
        constants: list[tuple[str, str]] = []
        maps: list[Writer] = []
        paths: list[Writer] = []
        for label in specs:
            if label.key in self.reserved:
                self.error(f"{label.where}.key", f"label {label.key!r} is the object's own label")
                continue
            if label.value is not None:
                constants.append((label.key, escape_label_value(label.value)))
                continue
            where = f"{label.where}.valuePath"
            text = label.value_path or ""
            compiled = self.checked(compile_one(text, where), text, where)
            if compiled is not None:
                (maps if label.is_map else paths).append((label.is_map, label.key, compiled.getters[0]))
        return constants, maps, paths

    def generator(
        self,
        m: MetricSpec,
        each: EachSpec,
        name: str,
        common: tuple[list[tuple[str, str]], list[Writer], list[Writer]],
    ) -> Generator | None:
        start = len(self.findings)
        path = self.checked(self.root_path(each.path, f"{each.where}.path"), each.path, f"{each.where}.path")
        value_from = None
        if each.value_from is not None:
            where = f"{each.where}.valueFrom"
            value_from = self.checked(self.relative_path(each.value_from, where), each.value_from, where)
        for key, where in ((each.label_from_key, "labelFromKey"), (each.label_name, "labelName")):
            if key is not None and key in self.reserved:
                self.error(f"{each.where}.{where}", f"label {key!r} is the object's own label")
        metric_layers = self.layers(m.labels, self.root_path)
        element_layers = self.layers(each.labels, self.relative_path)
        if path is None or any(f.severity == "error" for f in self.findings[start:]):
            return None
        generator = Generator(name, each, path=path, value_from=value_from)
        c_const, c_maps, c_paths = common
        m_const, m_maps, m_paths = metric_layers
        generator.family = LabelSet(tuple(c_const + m_const), tuple(c_maps + m_maps + c_paths + m_paths))
        e_const, e_maps, e_paths = element_layers
        generator.element = LabelSet(tuple(e_const), tuple(e_maps + e_paths))
        return generator
