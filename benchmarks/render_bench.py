"""Render throughput: Panopticon's compiled programs against naive exporters, same run.

Workloads (objects cycled from the example corpus, each copy renamed so series differ):
- the KubeDB MongoDB config (`kubedb-com-mongodb.yaml`) over the example MongoDB objects;
- the native Pod config (`pod-config.yaml`) over the example Pods.

Contenders, each producing the whole exposition for N objects:
- `panopticon`: compiled program per config, `render_exposition(...).to_bytes()`.
- `naive`: what a straightforward Python exporter does: interpret the config dict for
  every object (split paths at every use, compile each expression at every use, call
  the resource functions without sharing), fill prometheus_client `GaugeMetricFamily`s
  and `generate_latest`. It produces the same series (checked every run).
- `prom-format`: prometheus_client formatting alone: the series Panopticon computed,
  pre-extracted, fed to `GaugeMetricFamily` + `generate_latest`. It does no extraction
  or evaluation at all, so it bounds from below what any prometheus_client exporter costs.

The process pins itself to one core. Figures: best of R repeats, objects per second,
and the ratio panopticon / contender.

    .venv/bin/python benchmarks/render_bench.py [--objects 20000] [--repeats 5] [--core 1]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from panopticon.config.documents import read_documents
from panopticon.config.model import parse_config
from panopticon.render.expr.compiler import compile_expression
from panopticon.render.expr.functions import numeric_result
from panopticon.render.expr.values import parse_time
from panopticon.render.families import resolve_families
from panopticon.render.offline import render_exposition
from panopticon.render.program import compile_config, family_name
from panopticon.text import to_text

EXAMPLES = Path(__file__).resolve().parent.parent / "panopticon" / "data" / "examples"
WORKLOADS = {
    "mongodb": ("metricsconfigurations/kubedb/kubedb-com-mongodb.yaml", "objects/mongodb"),
    "pod": ("metricsconfigurations/native/pod-config.yaml", "objects/pod"),
}


# --- the naive exporter ----------------------------------------------------------


def naive_get(obj: Any, path: str, index: list[int]) -> Any:
    """Resolve a path by splitting it at every call; [*] takes the next fan-out index."""
    if path.strip() == ".":
        return obj
    node = obj
    wild = 0
    for raw in path.strip().lstrip(".").replace("[", ".[").split("."):
        if not raw:
            continue
        if raw == "[*]":
            if not isinstance(node, list) or wild >= len(index) or index[wild] >= len(node):
                return None
            node = node[index[wild]]
            wild += 1
        elif raw.startswith("["):
            if not isinstance(node, list):
                return None
            i = int(raw[1:-1])
            node = node[i] if -len(node) <= i < len(node) else None
        else:
            node = node.get(raw) if isinstance(node, dict) else None
        if node is None:
            return None
    return node


class NaiveExporter:
    """Interprets the raw config for every object; no compilation, no caching."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.raw = config
        spec, _ = parse_config(config)
        assert spec is not None and spec.target is not None
        self.spec = spec
        self.kind = spec.target.kind.lower()

    def families(self, objects: Iterable[dict[str, Any]]) -> list[GaugeMetricFamily]:
        out: dict[str, GaugeMetricFamily] = {}
        for obj in objects:
            for m in self.raw["spec"]["metrics"]:
                name = family_name(self.spec, self.spec.target, m["name"])  # type: ignore[arg-type]
                fam = out.get(name)
                if fam is None:
                    fam = out[name] = GaugeMetricFamily(name, m["help"], labels=None)
                self.metric(obj, m, fam)
        return list(out.values())

    def metric(self, obj: dict[str, Any], m: dict[str, Any], fam: GaugeMetricFamily) -> None:
        field = m.get("field") or {}
        if field.get("type") == "Array":
            arr = naive_get(obj, field["path"], [])
            indexes = [[i] for i in range(len(arr))] if isinstance(arr, list) else []
        else:
            if field.get("path") and naive_get(obj, field["path"], []) is None:
                return
            indexes = [[]]
        for index in indexes:
            labels = {self.kind: obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"]}
            for lbl in [*self.raw["spec"].get("commonLabels", []), *m.get("labels", [])]:
                v = (
                    lbl.get("value")
                    if lbl.get("value") is not None
                    else naive_get(obj, lbl["valuePath"], index)
                )
                if v is not None:
                    labels[lbl["key"]] = to_text(v)
            env: dict[str, Any] = {}
            for p in m.get("params", []):
                if p.get("value") is not None:
                    env[p["key"]] = str(p["value"])
                else:
                    v = naive_get(obj, p["valuePath"], index)
                    env[p["key"]] = v if isinstance(v, (dict, list)) or v is None else to_text(v)
            states = m.get("states")
            if states:
                for s in states["values"]:
                    value = self.value(obj, s["metricValue"], env, index, field)
                    if value is not None:
                        fam.add_metric([], value)
                        fam.samples[-1] = fam.samples[-1]._replace(
                            labels={**labels, states["labelKey"]: s["labelValue"]}
                        )
            else:
                value = self.value(obj, m["metricValue"], env, index, field)
                if value is not None:
                    fam.add_metric([], value)
                    fam.samples[-1] = fam.samples[-1]._replace(labels=labels)

    def value(
        self, obj: Any, mv: dict[str, Any], env: dict[str, Any], index: list[int], field: dict[str, Any]
    ) -> Any:
        try:
            if mv.get("value") is not None:
                return float(mv["value"])
            if mv.get("valueFromPath"):
                raw = naive_get(obj, mv["valueFromPath"], index)
                if raw is None:
                    return None
                return parse_time(raw) if field.get("type") == "DateTime" else float(raw)
            expression = mv["valueFromExpression"]
            for old, new in (("toInt(", "int("), ("toUnix(", "unix(")):
                expression = expression.replace(old, new)
            return numeric_result(compile_expression(expression, set(env)).evaluate(dict(env)))
        except Exception:  # a naive exporter drops what fails
            return None


def naive_exposition(exporter: NaiveExporter, objects: list[dict[str, Any]]) -> bytes:
    families = exporter.families(objects)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families))
    return generate_latest(registry)


