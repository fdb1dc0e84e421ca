"""Seeded workloads: the example corpus and MongoDB-like custom resources sized
like real ones, for benchmarks (README.md, "Workload generation"); native workloads are in `natives.py`.

Everything here is deterministic for a given seed (uids, names, timestamps,
label mix), so a run on the simulator and one on kind can be compared. Objects
carry what makes real ones heavy: managedFields, labels, annotations,
ownerReferences and status.
"""

from __future__ import annotations

import copy
import functools
import random
import re
import uuid
from collections.abc import Iterator
from importlib import resources as importlib_resources
from typing import Any

import orjson

from kubesim.objmeta import fields_v1, rfc3339
from panopticon.config.documents import parse_documents

EPOCH = 1_767_225_600.0
"""2026-01-01T00:00:00Z: generated timestamps count from here, so output is stable."""
ENVS = ("prod", "staging", "dev")
TIERS = ("frontend", "backend", "cache", "batch")
PHASES = (("Ready", 0.8), ("Provisioning", 0.05), ("Critical", 0.05), ("NotReady", 0.05), ("Halted", 0.05))
MONGO_VERSIONS = ("4.4.26", "5.0.26", "6.0.12", "7.0.8", "8.0.17")


def new_uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _examples_root() -> Any:
    return importlib_resources.files("panopticon") / "data" / "examples"


