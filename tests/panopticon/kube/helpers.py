"""Helpers of the Kubernetes client tests: a simulator with a client, fast reflector
settings, and a consumer that applies events to a dict and checks the protocol."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from kubesim import SimConfig, SimServer
from panopticon.kube.backoff import BackoffSettings
from panopticon.kube.client import ClientSettings, KubeClient
from panopticon.kube.credentials import Credentials
from panopticon.kube.discovery import ResourceRef
from panopticon.kube.events import Event
from panopticon.kube.reflector import Reflector, ReflectorSettings
from panopticon.sharding.buckets import ShardFilter

CONFIGMAPS = ResourceRef("", "v1", "configmaps", "ConfigMap", True)
PODS = ResourceRef("", "v1", "pods", "Pod", True)
NS = "default"

FAST_CLIENT = ClientSettings(max_retry_wait=0.02, request_timeout=30.0)
FAST = ReflectorSettings(
    watch_timeout=(20.0, 30.0),
    inactivity_timeout=2.0,
    backoff=BackoffSettings(initial=0.01, cap=0.1, jitter=0.5),
    max_internal_error_retry=5.0,
    very_short_watch=0.05,
)


def sim_config(**changes: Any) -> SimConfig:
    base: dict[str, Any] = {
        "seed": 11,
        "compaction_window": None,
        "bookmark_interval": 0.1,
        "too_large_rv_wait": 0.2,
    }
    base.update(changes)
    return SimConfig(**base)


def credentials_for(server: SimServer) -> Credentials:
    token = server.token
    return Credentials(server.url, None, lambda: f"Bearer {token}", source="simulator")


@asynccontextmanager
async def sim_client(
    config: SimConfig | None = None, *, settings: ClientSettings = FAST_CLIENT
) -> AsyncIterator[tuple[SimServer, KubeClient]]:
    """An in-process simulator and a client of it, both closed afterwards."""
    async with (
        SimServer(config or sim_config()) as server,
        KubeClient(credentials_for(server), settings=settings) as client,
    ):
        yield server, client


def configmap(name: str, *, namespace: str = NS, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


class Applied:
    """Events applied to a dict uid -> rv, checking the protocol as they come:
    ADDED only for unknown uids, MODIFIED and DELETED only for known ones."""

    def __init__(self) -> None:
        self.objects: dict[str, str] = {}
        self.bodies: dict[str, dict[str, Any]] = {}
        self.events: list[Event] = []
        self.synced = 0
        self.error: BaseException | None = None
        """Set when applying an event broke the protocol (the consumer task then ends)."""

    def apply(self, ev: Event) -> None:
        self.events.append(ev)
        if ev.type == "SYNCED":
            self.synced += 1
            return
        if ev.type == "ADDED":
            assert ev.uid not in self.objects, f"ADDED for a known uid {ev.uid}"
        else:
            assert ev.uid in self.objects, f"{ev.type} for an unknown uid {ev.uid}"
        if ev.type == "DELETED":
            del self.objects[ev.uid]
            self.bodies.pop(ev.uid, None)
        else:
            assert ev.obj is not None
            self.objects[ev.uid] = ev.rv
            self.bodies[ev.uid] = ev.obj

    def of_type(self, etype: str) -> list[Event]:
        return [e for e in self.events if e.type == etype]


@asynccontextmanager
async def running(reflector: Reflector, applied: Applied | None = None) -> AsyncIterator[Applied]:
    """Consume `reflector` into `applied` in a background task while the block runs."""
    out = applied or Applied()

    async def drive() -> None:
        try:
            async with contextlib.aclosing(reflector.events()) as events:
                async for ev in events:
                    out.apply(ev)
        except Exception as e:
            out.error = e
            raise

    task = asyncio.create_task(drive(), name=f"reflector-{reflector.name}")
    try:
        yield out
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_until(condition: Callable[[], bool], *, within: float = 10.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.01)


async def watching(server: SimServer, resource: str = "configmaps") -> None:
    """Wait until the simulator has an open watch of `resource` (to aim a fault at it)."""
    await wait_until(lambda: server.sim.open_watches(resource) != [], what=f"a watch of {resource}")


async def server_state(
    client: KubeClient, resource: ResourceRef, shard_filter: ShardFilter | None = None
) -> dict[str, str]:
    """uid -> rv from a LIST of the whole collection (filtered client-side)."""
    page = await client.get(resource.path)
    out = {i["metadata"]["uid"]: i["metadata"]["resourceVersion"] for i in page["items"]}
    if shard_filter is not None:
        out = {u: rv for u, rv in out.items() if shard_filter.contains(u)}
    return out


async def converged(
    reflector: Reflector,
    applied: Applied,
    client: KubeClient,
    *,
    shard_filter: ShardFilter | None = None,
    within: float = 15.0,
) -> dict[str, str]:
    """Wait until the view and the applied events equal the server's state; return it."""
    expected: dict[str, str] = {}

    async def check() -> bool:
        nonlocal expected
        expected = await server_state(client, reflector.resource, shard_filter)
        return applied.objects == expected and reflector.view.snapshot() == expected

    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if applied.error is not None:
            raise AssertionError(f"the consumer failed: {applied.error!r}") from applied.error
        if loop.time() > deadline:
            missing = expected.keys() - applied.objects.keys()
            extra = applied.objects.keys() - expected.keys()
            stale = {u for u in expected.keys() & applied.objects.keys() if expected[u] != applied.objects[u]}
            raise AssertionError(
                f"not converged: {len(missing)} missing, {len(extra)} extra, {len(stale)} stale; "
                f"stats {reflector.stats}"
            )
        await asyncio.sleep(0.05)
    return expected
