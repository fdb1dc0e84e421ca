"""The shard worker's shared state, and the settings it runs with.

Issue 15 split the worker by long-running loop: each loop lives in its own module,
as a mixin of `shard.worker.Worker`, and every mixin sits on this class, which
holds what they share (so each mixin sees the attributes' types). Methods one mixin
calls on another are declared here, implemented there.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from panopticon.config.model import TargetRef
from panopticon.kube.discovery import Discovery
from panopticon.kube.relatedwatch import RelatedWatch
from panopticon.render.related import Dirty
from panopticon.sharding.buckets import ShardFilter
from panopticon.sharding.ring import Ring
from panopticon.store.contract import Store
from shard.configs import ConfigSet
from shard.lastvalid import LastValid
from shard.membership import RingLookup, RingSpec
from shard.resolution import KindResolution
from shard.status import StatusWriter
from shard.targets import ScopedFactory, SelectedFactory, Source, SourceFactory, Target
from shard.telemetry import Health, ShardMetrics
from shard.writer import Ownership, WriteQueue

REWRITE_BACKOFF = 5.0
"""Seconds before a second rewrite after a dropped backlog (doubling up to the max)."""
REWRITE_BACKOFF_MAX = 300.0
REWRITE_BACKOFF_RESET = 600.0
"""Seconds without a rewrite after which the backoff starts again from its minimum."""


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    index: int
    static_ring: RingSpec | None
    """From --shards; None when the ring comes from the StatefulSet (`ring_source`)."""
    flush_interval: float = 0.05
    """Seconds between flushes: the floor of event→store latency, and the batching window."""
    max_backlog: int = 1_000_000
    """Field operations held while the store fails (~300 bytes each). Past this they are
    dropped and, once the store answers, every target relists and rewrites everything
    (garbage collection then removes what the dropped deletes would have)."""
    heartbeat_interval: float = 2.0
    """Seconds between heartbeats and store epoch checks (Redis restart detection)."""
    status_interval: float = 30.0
    """Seconds between status refreshes of the configs this shard answers for."""
    ownership_interval: float = 10.0
    """Seconds between checks that the store still names this shard owner of its buckets:
    buckets another ring took are let go even when nothing is written to them, so that
    a shard fenced out of all of them says so (not ready) within this time."""
    retired_interval: float = 300.0
    """Seconds between sweeps of the retired families (a few EXISTS and HKEYS each)."""
    retired_grace: float = 3600.0
    """Seconds a family stays retired at least. A shard that has not seen the config
    change yet may still write the family after every slot was found empty; it deletes
    those fields itself when it catches up, unless it crashes first, and only then
    would they outlive the entry uncollected. An hour covers any such lag."""
    max_series_per_config: int | None = None
    """`--max-series-per-config`: every config's series cap (`panopticon.render.limits`)."""
    pod: str = ""


