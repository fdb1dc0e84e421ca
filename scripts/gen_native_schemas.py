#!/usr/bin/env python3
"""Regenerate panopticon/data/native_schemas.json from the `kubernetes` package's models.

The models carry the Kubernetes OpenAPI field names and types of every built-in kind;
this script walks them for the kinds Panopticon checks configs against and writes a
compact schema (shared definitions by type name) so the validator needs neither the
`kubernetes` package nor a cluster. Run it after upgrading `kubernetes`; the test
suite checks that the committed file matches.

    .venv/bin/python scripts/gen_native_schemas.py [--check]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import kubernetes.client as models

OUT = Path(__file__).resolve().parent.parent / "panopticon" / "data" / "native_schemas.json"

KINDS = {
    "v1/Pod": "V1Pod",
    "v1/Service": "V1Service",
    "v1/Node": "V1Node",
    "v1/Namespace": "V1Namespace",
    "v1/ConfigMap": "V1ConfigMap",
    "v1/Secret": "V1Secret",
    "v1/ServiceAccount": "V1ServiceAccount",
    "v1/PersistentVolume": "V1PersistentVolume",
    "v1/PersistentVolumeClaim": "V1PersistentVolumeClaim",
    "v1/ReplicationController": "V1ReplicationController",
    "v1/ResourceQuota": "V1ResourceQuota",
    "v1/LimitRange": "V1LimitRange",
    "v1/Endpoints": "V1Endpoints",
    "apps/v1/Deployment": "V1Deployment",
    "apps/v1/StatefulSet": "V1StatefulSet",
    "apps/v1/DaemonSet": "V1DaemonSet",
    "apps/v1/ReplicaSet": "V1ReplicaSet",
    "batch/v1/Job": "V1Job",
    "batch/v1/CronJob": "V1CronJob",
    "networking.k8s.io/v1/Ingress": "V1Ingress",
    "networking.k8s.io/v1/NetworkPolicy": "V1NetworkPolicy",
    "policy/v1/PodDisruptionBudget": "V1PodDisruptionBudget",
    "autoscaling/v2/HorizontalPodAutoscaler": "V2HorizontalPodAutoscaler",
    "storage.k8s.io/v1/StorageClass": "V1StorageClass",
    "coordination.k8s.io/v1/Lease": "V1Lease",
    "apiextensions.k8s.io/v1/CustomResourceDefinition": "V1CustomResourceDefinition",
}

SCALARS = {"str", "int", "float", "bool", "datetime", "date", "bytearray"}


def convert(type_name: str, defs: dict[str, Any]) -> Any:
    """A type string of the models as a schema node (see panopticon/render/schema.py)."""
    type_name = type_name.strip()
    m = re.fullmatch(r"(?:List|list)\[(.+)\]", type_name)
    if m:
        return {"a": convert(m.group(1), defs)}
    m = re.fullmatch(r"(?:Dict|dict)[\[(]\s*str\s*,\s*(.+)[\])]", type_name)
    if m:
        return {"m": convert(m.group(1), defs)}
    if type_name in SCALARS:
        return "s"
    if type_name == "object":
        return "*"  # IntOrString, RawExtension, JSON: anything may sit below
    model = getattr(models, type_name, None)
    if model is None or not hasattr(model, "openapi_types"):
        return "*"
    if type_name not in defs:
        defs[type_name] = None  # placeholder against recursion (JSONSchemaProps)
        defs[type_name] = {
            "p": {
                model.attribute_map[attr]: convert(t, defs) for attr, t in sorted(model.openapi_types.items())
            }
        }
    return "#" + type_name


def generate() -> str:
    defs: dict[str, Any] = {}
    kinds = {key: convert(model, defs) for key, model in KINDS.items()}
    doc = {
        "source": "kubernetes python client " + getattr(sys.modules["kubernetes"], "__version__", "?"),
        "kinds": kinds,
        "defs": dict(sorted(defs.items())),
    }
    return json.dumps(doc, sort_keys=False, separators=(",", ":")) + "\n"


def main() -> int:
    text = generate()
    if "--check" in sys.argv:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date: run scripts/gen_native_schemas.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
