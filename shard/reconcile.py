"""The shard's config reconcile loops: MetricsConfigurations and CRDs watched, targets made to match.

Split out of `shard/worker.py` (issue 15): one long-running loop per module; the
worker keeps `run()`; the shared state is `shard.state.WorkerState` (mixin).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from panopticon.errors import PanopticonError, StoreError
from panopticon.kube.discovery import ResourceRef, split_api_version
from shard.configs import ConfigState
from shard.state import WorkerState
from shard.targets import Target

log = logging.getLogger("panopticon.shard")


CONFIG_RESOURCE = ResourceRef(
    group="metrics.appscode.com",
    version="v1alpha1",
    resource="metricsconfigurations",
    kind="MetricsConfiguration",
    namespaced=False,
)
CRD_RESOURCE = ResourceRef(
    group="apiextensions.k8s.io",
    version="v1",
    resource="customresourcedefinitions",
    kind="CustomResourceDefinition",
    namespaced=False,
)


class ConfigReconcile(WorkerState):
    """Watch configs and CRDs; start, re-render and stop targets; publish the family registry."""

    async def _configs_loop(self) -> None:
        source = self.make_source(CONFIG_RESOURCE, None, None)
        async for event in source.events():
            self.health.tick()
            if event.type == "SYNCED":
                self.configs_synced.set()
            elif event.type == "DELETED":
                name = _name_of(event.obj)
                if name:
                    self.configs.delete(name)
                    await self.last_valid.forget(name)
                    for stage in ("compile", "render"):
                        with contextlib.suppress(KeyError):
                            self.metrics.config_faults.remove(name, stage)
                    if self.status is not None:
                        # A config created again under this name is a new object, with
                        # no status yet; and names come and go: nothing kept per name.
                        self.status.forget(name)
            elif event.obj is not None:
                state = self.configs.upsert(event.obj)
                if state is not None and state.valid:
                    await self.last_valid.save(state)
                elif state is not None:
                    await self.last_valid.restore(state)
                    self._invalid(state)
            if self.configs_synced.is_set():
                await self.reconcile()

    def _invalid(self, state: ConfigState) -> None:
        """Report a config whose latest generation is invalid (a fault is counted too),
        once per version (every status write comes back as an event)."""
        if state.reported:
            return
        state.reported = True
        if state.compiled.fault is not None:
            self.metrics.config_faults.labels(state.name, "compile").inc()
        served = (
            f"; serving generation {state.last_good_generation}, the last valid one"
            if state.last_good is not None
            else ""
        )
        errors = "; ".join(map(str, state.compiled.errors))
        log.warning("config %s is invalid: %s%s", state.name, errors, served)

    async def _crds_loop(self) -> None:
        source = self.make_source(CRD_RESOURCE, None, None)
        synced = False
        async for event in source.events():
            self.health.tick()
            if event.type in ("ADDED", "MODIFIED") and event.obj is not None:
                self.configs.schemas.add_crd(event.obj)
            if event.type == "SYNCED":
                synced = True
            elif not synced:
                continue  # the initial list: act once, at its end
            refreshed = False
            with contextlib.suppress(PanopticonError):
                await self.discovery.refresh()
                refreshed = True
            changed = self.configs.recompile()
            if changed:
                log.info("configs revalidated against new CRD schemas: %s", ", ".join(changed))
            if self.configs_synced.is_set():
                await self.reconcile(drop_unserved=refreshed)

    async def reconcile(self, *, drop_unserved: bool = False) -> None:
        """Make the targets match the configs (start, re-render, stop) and publish families.

        With `drop_unserved` (discovery was just refreshed), targets of kinds the API
        server no longer serves (their CRD was deleted) are stopped and their series
        deleted: their reflectors would only get 404s, with a backoff that would
        delay the kind's return by up to a minute. The configs report
        `TargetNotFound`, and the kind is picked up as soon as it is served again."""
        if not self.ring_ready.is_set():
            return
        async with self._lock:
            self.reconciled = False
            self._aggregate_families()
            await self._publish_registry()
            if drop_unserved:
                self._drop_unserved()
            desired = self.configs.programs_by_target()
            shard_filter = self._filter()
            self.related.configure(p for programs in desired.values() for p in programs)
            for key, programs in desired.items():
                target = self.targets.get(key)
                if target is None:
                    was_failing = key in self.kinds.failed
                    resource = await self.kinds.resolve(key)
                    if resource is None:
                        continue
                    if was_failing:
                        # Its series were kept while it was unresolved: collect what
                        # changed meanwhile once it has synced.
                        self.pending_gc |= self.ownership.owned
                    target = Target(
                        key,
                        resource,
                        programs,
                        queue=self.queue,
                        metrics=self.metrics,
                        make_source=self.make_source,
                        owns=self._owns,
                        relieve=self.relieve,
                        errors=self.configs.errors,
                        max_series=self.settings.max_series_per_config,
                        related=self.related,
                        make_scoped=self.make_scoped,
                        make_selected=self.make_selected,
                    )
                    self.targets[key] = target
                    target.start(shard_filter)
                elif target.programs != tuple(programs):
                    target.set_programs(programs, shard_filter)
            for key in [k for k in self.targets if k not in desired]:
                log.info("target %s is no longer configured: deleting its series", key)
                self.targets.pop(key).remove_all()
            self.kinds.retain(desired)
            self._config_metrics()
            self.reconciled = True
            self._status_due.set()

    def _aggregate_families(self) -> None:
        """Tell the write queue which families are stored per bucket (before any target
        renders with the new programs). When that changes, every owned bucket is
        collected again after the re-sync: a family's fields from its other layout
        (per object, per bucket) are garbage, and its partials are held back until then.
        Every object is written again at its next render, even if its text is the same:
        a family that changed layout has nothing stored in the new one yet."""
        functions = {
            family: entry.aggregate
            for family, entry in self.configs.registry().items()
            if entry.aggregate is not None
        }
        if self.queue.partials.set_functions(functions):
            self.pending_gc |= self.ownership.owned
            for target in self.targets.values():
                target.table.invalidate()

    def _drop_unserved(self) -> None:
        for key in list(self.targets):
            group, version = split_api_version(key.api_version)
            if self.discovery.lookup(group, version, key.kind) is None:
                log.warning("target %s is no longer served by the API server: its series are deleted", key)
                self.targets.pop(key).remove_all()
                self.kinds.mark_not_served(key)

    async def _publish_registry(self) -> None:
        entries = self.configs.registry()
        gone = self.published - set(entries)
        try:
            if not self._registry_read:
                # A config deleted while no shard ran left its families registered:
                # nobody else would remove them (each shard removes what it published).
                stale = set(await self.store.registry()) - set(entries)
                if stale:
                    log.info("families no config defines any more: %s", ", ".join(sorted(stale)))
                gone |= stale
            await self.store.set_registry(entries, sorted(gone))
        except StoreError as e:
            self.metrics.store_errors.inc()
            log.warning("publishing the family registry failed (will retry): %s", e)
            self._registry_dirty = True
            return
        self._registry_read = True
        self._registry_dirty = False
        self.published = set(entries)

    def _config_metrics(self) -> None:
        invalid = sum(1 for _ in self.configs.invalid())
        self.metrics.configs.labels("valid").set(len(self.configs.configs) - invalid)
        self.metrics.configs.labels("invalid").set(invalid)
        self.metrics.unresolved_kinds.labels("not_served").set(len(self.kinds.not_served))
        self.metrics.unresolved_kinds.labels("discovery_failed").set(len(self.kinds.failed))


def _name_of(obj: dict[str, Any] | None) -> str:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""