class WorkerState:
    """What the worker's loops share; `shard.worker.Worker` is the class to use."""

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        store: Store,
        discovery: Discovery,
        make_source: SourceFactory,
        status: StatusWriter | None,
        metrics: ShardMetrics,
        health: Health,
        ring_source: Source | None = None,
        ring_lookup: RingLookup | None = None,
        make_scoped: ScopedFactory | None = None,
        make_selected: SelectedFactory | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.discovery = discovery
        self.make_source = make_source
        self.make_scoped = make_scoped
        self.make_selected = make_selected
        """Sources with a label selector (`shard.targets.Target.start`); None: filter in the shard."""
        """One-shot LISTs of a scope: joined objects rendered again (shard.joined)."""
        self.related = RelatedWatch(discovery, lambda r: make_source(r, None, None), self._rerender_joined)
        """Namespaces, Nodes and owners that joined labels read (panopticon.kube.relatedwatch)."""
        self.status = status
        self.metrics = metrics
        self.health = health
        self.ring_source = ring_source
        self.ring_lookup = ring_lookup
        """The StatefulSet as the API server has it now (with `ring_source`)."""
        self.configs = ConfigSet()
        self.last_valid = LastValid(store, self.configs)
        self.ownership = Ownership(store, settings.index)
        self.ring_spec: RingSpec | None = None
        """The ring adopted last, as the StatefulSet or the flags describe it."""
        self.queue = WriteQueue(store)
        self.queue.partials.held = lambda: self.pending_gc
        self.targets: dict[TargetRef, Target] = {}
        self.kinds = KindResolution(discovery)
        """Configured kinds without a target: not served, or their discovery failed."""
        self.published: set[str] = set()
        self._registry_read = False
        """Whether the store's registry was read since start-up: families it holds that
        no config defines (deleted while no shard ran) are unregistered then."""
        self.epoch = ""
        self.store_was_empty = False
        self.configs_synced = asyncio.Event()
        self.ring_ready = asyncio.Event()
        self.pending_gc: set[int] = set()
        self._collect_after = 0.0
        """Monotonic time before which a failed garbage collection is not retried."""
        self.reconciled = False
        """True when every configured target exists (or is known to be unserved)."""
        self.synced_once = False
        """The first full sync is done (readiness also needs every kind resolved and
        the ring's buckets owned: `_update_readiness`)."""
        self._was_ready = False
        self._status_due = asyncio.Event()
        """Set after each reconcile: statuses are written then, not a status interval later."""
        self._lock = asyncio.Lock()
        self._flush_lock = asyncio.Lock()
        self._flushing = 0
        self._background_flush: asyncio.Task[None] | None = None
        self._flush_tasks: set[asyncio.Task[None]] = set()
        """Background flushes still running (strong references; awaited at shutdown)."""
        self._registry_dirty = False
        """The last registry publication failed: the heartbeat loop retries it."""
        self._rewrite_due = False
        """The write backlog was dropped: the heartbeat loop rewrites everything once the
        store answers."""
        self._servers: dict[str, str] | None = None
        """Run id of each Redis server at the last heartbeat (None before the first)."""
        self._recovery_due = False
        """The store restarted or forgot acknowledged writes: the heartbeat loop
        rewrites everything (retried at each heartbeat until it succeeds)."""
        self._rewrite_backoff = REWRITE_BACKOFF
        self._rewrite_not_before = 0.0
        self._last_rewrite = -REWRITE_BACKOFF_RESET
        self._limit_gauges: set[str] = set()
        """Configs with a series cap gauge (removed when the config goes)."""

    def _objects(self) -> int:
        return sum(len(t.table) for t in self.targets.values())

    def _owns(self, bucket: int) -> bool:
        return bucket in self.ownership.owned

    def _filter(self) -> ShardFilter:
        return ShardFilter(self.store.layout.space, self.ownership.owned)

    # --- implemented by the mixins (`shard/reconcile.py`, `shard/ownershiploops.py`,
    # `shard/flushing.py`) -------------------------------------------------------------

    async def reconcile(self, *, drop_unserved: bool = False) -> None:
        raise NotImplementedError

    async def _publish_registry(self) -> None:
        raise NotImplementedError

    async def relieve(self) -> None:
        raise NotImplementedError

    async def flush(self) -> None:
        raise NotImplementedError

    @property
    def settled(self) -> bool:
        raise NotImplementedError

    async def _refused(self, buckets: set[int]) -> None:
        raise NotImplementedError

    async def _fenced_ring(self, spec: RingSpec, *, confirm: bool = False) -> tuple[RingSpec, Ring] | None:
        raise NotImplementedError

    def _ring_metrics(self, spec: RingSpec) -> None:
        raise NotImplementedError

    def _restart_targets(self) -> None:
        raise NotImplementedError

    def _limit_snapshot(self) -> tuple[dict[str, list[int]], dict[str, list[list[int]]]]:
        raise NotImplementedError

    async def _exchange_limits(self) -> None:
        raise NotImplementedError

    async def _rerender_joined(self, dirty: set[Dirty]) -> None:
        raise NotImplementedError
