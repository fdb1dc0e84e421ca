"""kube-state-metrics CRS resources to MetricsConfigurations.

One MetricsConfiguration per resource (per kind, once wildcards are expanded):

| CRS | MetricsConfiguration |
|---|---|
| `groupVersionKind` | `spec.targetRef` |
| `metricNamePrefix` (default `kube_customresource`) | annotation `metrics.panopticon.dev/name-prefix` |
| KSM's `customresource_group/version/kind` labels | constant `spec.commonLabels` |
| `commonLabels`, `labelsFromPath` of the resource | `spec.commonLabels` (when no metric overrides them) |
| the same of a metric | `metrics[].labels` |
| `labelsFromPath` key `"prefix_*"` (a map as labels) | a map label, key `prefix_*` |
| `each` (Gauge, Info, StateSet and their fields) | `metrics[].each` |
| paths (`[status, conditions, "[type=Ready]"]`) | Panopticon paths (`panopticon.convert.segments`) |
| (no labels but KSM's) | `spec.defaultLabels: false` |

Label keys from paths are sanitized as KSM sanitizes them (`app.kubernetes.io/name` is
`app_kubernetes_io_name`). Every metric a resource has is converted, or the converter
says which one cannot be and why: nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from panopticon.config.findings import Finding
from panopticon.config.model import API_VERSION, KIND, LABEL_NAME, MAP_LABEL, METRIC_NAME
from panopticon.convert.crs import Collector, Each, Generator, Labels, Resource
from panopticon.convert.segments import SegmentError, to_path
from panopticon.render.ksmvalues import sanitize_label_name
from panopticon.render.program import NAME_PREFIX_ANNOTATION

KSM_PREFIX: Final = "kube_customresource"
GVK_LABELS: Final = ("customresource_group", "customresource_version", "customresource_kind")
TYPES: Final = {"gauge": "Gauge", "info": "Info", "stateset": "StateSet"}

LabelEntry = dict[str, str]


@dataclass(slots=True)
class Converted:
    """One MetricsConfiguration, and where in the CRS config it comes from."""

    body: dict[str, Any]
    origin: str

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])


def family_of(resource: Resource, generator: Generator) -> str:
    """KSM's fullName: the prefix, `_`, the metric's name (no prefix when it is "")."""
    prefix = KSM_PREFIX if resource.prefix is None else resource.prefix
    return f"{prefix}_{generator.name}" if prefix else generator.name


class Mapper(Collector):
    """Maps resources, collecting findings (field paths are the CRS document's)."""

    def __init__(self, *, name_prefix: str = "ksm-") -> None:
        super().__init__()
        self.name_prefix = name_prefix

    def path(self, segments: list[str], where: str) -> str | None:
        try:
            return to_path(segments)
        except SegmentError as e:
            self.error(where, f"cannot be converted: {e}")
            return None

    def resource(self, r: Resource) -> Converted | None:
        start = len(self.findings)
        api_version = f"{r.group}/{r.version}" if r.group else r.version
        if r.error_log_v:
            self.note_error_log_v(f"{r.where}.errorLogV")
        if r.plural:
            self.warn(
                f"{r.where}.resourcePlural", "ignored: Panopticon finds the kind's resource by discovery"
            )
        own = Labels(
            {**r.labels.common, **dict(zip(GVK_LABELS, (r.group, r.version, r.kind), strict=True))},
            r.labels.paths,
        )
        hoisted = _hoistable(own, [g.labels for g in r.metrics])
        common = self.label_entries(hoisted, f"{r.where}")
        metrics = []
        for generator in r.metrics:
            merged = own.merge(generator.labels)
            # Hoisted keys are those no metric redefines: the rest stays with the metric.
            rest = Labels(
                {k: v for k, v in merged.common.items() if k not in hoisted.common},
                {k: v for k, v in merged.paths.items() if k not in hoisted.paths},
            )
            metric = self.metric(r, generator, rest)
            if metric is not None:
                metrics.append(metric)
        if any(f.severity == "error" for f in self.findings[start:]):
            return None
        prefix = KSM_PREFIX if r.prefix is None else r.prefix
        spec: dict[str, Any] = {
            "targetRef": {"apiVersion": api_version, "kind": r.kind},
            "defaultLabels": False,
        }
        if common:
            spec["commonLabels"] = common
        spec["metrics"] = metrics
        body = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": self.config_name(r), "annotations": {NAME_PREFIX_ANNOTATION: prefix}},
            "spec": spec,
        }
        return Converted(body, f"{r.source}: {r.where} ({api_version} {r.kind})")

    def config_name(self, r: Resource) -> str:
        name = self.name_prefix + r.kind.lower()
        return f"{name}.{r.group.lower()}" if r.group else name

    def note_error_log_v(self, where: str) -> None:
        self.warn(
            where,
            "has no equivalent: Panopticon does not log render errors, it counts them per config "
            "and family (panopticon_shard_render_errors_total)",
        )

    def metric(self, r: Resource, g: Generator, labels: Labels) -> dict[str, Any] | None:
        family = family_of(r, g)
        if not METRIC_NAME.fullmatch(family):
            self.error(f"{g.where}.name", f"{family!r} is not a valid Prometheus metric name")
        if g.error_log_v:
            self.note_error_log_v(f"{g.where}.errorLogV")
        each = self.each(g.each)
        entries = self.label_entries(labels, g.where)
        if each is None:
            return None
        metric: dict[str, Any] = {"name": g.name, "help": g.help or family, "type": "gauge"}
        if entries:
            metric["labels"] = entries
        metric["each"] = each
        return metric

    def each(self, e: Each) -> dict[str, Any] | None:
        start = len(self.findings)
        out: dict[str, Any] = {"type": TYPES[e.type]}
        if e.path:
            out["path"] = self.path(e.path, f"{e.where}.path")
        if e.label_from_key:
            out["labelFromKey"] = self.label_name(e.label_from_key, f"{e.where}.labelFromKey")
        labels = self.label_entries(Labels({}, e.labels_from_path), e.where)
        if labels:
            out["labels"] = labels
        if e.value_from:
            out["valueFrom"] = self.path(e.value_from, f"{e.where}.valueFrom")
        if e.nil_is_zero:
            out["nilIsZero"] = True
        if e.type == "stateset":
            if not e.label_name:
                self.error(f"{e.where}.labelName", "is required: KSM would write a label with no name")
            out["labelName"] = self.label_name(e.label_name, f"{e.where}.labelName")
            if not e.states:
                self.error(f"{e.where}.list", "is empty: the metric would never have a series")
            elif len(set(e.states)) != len(e.states):
                self.error(f"{e.where}.list", "lists a state twice: KSM would write the series twice")
            out["list"] = list(e.states)
        return None if any(f.severity == "error" for f in self.findings[start:]) else out

    def label_name(self, name: str, where: str) -> str:
        if name and (not LABEL_NAME.fullmatch(name) or name.startswith("__")):
            self.error(where, f"{name!r} is not a valid Prometheus label name")
        return name

    def label_entries(self, labels: Labels, where: str) -> list[LabelEntry]:
        """Constants, then map labels in KSM's order (sorted by key), then path labels."""
        out: list[LabelEntry] = []
        for key, value in labels.common.items():
            out.append({"key": self.label_name(key, f"{where}.commonLabels.{key}"), "value": value})
        stars = sorted(k for k in labels.paths if k.startswith("*") or k.endswith("*"))
        named: dict[str, str] = {}
        for key in [*stars, *(k for k in labels.paths if k not in stars)]:
            at = f"{where}.labelsFromPath.{key}"
            path = self.path(labels.paths[key], at)
            if key in stars:
                prefix = sanitize_label_name(key[:-1]) if key.endswith("*") else ""
                label = prefix + "*"
                if not MAP_LABEL.fullmatch(label) or label.startswith("__"):
                    self.error(at, f"labels named {prefix}<field> are not valid Prometheus label names")
            else:
                label = self.label_name(sanitize_label_name(key), at)
                if label in named:
                    self.error(at, f"is label {label!r}, like {named[label]!r}: KSM would pick one at random")
                named[label] = key
            if path is not None:
                out.append({"key": label, "valuePath": path})
        return out


