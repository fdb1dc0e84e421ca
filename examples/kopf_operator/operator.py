"""A small kopf operator with Panopticon embedded: one /metrics for its Memcacheds and itself.

    kubectl apply -f examples/kopf_operator/manifests/
    kopf run --standalone examples/kopf_operator/operator.py      # with KUBECONFIG set
    curl -s localhost:9090/metrics                                # or $PANOPTICON_PORT

The handler "reconciles" a Memcached by reporting its replicas ready in the status
and counts what it did with its own prometheus_client counter. Panopticon renders
each Memcached through `metrics.yaml` (and the code-defined generator below) on
every change, so the status the handler writes shows in `/metrics` at once, beside
the counter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kopf
import prometheus_client

from panopticon.embed import Exporter, Generator, Sample
from panopticon.integrations import kopf as panopticon_kopf

HERE = Path(__file__).resolve().parent

RECONCILES = prometheus_client.Counter(
    "memcached_operator_reconciles", "Memcached reconciliations by outcome.", ["outcome"]
)


def memcached_memory(obj: dict[str, Any]) -> Any:
    """Code-defined metrics (operator-sdk's generators): memory the cluster may use."""
    spec = obj["spec"]
    yield Sample("memcached_memory_limit_bytes", {}, int(spec["size"]) * int(spec["memoryMB"]) * 2**20)


exporter = Exporter(
    configs=[HERE / "metrics.yaml"],
    generators={
        ("cache.example.com/v1", "Memcached"): Generator(
            memcached_memory, help={"memcached_memory_limit_bytes": "Memory all replicas may use."}
        )
    },
    registry=prometheus_client.REGISTRY,
)
panopticon_kopf.register(exporter)  # start with the operator, serve :9090, stop at exit


@kopf.on.create("cache.example.com", "v1", "memcacheds")
@kopf.on.update("cache.example.com", "v1", "memcacheds")
def reconcile(spec: kopf.Spec, patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
    size = spec.get("size")
    if not isinstance(size, int) or size < 0:
        RECONCILES.labels("invalid").inc()
        patch.status["phase"] = "Pending"
        raise kopf.PermanentError(f"spec.size must be a non-negative integer, not {size!r}")
    patch.status["readyReplicas"] = size
    patch.status["phase"] = "Ready"
    RECONCILES.labels("ok").inc()
    logger.info("%d replicas ready", size)
