"""One watched kind of the library: its reflectors, its renders, its lines.

A kind is watched once per namespace asked for (or once cluster-wide): each
reflector keeps its own uid -> resourceVersion view, so a relist of one namespace
reports as deleted only what vanished from that namespace. Every event is rendered
at once, through the kind's compiled MetricsConfigurations and its generator, and
its lines replace the object's previous ones in the store (`FamilyLines`): no
flush, no batching, the next scrape sees it.

A kind the API server does not serve (a CRD not installed yet) is looked up again
every `RESOLVE_RETRY` seconds; until then it counts as settled for readiness, as
the shard counts a `TargetNotFound` kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from panopticon._embed.generators import BoundGenerator, Generator
from panopticon._embed.limits import KindCaps
from panopticon._embed.lines import FamilyLines
from panopticon._embed.telemetry import EmbedMetrics, RateLimitedLog
from panopticon.kube.client import KubeClient
from panopticon.kube.discovery import Discovery, ResourceRef
from panopticon.kube.errors import KubeError, UnknownKindError
from panopticon.kube.events import Event, compact_rv
from panopticon.kube.reflector import Reflector
from panopticon.kube.serverselector import server_selector
from panopticon.kube.view import View
from panopticon.render.exposition import encode
from panopticon.render.joins import Related
from panopticon.render.offline import object_ref
from panopticon.render.program import Program, RenderError

log = logging.getLogger("panopticon.embed")

RESOLVE_RETRY = 10.0
"""Seconds between two lookups of a kind the API server does not serve (yet)."""
YIELD_AFTER = 0.0005
"""Seconds of handling events back to back (a relist, a burst of changes) before
giving the loop to the operator's own tasks. The clock is read after every event:
one render costs 0.1-0.7 ms, a clock read 0.05 µs. A task waiting on a timer can
wait two such turns (the loop runs what is ready before it looks at its timers
again), so 0.5 ms here keeps its wait near 1-3 ms; 2 ms made it 4-8 ms during a
sync of 100,000 objects (docs/library.md, the event loop)."""


class WatchedKind:
    """The programs and generator of one (apiVersion, kind), and its reflectors."""

    def __init__(
        self,
        api_version: str,
        kind: str,
        *,
        programs: Sequence[Program],
        generator: Generator | None,
        lines: FamilyLines,
        metrics: EmbedMetrics,
        warnings: RateLimitedLog,
        namespaces: Sequence[str],
        settled: Callable[[], None],
        max_series: int | None = None,
    ) -> None:
        self.api_version = api_version
        self.kind = kind
        self.label = f"{api_version}/{kind}"
        self.programs = tuple(programs)
        self.generator = generator
        self.lines = lines
        self.metrics = metrics
        self.warnings = warnings
        self.namespaces = tuple(namespaces) or ("",)
        self.store = lines.kind()
        self.caps = KindCaps(self.programs, max_series)
        """Capped configs of this kind: a scrape leaves out what is past a cap."""
        if self.caps:
            self.store.left_out = self.caps.left_out
        self.label_selector = server_selector(self.programs) if generator is None else ""
        """For the API server, when every config agrees (panopticon.kube.serverselector); a
        generator sees every object, so a kind with one is listed whole."""
        self.related: Related | None = None
        """Where joined labels' related objects are looked up (panopticon.kube.relatedwatch)."""
        for program in self.programs:
            for header in program.families:
                self.store.index(header.name)
        self.resource: ResourceRef | None = None
        self.served: bool | None = None
        """None until looked up; False while the API server does not serve the kind."""
        self.views: list[View] = []
        self._on_settled = settled
        """Called whenever the kind may have become settled (a sync, a failed lookup)."""
        self._bound: BoundGenerator | None = None
        self._synced: set[str] = set()
        self._event_counters = {
            kind: metrics.events.labels(self.label, kind) for kind in ("ADDED", "MODIFIED", "DELETED")
        }
        self._render_errors: dict[tuple[str, str], Any] = {}

    @property
    def settled(self) -> bool:
        """Synced in every namespace, or known not to be served."""
        return self.served is False or (self.served is True and len(self._synced) == len(self.namespaces))

    @property
    def objects(self) -> int:
        return sum(len(v) for v in self.views)

    async def run(self, client: KubeClient, discovery: Discovery) -> None:
        """Look the kind up (again, while it is not served), then watch it until cancelled."""
        resource = await self._resolve(discovery)
        namespaces = self.namespaces if resource.namespaced else ("",)
        self.namespaces = namespaces
        self._bind(resource)
        async with asyncio.TaskGroup() as tasks:
            for namespace in namespaces:
                view = View(resource)
                self.views.append(view)
                reflector = Reflector(
                    client, resource, namespace=namespace, view=view, label_selector=self.label_selector
                )
                tasks.create_task(self._consume(reflector, namespace), name=f"watch {self.label} {namespace}")

    async def _resolve(self, discovery: Discovery) -> ResourceRef:
        gauge = self.metrics.kind_served.labels(self.label)
        while True:
            try:
                resource = await discovery.resolve(self.api_version, self.kind)
            except UnknownKindError as e:
                if self.served is not False:
                    log.warning("kind %s is not served by the API server (yet): %s", self.label, e)
                self.served = False
                self._on_settled()
            except KubeError as e:
                log.warning("looking up kind %s failed (will retry): %s", self.label, e)
            else:
                if self.served is False:
                    log.info("kind %s is served now", self.label)
                self.served = True
                gauge.set(1)
                return resource
            gauge.set(0)
            await asyncio.sleep(RESOLVE_RETRY)

    def _bind(self, resource: ResourceRef) -> None:
        self.resource = resource
        if self.generator is not None:
            self._bound = BoundGenerator(
                self.generator, kind=self.kind, namespaced=resource.namespaced, reserved=self._reserved
            )

    def _reserved(self, family: str) -> str | None:
        """The config that defines `family`, when it is not this kind's generator's."""
        owner = self.lines.owner(family)
        return owner if owner is not None and not owner.startswith("generator ") else None

    async def _consume(self, reflector: Reflector, namespace: str) -> None:
        clock = time.monotonic
        while True:
            turn = clock()
            try:
                async for event in reflector.events():
                    self.handle(event, namespace)
                    if clock() - turn > YIELD_AFTER:
                        await asyncio.sleep(0)
                        turn = clock()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The reflector retries API errors itself and rendering contains what
                # objects and generators do: reaching here is a bug. Watch again.
                log.exception("watch of %s failed; restarting it", self.label)
                await asyncio.sleep(1)

    def handle(self, event: Event, namespace: str = "") -> None:
        """Apply one reflector event to the store."""
        if event.type == "SYNCED":
            self._synced.add(namespace)
            self._on_settled()
            return
        self._event_counters[event.type].inc()
        if event.type == "DELETED":
            self.store.remove(event.uid)
            if self.caps:
                self.caps.forget(event.uid)
            return
        if event.obj is not None:
            self._render(event.obj, event.uid)

    def _render(self, obj: dict[str, Any], uid: str) -> None:
        rendered: dict[str, str] = {}
        namespaced = self.resource.namespaced if self.resource is not None else None
        for program in self.programs:
            output = program.render(obj, namespaced=namespaced, related=self.related)
            rendered.update(output.families)  # family names are unique across a kind's programs
            if self.caps:
                self.caps.note(program.config_name, uid, output.families)
            for error in output.errors:
                self._render_error(program.config_name, error.family)
                if error.fault:
                    self._fault(program.config_name, error, obj)
        if self._bound is not None:
            self._generate(obj, rendered)
        if not rendered:
            self.store.remove(uid)
            return
        get = rendered.get
        self.store.put(
            uid,
            tuple(None if (text := get(family)) is None else encode(text) for family in self.store.families),
        )

    async def rerender(self, client: KubeClient, namespace: str, field_selector: str) -> None:
        """Render again the held objects a LIST of the scope returns: their related objects
        changed (panopticon.kube.relatedwatch). A listed copy older than the one held (the
        watch delivered a newer one meanwhile) is skipped."""
        if self.resource is None:
            return
        reflector = Reflector(client, self.resource, namespace=namespace, field_selector=field_selector)
        turn = time.monotonic()
        async with contextlib.aclosing(reflector.events()) as events:
            async for event in events:
                if event.type == "SYNCED":
                    return
                held = next((v.version(event.uid) for v in self.views if event.uid in v), None)
                if held is None or event.obj is None or event.type == "DELETED":
                    continue
                listed = compact_rv(event.rv)
                if listed != held and not (type(listed) is int and type(held) is int and listed > held):
                    continue
                self._render(event.obj, event.uid)
                if time.monotonic() - turn > YIELD_AFTER:
                    await asyncio.sleep(0)
                    turn = time.monotonic()

    def _generate(self, obj: dict[str, Any], rendered: dict[str, str]) -> None:
        bound = self._bound
        assert bound is not None
        generated = bound.render(obj)
        owner = f"generator {bound.label}"
        for family, text in generated.families.items():
            if not self.store.has(family):
                declared = self.lines.declare(bound.header(family), owner)
                if declared != owner and not declared.startswith("generator "):
                    continue  # defensive: `reserved` refuses a config's family before this
                self.store.index(family)
            rendered[family] = text
        for fault in generated.faults:
            self.metrics.generator_errors.labels(bound.label, fault.reason).inc()
            self.warnings.warning(
                (bound.label, fault.reason),
                "generator %s, %s: %s",
                bound.label,
                object_ref(obj),
                fault.message,
            )

    def _fault(self, config: str, error: RenderError, obj: dict[str, Any]) -> None:
        """An unexpected error caught by the isolation boundary: logged once a minute per config."""
        family = error.family or "labels"
        self.warnings.warning(
            ("fault", config), "config %s, %s of %s: %s", config, family, object_ref(obj), error.message
        )

    def _render_error(self, config: str, family: str) -> None:
        key = (config, family)
        child = self._render_errors.get(key)
        if child is None:
            child = self._render_errors[key] = self.metrics.render_errors.labels(config, family)
        child.inc()

    async def forget(self) -> None:
        """Drop what the kind holds (the exporter stopped), a slot at a time with a turn
        in between: dropping 100,000 objects at once held the loop 60-70 ms (their
        lines about 37 ms, the views' uids about 30 ms)."""
        views, self.views = self.views, []
        self._synced.clear()
        self.resource = None
        self.served = None
        for _ in self.store.release():
            await asyncio.sleep(0)
        for view in views:
            for _ in view.release():
                await asyncio.sleep(0)