class _Fixed:
    def __init__(self, families: list[Any]) -> None:
        self._families = families

    def collect(self) -> list[Any]:
        return self._families


def prom_format(extracted: list[tuple[str, str, list[tuple[dict[str, str], float]]]]) -> bytes:
    families = []
    for name, help_text, samples in extracted:
        fam = GaugeMetricFamily(name, help_text)
        for labels, value in samples:
            fam.add_metric([], value)
            fam.samples[-1] = fam.samples[-1]._replace(labels=labels)
        families.append(fam)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families))
    return generate_latest(registry)


# --- harness ---------------------------------------------------------------------


def workload(name: str, count: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    config_file, object_dir = WORKLOADS[name]
    config = read_documents(str(EXAMPLES / config_file))[0].body
    program = compile_config(config).program
    assert program is not None
    bases = [d.body for f in sorted((EXAMPLES / object_dir).glob("*.yaml")) for d in read_documents(str(f))]
    bases = [b for b in bases if program.matches(b)]
    objects = []
    for i in range(count):
        obj = copy.deepcopy(bases[i % len(bases)])
        obj["metadata"]["name"] = f"{obj['metadata'].get('name', 'x')}-{i}"
        obj["metadata"].setdefault("namespace", "default")
        objects.append(obj)
    return config, objects


def series_set(data: bytes) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for f in text_string_to_metric_families(data.decode())
        for s in f.samples
    }


def best_of(repeats: int, fn: Callable[[], bytes]) -> tuple[float, bytes]:
    best, out = float("inf"), b""
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def run(name: str, count: int, repeats: int) -> None:
    config, objects = workload(name, count)
    compiled = compile_config(config)
    assert compiled.program is not None
    resolution = resolve_families([compiled.program])
    ours_t, ours = best_of(repeats, lambda: render_exposition(resolution, objects).to_bytes())
    exporter = NaiveExporter(config)
    naive_t, naive = best_of(max(1, repeats // 2), lambda: naive_exposition(exporter, objects))
    ours_set = series_set(ours)
    if series_set(naive) != ours_set:
        print(f"  warning: naive exporter's series differ ({len(series_set(naive) ^ ours_set)} differences)")
    by_family: dict[str, list[tuple[dict[str, str], float]]] = {}
    helps: dict[str, str] = {}
    for f in text_string_to_metric_families(ours.decode()):
        helps[f.name] = f.documentation
        by_family[f.name] = [(dict(s.labels), s.value) for s in f.samples]
    extracted = [(n, helps[n], samples) for n, samples in by_family.items()]
    fmt_t, _ = best_of(repeats, lambda: prom_format(extracted))
    series = len(ours_set)
    per_object = f"{series / count:.1f} per object"
    print(f"{name}: {count} objects, {series} series ({per_object}), {len(ours) / 1e6:.1f} MB")
    for label, t in (("panopticon", ours_t), ("naive", naive_t), ("prom-format", fmt_t)):
        ratio = "" if label == "panopticon" else f"   panopticon is {t / ours_t:.1f}x faster"
        print(f"  {label:12s} {count / t:10,.0f} objects/s  {t / count * 1e6:7.1f} us/object{ratio}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--core", type=int, default=1, help="CPU to pin to (-1: no pinning)")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), action="append")
    args = parser.parse_args()
    if args.core >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    print(f"python {sys.version.split()[0]}, pinned to core {args.core}")
    for name in args.workload or sorted(WORKLOADS):
        run(name, args.objects, args.repeats)
    command = f"benchmarks/render_bench.py --objects {args.objects} --repeats {args.repeats}"
    print(f"reproduce: .venv/bin/python {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
