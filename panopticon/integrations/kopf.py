"""Panopticon in a kopf operator: the exporter starts and stops with the operator.

    import kopf, prometheus_client
    from panopticon.embed import Exporter
    from panopticon.integrations import kopf as panopticon_kopf

    exporter = Exporter(configs=["metrics.yaml"], registry=prometheus_client.REGISTRY)
    panopticon_kopf.register(exporter)   # port 9090, or $PANOPTICON_PORT

`register` adds three activities to kopf's registry: a startup handler that starts
the exporter on kopf's event loop and serves `/metrics` (kopf has no HTTP route of
its own to add to, so the exporter listens on its own port), a cleanup handler that
stops it, and a probe that puts the exporter's readiness into kopf's liveness
endpoint (`kopf run --liveness=http://0.0.0.0:8080/healthz`). The same by hand:

    @kopf.on.startup()
    async def start_metrics(**_):
        await panopticon_kopf.startup(exporter)

    @kopf.on.cleanup()
    async def stop_metrics(**_):
        await exporter.stop()

kopf is an optional dependency (`pip install panopticon[kopf]`); this is the only
module of Panopticon that imports it (an import-linter contract says so).
"""

from __future__ import annotations

import os
from typing import Any

import kopf

from panopticon.embed import Exporter, ExporterError

__all__ = ["DEFAULT_PORT", "PORT_VARIABLE", "cleanup", "metrics_port", "register", "startup"]

DEFAULT_PORT = 9090
PORT_VARIABLE = "PANOPTICON_PORT"
HANDLER_ID = "panopticon"


def metrics_port(default: int = DEFAULT_PORT) -> int:
    """The port `/metrics` is served on: `$PANOPTICON_PORT`, else `default`."""
    raw = os.environ.get(PORT_VARIABLE, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > 65535:
        raise ExporterError(f"{PORT_VARIABLE}={raw!r}: not a port number (0-65535)")
    return int(raw)


async def startup(exporter: Exporter, *, port: int | None = None, host: str = "0.0.0.0") -> int:
    """Start `exporter` and serve `/metrics` on `port` (default: `metrics_port()`);
    returns the bound port. A problem kopf cannot retry away (no credentials, the
    port taken, a bad `$PANOPTICON_PORT`) stops the operator with one line."""
    try:
        await exporter.start()
        return await exporter.serve(port=metrics_port() if port is None else port, host=host)
    except ExporterError as e:
        await exporter.stop()
        raise kopf.PermanentError(str(e)) from e


async def cleanup(exporter: Exporter) -> None:
    await exporter.stop()


def register(
    exporter: Exporter,
    *,
    port: int | None = None,
    host: str = "0.0.0.0",
    registry: kopf.OperatorRegistry | None = None,
) -> None:
    """Start, stop and probe `exporter` with the operator (kopf's default registry,
    or `registry`)."""

    @kopf.on.startup(id=HANDLER_ID, registry=registry)
    async def _start(**_: Any) -> None:
        await startup(exporter, port=port, host=host)

    @kopf.on.cleanup(id=HANDLER_ID, registry=registry)
    async def _stop(**_: Any) -> None:
        await cleanup(exporter)

    @kopf.on.probe(id=HANDLER_ID, registry=registry)
    def _probe(**_: Any) -> dict[str, Any]:
        return {"ready": exporter.ready}
