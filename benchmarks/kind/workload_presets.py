"""Workload presets (`workloads/*.yaml`) and the objects they stand for.

A preset names `panopticon sim` workload flags (seed, counts) and a churn rate. The
objects come from the simulator's own code path: the flags are parsed by the
`panopticon sim` parser and the objects produced by `kubesim.command.populate`,
the function that fills the simulator, so one preset is one set of objects on both
sides. Only what a real API server needs changes on the way to kind (`apply_item`).
Presets load without the simulator; its modules are imported when objects are made.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml
from kind_cluster import HERE, SIM_UID

if TYPE_CHECKING:
    from kubesim.resources import Registry, ResourceType
    from kubesim.simulator import Simulator

WORKLOAD_KEYS = (
    "seed",
    "scale",
    "with_configs",
    "namespaces",
    "deployments",
    "pods_per_deployment",
    "services",
    "configmaps",
    "secrets",
    "mongodbs",
    "nodes",
    "bench_mongodbs",
)
"""The `panopticon sim` workload flags a preset may set (`pods_per_deployment` is
`--pods-per-deployment`); anything else in a preset is an error."""
SERVER_FIELDS = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
)
"""Metadata a real API server sets itself (apply refuses managedFields, ignores the rest)."""


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    workload: dict[str, Any]
    churn_rate: float = 0.0
    """Events per second during the churn phase (churn.py; `panopticon sim --churn`)."""
    churn_seconds: float = 0.0
    churn_resources: tuple[str, ...] = ()
    """Plurals (or plural.group) to churn; empty: all but namespaces and CRDs, as the simulator."""

    def sim_flags(self, *, sharding: bool = False, churn: bool = False) -> list[str]:
        """The `panopticon sim` flags that load this preset (in WORKLOAD_KEYS order)."""
        flags: list[str] = []
        for key in WORKLOAD_KEYS:
            if key not in self.workload:
                continue
            value, flag = self.workload[key], "--" + key.replace("_", "-")
            if isinstance(value, bool):
                flags += [flag] if value else []
            else:
                flags += [flag, str(value)]
        if sharding:
            flags.append("--sharding")
        if churn and self.churn_rate > 0:
            flags += ["--churn", f"{self.churn_rate:g}"]
            if self.churn_resources:
                flags += ["--churn-resources", ",".join(self.churn_resources)]
        return flags

    def sim_command(self, *, sharding: bool = False, churn: bool = False) -> str:
        return shlex.join(["panopticon", "sim", *self.sim_flags(sharding=sharding, churn=churn)])

    @property
    def seed(self) -> int:
        return int(self.workload.get("seed", 0))


def load_preset(name_or_path: str) -> Preset:
    """`small`, `medium`, `large` (files in workloads/) or a path to a preset file."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = HERE / "workloads" / f"{name_or_path}.yaml"
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise SystemExit(f"preset {name_or_path}: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("workload"), dict):
        raise SystemExit(f"preset {path}: needs a `workload:` mapping of `panopticon sim` workload flags")
    unknown = sorted(set(doc["workload"]) - set(WORKLOAD_KEYS))
    if unknown:
        raise SystemExit(f"preset {path}: unknown workload keys {unknown}; allowed: {list(WORKLOAD_KEYS)}")
    extra = sorted(set(doc) - {"workload", "churn"})
    if extra:
        raise SystemExit(f"preset {path}: unknown top-level keys {extra}")
    churn = doc.get("churn") or {}
    return Preset(
        name=path.stem,
        workload=dict(doc["workload"]),
        churn_rate=float(churn.get("rate", 0)),
        churn_seconds=float(churn.get("seconds", 0)),
        churn_resources=tuple(churn.get("resources") or ()),
    )


class _Recorder:
    """Stands in for the `Simulator` that `populate` fills: keeps what it is given, in
    order, without running generators (so a large workload streams)."""

    def __init__(self) -> None:
        self.sources: list[Iterable[dict[str, Any]]] = []

    def load(self, objs: Iterable[dict[str, Any]]) -> int:
        self.sources.append(objs)
        return 0  # populate only reports the counts


def sim_arguments(flags: list[str]) -> argparse.Namespace:
    """`flags` parsed by the `panopticon sim` parser itself (so a bad preset fails as the CLI would)."""
    from kubesim.command import add_arguments

    parser = argparse.ArgumentParser(prog="panopticon sim")
    add_arguments(parser)
    return parser.parse_args(flags)


def workload_objects(preset: Preset) -> Iterator[dict[str, Any]]:
    """What `panopticon sim <preset flags>` loads, in the order it loads it (CRDs aside:
    the simulator installs `builtin_crds()` before loading)."""
    from kubesim.command import populate

    recorder = _Recorder()
    populate(cast("Simulator", recorder), sim_arguments(preset.sim_flags()))
    return itertools.chain.from_iterable(recorder.sources)


@dataclass(frozen=True, slots=True)
class ApplyItem:
    """One object to apply: the body (no server-set metadata) and, for types with a
    status subresource, the status to apply there afterwards."""

    rtype: ResourceType
    body: dict[str, Any]
    status: dict[str, Any] | None = None

    @property
    def api_version(self) -> str:
        return str(self.body["apiVersion"])

    @property
    def namespace(self) -> str:
        return str(self.body["metadata"].get("namespace", ""))

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def is_crd(self) -> bool:
        return (self.rtype.group, self.rtype.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition")

    @property
    def is_namespace(self) -> bool:
        return (self.rtype.group, self.rtype.kind) == ("", "Namespace")

    def manifest(self) -> dict[str, Any]:
        """The whole object as applied (status included, as the status request sets it)."""
        return {**self.body, "status": self.status} if self.status is not None else self.body


def apply_item(obj: dict[str, Any], reg: Registry, *, default_namespace: str) -> ApplyItem:
    """`obj` as a real API server accepts it through server-side apply.

    Server-set metadata goes; the simulator's uid moves to the SIM_UID annotation; a
    namespaced object without a namespace gets the simulator's default one; status
    is split off for types that serve it as a subresource (the main resource ignores it).
    """
    from kubesim.workload import clone

    rtype = reg.for_kind(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    if rtype is None:
        raise SystemExit(f"no resource type for {obj.get('apiVersion')} {obj.get('kind')}")
    body = clone(obj)
    meta = body.setdefault("metadata", {})
    uid = meta.get("uid")
    for key in SERVER_FIELDS:
        meta.pop(key, None)
    if uid:
        meta["annotations"] = {**(meta.get("annotations") or {}), SIM_UID: uid}
    if rtype.namespaced:
        meta["namespace"] = meta.get("namespace") or default_namespace
    else:
        meta.pop("namespace", None)
    status = body.pop("status", None) if "status" in rtype.subresources else None
    return ApplyItem(rtype, body, status if isinstance(status, dict) and status else None)


def apply_items(objects: Iterable[dict[str, Any]], reg: Registry) -> Iterator[ApplyItem]:
    """`objects` in an order a real API server accepts: the simulator's CRDs first, and
    before the first object of a namespace nothing creates, that namespace (the
    simulator makes those on the fly; kind needs them first). Streams."""
    from kubesim.config import SimConfig
    from kubesim.crds import builtin_crds
    from kubesim.resources import NAMESPACE_TYPE

    cfg = SimConfig()
    for crd in builtin_crds():
        yield apply_item(crd, reg, default_namespace="")
    known = set(cfg.initial_namespaces)
    for obj in objects:
        item = apply_item(obj, reg, default_namespace=cfg.default_namespace)
        if item.is_namespace:
            known.add(item.name)
        elif item.rtype.namespaced and item.namespace not in known:
            known.add(item.namespace)
            yield ApplyItem(
                NAMESPACE_TYPE,
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": item.namespace}},
            )
        yield item


def write_manifests(items: Iterable[ApplyItem], out: Any, *, fmt: str = "yaml") -> collections.Counter[str]:
    """`items` in order to the text stream `out`, as multi-document YAML or as JSON
    Lines (one object per line; kubectl reads both); returns how many of each kind."""
    counts: collections.Counter[str] = collections.Counter()

    def manifests() -> Iterator[dict[str, Any]]:
        for item in items:
            counts[item.rtype.kind] += 1
            yield item.manifest()

    if fmt == "json":
        import orjson

        for manifest in manifests():
            out.write(orjson.dumps(manifest).decode() + "\n")
    else:
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when present: 20x faster
        yaml.dump_all(manifests(), out, Dumper=dumper, sort_keys=False, width=1_000_000)
    return counts
