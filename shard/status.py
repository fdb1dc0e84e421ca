"""Writing a MetricsConfiguration's `status` (conditions, observed generation).

Exactly one shard answers for each config: the owner of the bucket of the config's
uid, so all shards agree without talking. A status is patched only when it changed.
If the installed CRD has no status subresource (AppsCode's own CRD has none), the
first 404 turns status writes off, once, with a log line saying why.
"""

from __future__ import annotations

import logging
from typing import Any

from panopticon.kube.client import KubeClient
from panopticon.kube.errors import KubeError, NotFoundError

log = logging.getLogger("panopticon.shard")

CONFIGS_PATH = "/apis/metrics.appscode.com/v1alpha1/metricsconfigurations"


class StatusWriter:
    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.enabled = True
        self._written: dict[str, dict[str, Any]] = {}

    async def write(self, name: str, status: dict[str, Any]) -> bool:
        """Patch `name`'s status if it changed; True when a patch was sent."""
        if not self.enabled or self._written.get(name) == status:
            return False
        try:
            await self.client.patch_status(f"{CONFIGS_PATH}/{name}", {"status": status})
        except NotFoundError as e:
            if "status" in str(e).lower() or name in self._written:
                log.warning(
                    "cannot write MetricsConfiguration status (%s): is the CRD's status subresource missing?",
                    e,
                )
                self.enabled = False
            return False
        except KubeError as e:
            log.warning("status of MetricsConfiguration %s not written: %s", name, e)
            return False
        self._written[name] = status
        return True

    def forget(self, name: str) -> None:
        self._written.pop(name, None)
