"""Writing a MetricsConfiguration's `status` (conditions, observed generation).

Exactly one shard answers for each config: the owner of the bucket of the config's
uid, so all shards agree without talking. A status is patched only when it changed;
a condition keeps its `lastTransitionTime` until its `status` flips. If the installed
CRD has no status subresource (AppsCode's own CRD has none), the first 404 that is
not about the config itself turns status writes off, once, with a log line saying why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from panopticon.kube.client import KubeClient
from panopticon.kube.errors import KubeError, NotFoundError

log = logging.getLogger("panopticon.shard")

CONFIGS_PATH = "/apis/metrics.appscode.com/v1alpha1/metricsconfigurations"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class StatusWriter:
    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.enabled = True
        self._written: dict[str, dict[str, Any]] = {}
        """What was last written per config, as given (without transition times)."""
        self._since: dict[str, dict[str, str]] = {}
        """Per config: condition type -> its lastTransitionTime as written."""

    async def write(self, name: str, status: dict[str, Any]) -> bool:
        """Patch `name`'s status if it changed; True when a patch was sent."""
        if not self.enabled or self._written.get(name) == status:
            return False
        body, since = self._stamped(name, status)
        try:
            await self.client.patch_status(f"{CONFIGS_PATH}/{name}", {"status": body})
        except NotFoundError as e:
            if not _about(e, name):
                # The object exists (we watch it) but its /status does not: the CRD
                # has no status subresource.
                log.warning(
                    "cannot write MetricsConfiguration status (%s): is the CRD's status subresource "
                    "missing? Status writes are off until restart (or run with --no-status)",
                    e,
                )
                self.enabled = False
            return False
        except KubeError as e:
            log.warning("status of MetricsConfiguration %s not written: %s", name, e)
            return False
        self._written[name] = status
        self._since[name] = since
        return True

    def _stamped(self, name: str, status: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """`status` with each condition's lastTransitionTime: kept from the last write
        while the condition's status is unchanged, now when it flipped or is new."""
        before = {c.get("type"): c.get("status") for c in self._written.get(name, {}).get("conditions", [])}
        times = self._since.get(name, {})
        now = _now()
        since: dict[str, str] = {}
        conditions = []
        for condition in status.get("conditions", []):
            kind = condition.get("type")
            kept = times.get(kind) if before.get(kind) == condition.get("status") else None
            since[kind] = kept or now
            conditions.append({**condition, "lastTransitionTime": since[kind]})
        return {**status, "conditions": conditions}, since

    def forget(self, name: str) -> None:
        self._written.pop(name, None)
        self._since.pop(name, None)


def _about(error: NotFoundError, name: str) -> bool:
    """Whether a 404 says the object `name` itself is gone (deleted meanwhile); a
    missing subresource's 404 names nothing."""
    details = error.status.get("details")
    return isinstance(details, Mapping) and details.get("name") == name