def _yaml_tree(folder: Any, *, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every document under `folder` (sorted by path); a nameless object is named
    after its last-applied configuration, else after its file."""
    out: list[dict[str, Any]] = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name in skip:
            continue
        if entry.is_dir():
            out.extend(_yaml_tree(entry, skip=skip))
        elif entry.name.endswith((".yaml", ".yml", ".json")):
            for doc in parse_documents(entry.read_bytes(), source=entry.name):
                meta = doc.body.setdefault("metadata", {})
                if not meta.get("name"):
                    meta["name"] = _fallback_name(meta, entry.name)
                out.append(doc.body)
    return out


def _fallback_name(meta: dict[str, Any], filename: str) -> str:
    applied = (meta.get("annotations") or {}).get("kubectl.kubernetes.io/last-applied-configuration")
    if applied:
        try:
            name = orjson.loads(applied).get("metadata", {}).get("name")
        except (orjson.JSONDecodeError, AttributeError):
            name = None
        if isinstance(name, str) and name:
            return name
    stem = filename.rsplit(".", 1)[0].lower()
    return re.sub(r"[^a-z0-9-]+", "-", stem).strip("-")[:63]


def example_objects(scale: int = 1, *, seed: int = 0) -> list[dict[str, Any]]:
    """`scale` copies of every object in `data/examples/objects/`.

    Copies get distinct names (`name`, `name-2`, …) and fresh uids; names that
    collide across files are made unique; objects without a uid get one.
    """
    rng = random.Random(f"examples:{seed}")  # noqa: S311 - reproducible workload
    seen_keys: set[tuple[str, str, str, str]] = set()
    seen_uids: set[str] = set()
    out: list[dict[str, Any]] = []
    originals = _yaml_tree(_examples_root() / "objects")
    for copy_index in range(max(0, scale)):
        for original in originals:
            obj = copy.deepcopy(original)
            meta = obj.setdefault("metadata", {})
            for k in ("resourceVersion", "selfLink"):
                meta.pop(k, None)
            base = meta["name"] if copy_index == 0 else f"{meta['name']}-{copy_index + 1}"
            group = str(obj.get("apiVersion", "")).rpartition("/")[0]
            name, n = base, 1
            while (group, obj.get("kind", ""), meta.get("namespace", ""), name) in seen_keys:
                n += 1
                name = f"{base}-x{n}"
            meta["name"] = name
            seen_keys.add((group, obj.get("kind", ""), meta.get("namespace", ""), name))
            if copy_index > 0 or not meta.get("uid") or meta["uid"] in seen_uids:
                meta["uid"] = new_uid(rng)
            seen_uids.add(meta["uid"])
            out.append(obj)
    return out


def example_configs() -> list[dict[str, Any]]:
    """The example MetricsConfigurations (`kubedb/` and `native/`, not `native/invalid/`).

    Two files share a name (the blog's and KubeDB's `kubedb-com-mongodb`, for
    different MongoDB versions); later ones get a `-2`, `-3`… suffix so all load.
    """
    configs = _yaml_tree(_examples_root() / "metricsconfigurations", skip=("invalid",))
    seen: set[str] = set()
    for cfg in configs:
        meta = cfg["metadata"]
        name, n = meta["name"], 1
        while name in seen:
            n += 1
            name = f"{meta['name']}-{n}"
        meta["name"] = name
        seen.add(name)
    return configs


def managed_entry(
    manager: str, api_version: str, body: dict[str, Any], when: str, *, sub: str = ""
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "apiVersion": api_version,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1(body),
        "manager": manager,
        "operation": "Update",
        "time": when,
    }
    if sub:
        entry["subresource"] = sub
    return entry


def clone(value: Any) -> Any:
    """A deep copy of JSON data (an order of magnitude faster than copy.deepcopy)."""
    return orjson.loads(orjson.dumps(value))


@functools.lru_cache(maxsize=1)
def _mongodb_templates() -> list[dict[str, Any]]:
    docs = _yaml_tree(_examples_root() / "objects" / "mongodb")
    return [d for d in docs if d.get("apiVersion") == "kubedb.com/v1"]


def mongodb_objects(
    count: int, *, seed: int = 0, namespaces: tuple[str, ...] = ("demo",)
) -> Iterator[dict[str, Any]]:
    """`count` MongoDB objects varied from the example ones (for shard benchmarks).

    Names are `mongodb-NNNNNN` spread over `namespaces`; phase, replicas, version,
    storage type, resources and labels vary with the seed.
    """
    if count <= 0:
        return
    rng = random.Random(f"mongodbs:{seed}")  # noqa: S311 - reproducible workload
    templates = _mongodb_templates()
    phases = [p for p, _ in PHASES]
    weights = [w for _, w in PHASES]
    # fieldsV1 depends on the keys only, and the keys are the template's: compute each
    # once (the managedFields dicts are shared, read-only, until the objects are stored).
    spec_fields: dict[tuple[int, bool], dict[str, Any]] = {}
    status_fields: dict[str, Any] | None = None
    for i in range(count):
        index = i % len(templates)
        obj = clone(templates[index])
        meta = obj["metadata"]
        ns = namespaces[i % len(namespaces)]
        name = f"mongodb-{i:06d}"
        t = EPOCH + i
        meta.clear()
        meta.update(
            name=name,
            namespace=ns,
            uid=new_uid(rng),
            generation=1 + rng.randrange(3),
            creationTimestamp=rfc3339(t),
            labels={
                "app.kubernetes.io/name": "mongodbs.kubedb.com",
                "app.kubernetes.io/instance": name,
                "env": rng.choice(ENVS),
                "team": f"team-{rng.randrange(20):02d}",
            },
            finalizers=["kubedb.com"],
        )
        spec = obj.setdefault("spec", {})
        spec["version"] = rng.choice(MONGO_VERSIONS)
        spec["storageType"] = rng.choice(("Durable", "Durable", "Ephemeral"))
        if "replicaSet" in spec or "replicas" in spec:
            spec["replicas"] = rng.choice((1, 3, 3, 5))
        phase = rng.choices(phases, weights=weights)[0]
        when = rfc3339(t + 120)
        obj["status"] = {
            "phase": phase,
            "observedGeneration": meta["generation"],
            "conditions": [
                {
                    "type": c,
                    "status": "True" if phase == "Ready" or c == "ProvisioningStarted" else "False",
                    "lastTransitionTime": when,
                    "reason": c,
                    "message": f"The MongoDB: {ns}/{name} {c}",
                }
                for c in (
                    "ProvisioningStarted",
                    "ReplicaReady",
                    "AcceptingConnection",
                    "Ready",
                    "Provisioned",
                )
            ],
        }
        shape = (index, "replicas" in spec)
        if shape not in spec_fields:
            spec_fields[shape] = fields_v1({"spec": spec})
        if status_fields is None:
            status_fields = fields_v1({"status": obj["status"]})
        meta["managedFields"] = [
            _entry("kubectl-client-side-apply", spec_fields[shape], rfc3339(t)),
            _entry("mg-operator", status_fields, when, sub="status"),
        ]
        yield obj


def _entry(manager: str, fields: dict[str, Any], when: str, *, sub: str = "") -> dict[str, Any]:
    entry: dict[str, Any] = {
        "apiVersion": "kubedb.com/v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
        "manager": manager,
        "operation": "Update",
        "time": when,
    }
    if sub:
        entry["subresource"] = sub
    return entry