def _hoistable(own: Labels, metrics: list[Labels]) -> Labels:
    """The resource's labels that go to `spec.commonLabels`: those no metric replaces
    (KSM merges per key), and map labels only when no metric has map labels of its
    own (KSM applies map labels sorted by key across both levels)."""
    common = {k: v for k, v in own.common.items() if not any(k in m.common for m in metrics)}
    metric_stars = any(k.startswith("*") or k.endswith("*") for m in metrics for k in m.paths)
    paths = {
        k: v
        for k, v in own.paths.items()
        if not any(k in m.paths for m in metrics)
        and not (metric_stars and (k.startswith("*") or k.endswith("*")))
    }
    return Labels(common, paths)


def unify_help(converted: list[Converted], findings: list[Finding]) -> None:
    """One HELP per family across every converted config (Prometheus wants one; KSM
    writes one per metric, which flux2#6064 shows going wrong)."""
    first: dict[str, tuple[str, str]] = {}
    for config in converted:
        prefix = config.body["metadata"]["annotations"][NAME_PREFIX_ANNOTATION]
        for metric in config.body["spec"]["metrics"]:
            family = f"{prefix}_{metric['name']}" if prefix else metric["name"]
            known = first.setdefault(family, (metric["help"], config.origin))
            if known[0] != metric["help"]:
                findings.append(
                    Finding(
                        f"{config.origin}: {metric['name']}",
                        f"family {family}: HELP differs from the one in {known[1]}; that one is used",
                        "warning",
                    )
                )
                metric["help"] = known[0]
