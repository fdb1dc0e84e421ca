"""The structure of a kube-state-metrics CRS config, checked field by field.

KSM decodes its config into Go structs (pkg/customresourcestate/config.go and
config_metrics_types.go) and silently ignores fields it does not know. A converter
that did the same would drop what a typo hides, so every unknown field is named
(an error, or with `ignore_unknown` a warning, which is what KSM does). Types are
checked as KSM's decoder checks them; every problem is a `Finding` whose field is
the path in the CRS document (`spec.resources[0].metrics[2].each.gauge.valueFrom`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Final

from panopticon.config.findings import Finding

TOP_FIELDS: Final = ("kind", "spec")
SPEC_FIELDS: Final = ("resources",)
RESOURCE_FIELDS: Final = (
    "groupVersionKind",
    "metricNamePrefix",
    "commonLabels",
    "labelsFromPath",
    "resourcePlural",
    "metrics",
    "errorLogV",
)
GVK_FIELDS: Final = ("group", "version", "kind")
GENERATOR_FIELDS: Final = ("name", "help", "each", "commonLabels", "labelsFromPath", "errorLogV")
EACH_FIELDS: Final = ("type", "gauge", "stateSet", "info")
TYPE_FIELDS: Final = {
    "gauge": ("path", "labelsFromPath", "labelFromKey", "valueFrom", "nilIsZero"),
    "info": ("path", "labelsFromPath", "labelFromKey"),
    "stateset": ("path", "labelsFromPath", "labelName", "list", "valueFrom"),
}
TYPE_KEYS: Final = {"gauge": "gauge", "info": "info", "stateset": "stateSet"}
"""The field of `each` holding a type's settings."""
MAX_ITEMS: Final = 10_000
"""Most entries read from one list or mapping of a config."""
_YAML_BOOLS: Final = {
    **dict.fromkeys(("true", "yes", "on", "y"), True),
    **dict.fromkeys(("false", "no", "off", "n"), False),
}


@dataclass(frozen=True, slots=True)
class Labels:
    """`commonLabels` and `labelsFromPath` of a resource or a metric."""

    common: dict[str, str] = field(default_factory=dict)
    paths: dict[str, list[str]] = field(default_factory=dict)

    def merge(self, other: Labels) -> Labels:
        """KSM's Labels.Merge: `other`'s keys replace this one's, per kind of label."""
        return Labels({**self.common, **other.common}, {**self.paths, **other.paths})


@dataclass(frozen=True, slots=True)
class Each:
    type: str
    """"gauge", "info" or "stateset" (KSM lowercases the type)."""
    path: list[str]
    labels_from_path: dict[str, list[str]]
    label_from_key: str
    value_from: list[str]
    nil_is_zero: bool
    label_name: str
    states: list[str]
    where: str


@dataclass(frozen=True, slots=True)
class Generator:
    name: str
    help: str
    each: Each
    labels: Labels
    error_log_v: int
    where: str


@dataclass(frozen=True, slots=True)
class Resource:
    group: str
    version: str
    kind: str
    prefix: str | None
    """metricNamePrefix; None when absent (KSM's default, kube_customresource)."""
    labels: Labels
    metrics: list[Generator]
    error_log_v: int
    plural: str
    where: str
    source: str


