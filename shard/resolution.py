"""Which configured kinds the API server serves, which it does not, and which nobody can tell yet.

A target kind becomes a resource to list and watch through discovery, which fails in
two ways that call for opposite actions:

- **not served** (`UnknownKindError`: its group version answered and does not list
  it, or its group is not listed at all): the kind does not exist, nor do its
  objects; its series are garbage, its configs say `TargetNotFound`, and a CRD event
  or a later reconcile picks it up once it is served.
- **discovery failed** (`DiscoveryFailedError` or any other API error: its group
  version's document or the group list failed to load, as when an aggregated API
  server is down): the kind may exist with all its objects. Deleting its series would
  empty its families until it came back, so they are *kept*: garbage collection
  skips its families, the shard reports not ready, its configs say
  `TargetDiscoveryFailed`, and discovery is retried with backoff (1 s doubling to
  30 s) until the kind resolves or turns out not served, with no other event needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

from panopticon.config.model import TargetRef
from panopticon.errors import PanopticonError
from panopticon.kube.backoff import Backoff, BackoffSettings
from panopticon.kube.discovery import Discovery, ResourceRef
from panopticon.kube.errors import UnknownKindError
from panopticon.render.program import Program

log = logging.getLogger("panopticon.shard")

RETRY = BackoffSettings(initial=1.0, factor=2.0, cap=30.0, jitter=0.2, reset_after=120.0)
"""Discovery retries of kinds whose discovery failed: 1 s doubling to 30 s (plus up
to a fifth at random, so shards do not retry in step)."""


class KindResolution:
    """The resolution state of every configured kind that has no running target."""

    def __init__(self, discovery: Discovery, *, retry: BackoffSettings = RETRY) -> None:
        self.discovery = discovery
        self.not_served: set[TargetRef] = set()
        self.failed: dict[TargetRef, str] = {}
        """Kinds whose discovery failed -> the error, as the configs' status shows it."""
        self._backoff = Backoff(retry)
        self._failing = asyncio.Event()

    async def resolve(self, key: TargetRef) -> ResourceRef | None:
        """The kind's resource, or None (recorded as not served or as failed)."""
        try:
            resource = await self.discovery.resolve(key.api_version, key.kind)
        except UnknownKindError as e:
            if key not in self.not_served:
                log.warning("target %s not served by the API server (yet): %s", key, e)
            self.failed.pop(key, None)
            self.not_served.add(key)
            self._update()
            return None
        except PanopticonError as e:
            if key not in self.failed:
                log.warning(
                    "target %s: discovery failed (its series are kept; retrying with backoff): %s", key, e
                )
            self.not_served.discard(key)
            self.failed[key] = str(e)
            self._update()
            return None
        if key in self.not_served or key in self.failed:
            log.info("target %s is served now", key)
        self.not_served.discard(key)
        self.failed.pop(key, None)
        self._update()
        return resource

    def mark_not_served(self, key: TargetRef) -> None:
        """A running target's kind left discovery (its CRD was deleted)."""
        self.failed.pop(key, None)
        self.not_served.add(key)
        self._update()

    def retain(self, configured: Iterable[TargetRef]) -> None:
        """Forget kinds no config targets any more."""
        keep = set(configured)
        self.not_served &= keep
        self.failed = {k: v for k, v in self.failed.items() if k in keep}
        self._update()

    def kept_families(self, programs: Mapping[TargetRef, Sequence[Program]]) -> set[str]:
        """Families of kinds whose discovery failed: garbage collection must skip them
        (a family shared with a served kind too: its objects' fields are live)."""
        return {
            header.name
            for key in self.failed
            for program in programs.get(key, ())
            for header in program.families
        }

    def describe_failed(self) -> str:
        return ", ".join(sorted(str(key) for key in self.failed))

    def _update(self) -> None:
        if self.failed:
            self._failing.set()
        else:
            self._failing.clear()
            self._backoff.reset()

    async def retry(self, reconcile: Callable[[], Awaitable[None]]) -> None:
        """While some kind's discovery fails: refresh discovery and reconcile, with backoff."""
        while True:
            await self._failing.wait()
            await asyncio.sleep(self._backoff.next_delay())
            if not self.failed:
                continue
            with contextlib.suppress(PanopticonError):
                await self.discovery.refresh()  # a miss alone refreshes at most every 30 s
            await reconcile()