class Collector:
    """Collects findings (errors and warnings) by field."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def error(self, where: str, message: str) -> None:
        self.findings.append(Finding(where, message, "error"))

    def warn(self, where: str, message: str) -> None:
        self.findings.append(Finding(where, message, "warning"))


class CrsReader(Collector):
    """Reads CRS documents into `Resource`s, collecting findings."""

    def __init__(self, *, ignore_unknown: bool = False) -> None:
        super().__init__()
        self.ignore_unknown = ignore_unknown

    def mapping(self, value: Any, where: str, known: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(where, f"must be a mapping, not {_kind(value)}")
            return {}
        for key in value:
            if key not in known:
                at = f"{where}.{key}" if where else str(key)
                close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.75)
                hint = f"did you mean {close[0]}? " if close else ""
                message = f"unknown field ({hint}known here: {', '.join(known)})"
                (self.warn if self.ignore_unknown else self.error)(
                    at, message + ("; ignored" if self.ignore_unknown else "")
                )
        return value

    def text(self, obj: dict[str, Any], key: str, where: str) -> str:
        value = obj.get(key)
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        self.error(f"{where}.{key}", f"must be a string, not {_kind(value)}")
        return ""

    def strings(self, value: Any, where: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(where, f"must be a list of strings, not {_kind(value)}")
            return []
        out: list[str] = []
        for i, item in enumerate(value[:MAX_ITEMS]):
            if isinstance(item, str):
                out.append(item)
            elif item is None:
                out.append("")  # a null in a []string decodes to ""
            else:
                self.error(f"{where}[{i}]", f"must be a string, not {_kind(item)}")
        if len(value) > MAX_ITEMS:
            self.error(where, f"has more than {MAX_ITEMS} entries")
        return out

    def flag(self, obj: dict[str, Any], key: str, where: str) -> bool:
        value = obj.get(key)
        if value is None:
            return False
        if isinstance(value, str) and value.lower() in _YAML_BOOLS:
            return _YAML_BOOLS[value.lower()]
        self.error(f"{where}.{key}", f"must be true or false, not {_kind(value)}")
        return False

    def free_mapping(self, value: Any, where: str) -> dict[str, Any]:
        """A mapping whose keys are the user's (labels): any key is known."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(where, f"must be a mapping, not {_kind(value)}")
            return {}
        return value

    def level(self, obj: dict[str, Any], key: str, where: str) -> int:
        value = obj.get(key)
        if value is None:
            return 0
        if isinstance(value, str) and value.lstrip("+-").isdigit() and len(value) < 12:
            return int(value)
        self.error(f"{where}.{key}", f"must be an integer (a log verbosity), not {value!r}")
        return 0

    def labels(self, obj: dict[str, Any], where: str) -> Labels:
        common: dict[str, str] = {}
        raw = self.free_mapping(obj.get("commonLabels"), f"{where}.commonLabels")
        for key, value in list(raw.items())[:MAX_ITEMS]:
            if isinstance(value, str) or value is None:
                common[str(key)] = value or ""
            else:
                self.error(f"{where}.commonLabels.{key}", f"must be a string, not {_kind(value)}")
        return Labels(common, self.paths(obj.get("labelsFromPath"), f"{where}.labelsFromPath"))

    def paths(self, value: Any, where: str) -> dict[str, list[str]]:
        raw = self.free_mapping(value, where)
        return {str(key): self.strings(path, f"{where}.{key}") for key, path in list(raw.items())[:MAX_ITEMS]}

    def read(self, body: dict[str, Any], *, source: str, where: str) -> list[Resource]:
        """The resources of one CRS document (`where`: its field prefix in the file)."""
        top = self.mapping(body, where[:-1] if where else "", TOP_FIELDS)
        spec = self.mapping(top.get("spec"), f"{where}spec", SPEC_FIELDS)
        if "spec" not in top or not isinstance(top.get("spec"), dict):
            if "spec" not in top:
                self.error(f"{where}spec", "is required (spec.resources lists the resources)")
            return []
        raw = spec.get("resources")
        if not isinstance(raw, list) or not raw:
            what = "is empty" if isinstance(raw, list) or raw is None else f"must be a list, not {_kind(raw)}"
            self.error(f"{where}spec.resources", f"{what}: there is nothing to convert")
            return []
        resources = []
        for i, item in enumerate(raw[:MAX_ITEMS]):
            resource = self.resource(item, f"{where}spec.resources[{i}]", source)
            if resource is not None:
                resources.append(resource)
        return resources

    def resource(self, raw: Any, where: str, source: str) -> Resource | None:
        item = self.mapping(raw, where, RESOURCE_FIELDS)
        if not item:
            self.error(where, "must be a mapping with groupVersionKind and metrics")
            return None
        gvk = self.mapping(item.get("groupVersionKind"), f"{where}.groupVersionKind", GVK_FIELDS)
        group = self.text(gvk, "group", f"{where}.groupVersionKind")
        version = self.text(gvk, "version", f"{where}.groupVersionKind")
        kind = self.text(gvk, "kind", f"{where}.groupVersionKind")
        for key, value in (("version", version), ("kind", kind)):
            if not value:
                self.error(f"{where}.groupVersionKind.{key}", "is required")
        prefix = item.get("metricNamePrefix")
        if prefix is not None and not isinstance(prefix, str):
            self.error(f"{where}.metricNamePrefix", f"must be a string, not {_kind(prefix)}")
            prefix = None
        raw_metrics = item.get("metrics")
        if not isinstance(raw_metrics, list) or not raw_metrics:
            self.error(f"{where}.metrics", "must list at least one metric")
            raw_metrics = []
        metrics = [
            g
            for i, m in enumerate(raw_metrics[:MAX_ITEMS])
            if (g := self.generator(m, f"{where}.metrics[{i}]")) is not None
        ]
        return Resource(
            group=group,
            version=version,
            kind=kind,
            prefix=prefix,
            labels=self.labels(item, where),
            metrics=metrics,
            error_log_v=self.level(item, "errorLogV", where),
            plural=self.text(item, "resourcePlural", where),
            where=where,
            source=source,
        )

    def generator(self, raw: Any, where: str) -> Generator | None:
        item = self.mapping(raw, where, GENERATOR_FIELDS)
        if not item:
            self.error(where, "must be a mapping with name and each")
            return None
        name = self.text(item, "name", where)
        if not name:
            self.error(f"{where}.name", "is required")
        each = self.each(item.get("each"), f"{where}.each")
        labels = self.labels(item, where)
        if each is None or not name:
            return None
        return Generator(
            name, self.text(item, "help", where), each, labels, self.level(item, "errorLogV", where), where
        )

    def each(self, raw: Any, where: str) -> Each | None:
        item = self.mapping(raw, where, EACH_FIELDS)
        kind = self.text(item, "type", where).lower()
        if kind not in TYPE_FIELDS:
            found = f"{item.get('type')!r}" if item.get("type") else "missing"
            self.error(f"{where}.type", f"{found} is not Gauge, Info or StateSet")
            return None
        key = TYPE_KEYS[kind]
        for other in set(TYPE_KEYS.values()) - {key}:
            if item.get(other) is not None:
                self.warn(f"{where}.{other}", f"ignored: the type is {item['type']}, which reads {key}")
        if not isinstance(item.get(key), dict):
            self.error(f"{where}.{key}", f"is required for type {item['type']}")
            return None
        at = f"{where}.{key}"
        body = self.mapping(item[key], at, TYPE_FIELDS[kind])
        return Each(
            type=kind,
            path=self.strings(body.get("path"), f"{at}.path"),
            labels_from_path=self.paths(body.get("labelsFromPath"), f"{at}.labelsFromPath"),
            label_from_key=self.text(body, "labelFromKey", at),
            value_from=self.strings(body.get("valueFrom"), f"{at}.valueFrom"),
            nil_is_zero=self.flag(body, "nilIsZero", at),
            label_name=self.text(body, "labelName", at),
            states=self.strings(body.get("list"), f"{at}.list"),
            where=at,
        )


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else type(value).__name__
