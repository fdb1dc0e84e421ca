"""Discovery: apiVersion + kind to a resource, CRDs created at run time, bounded
refreshes on misses."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from panopticon.kube.discovery import Discovery, ResourceRef
from panopticon.kube.errors import DiscoveryFailedError, ServiceUnavailableError, UnknownKindError
from panopticon.kube.reflector import Reflector
from tests.panopticon.kube.helpers import (
    FAST,
    FAST_CLIENT,
    converged,
    running,
    sim_client,
    wait_until,
)
from tests.support.aio import asynctest


def widget_crd(scope: str = "Namespaced") -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "listKind": "WidgetList", "plural": "widgets", "singular": "widget"},
            "scope": scope,
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                },
                {"name": "v1beta1", "served": True, "storage": False},
            ],
        },
    }


def widget(name: str, size: int) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"size": size},
    }


def test_resource_refs_build_the_paths() -> None:
    pods = ResourceRef("", "v1", "pods", "Pod", True)
    assert (pods.api_version, pods.path) == ("v1", "/api/v1/pods")
    assert pods.list_path("kube-system") == "/api/v1/namespaces/kube-system/pods"
    assert pods.object_path("p", "ns") == "/api/v1/namespaces/ns/pods/p"
    nodes = ResourceRef("", "v1", "nodes", "Node", False)
    assert nodes.list_path("ignored") == "/api/v1/nodes"
    deploy = ResourceRef("apps", "v1", "deployments", "Deployment", True)
    assert deploy.api_version == "apps/v1" and deploy.path == "/apis/apps/v1/deployments"


@asynctest
async def test_built_in_kinds_resolve_with_scope_and_subresources_left_out() -> None:
    async with sim_client() as (_, client):
        discovery = Discovery(client)
        pods = await discovery.resolve("v1", "Pod")
        assert (pods.group, pods.version, pods.resource, pods.namespaced) == ("", "v1", "pods", True)
        assert "watch" in pods.verbs
        nodes = await discovery.resolve("v1", "Node")
        assert not nodes.namespaced
        assert (await discovery.resolve("apps/v1", "Deployment")).path == "/apis/apps/v1/deployments"
        assert all("/" not in r.resource for r in discovery.resources())
        assert discovery.refreshes == 1


@asynctest
async def test_a_crd_created_at_run_time_resolves_after_a_miss() -> None:
    async with sim_client() as (server, client):
        discovery = Discovery(client, miss_refresh_interval=0.0)
        await discovery.refresh()
        with pytest.raises(UnknownKindError):
            await discovery.resolve("example.com/v1", "Widget")
        server.sim.create(widget_crd())
        ref = await discovery.resolve("example.com/v1", "Widget")
        assert ref.path == "/apis/example.com/v1/widgets" and ref.namespaced
        assert (await discovery.resolve("example.com/v1beta1", "Widget")).version == "v1beta1"
        server.sim.create(widget("w1", 3))
        r = Reflector(client, ref, settings=FAST)
        async with running(r) as applied:
            await wait_until(lambda: applied.synced == 1, what="sync")
            server.sim.create(widget("w2", 5))
            await converged(r, applied, client)
        assert {b["spec"]["size"] for b in applied.bodies.values()} == {3, 5}


@asynctest
async def test_misses_refresh_at_most_once_per_interval() -> None:
    now = [100.0]
    async with sim_client() as (server, client):
        discovery = Discovery(client, miss_refresh_interval=30.0, clock=lambda: now[0])
        await discovery.resolve("v1", "Pod")
        for _ in range(5):
            with pytest.raises(UnknownKindError):
                await discovery.resolve("example.com/v1", "Widget")
        assert discovery.refreshes == 1  # the first resolve refreshed; misses within 30 s do not
        server.sim.create(widget_crd())
        with pytest.raises(UnknownKindError):
            await discovery.resolve("example.com/v1", "Widget")
        now[0] += 31
        assert (await discovery.resolve("example.com/v1", "Widget")).resource == "widgets"
        assert discovery.refreshes == 2
        server.sim.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com")
        await discovery.refresh()  # what the shard does when its CRD reflector sees a change
        assert discovery.lookup("example.com", "v1", "Widget") is None


@asynctest
async def test_a_kind_whose_group_version_failed_to_load_is_a_discovery_failure_not_unknown() -> None:
    async with sim_client() as (server, client):
        server.sim.create(widget_crd())
        server.sim.fail_discovery("example.com/v1", seconds=60)
        discovery = Discovery(client, miss_refresh_interval=0.0)
        with pytest.raises(DiscoveryFailedError):
            await discovery.resolve("example.com/v1", "Widget")
        assert discovery.failed_group_versions == [("example.com", "v1")]
        # Its other version loaded: a kind missing there is truly not served.
        assert (await discovery.resolve("example.com/v1beta1", "Widget")).version == "v1beta1"
        with pytest.raises(UnknownKindError):
            await discovery.resolve("example.com/v1beta1", "Gadget")
        server.sim.clear_faults()
        assert (await discovery.resolve("example.com/v1", "Widget")).resource == "widgets"


@asynctest
async def test_a_group_list_that_fails_makes_every_miss_a_discovery_failure() -> None:
    async with sim_client(settings=replace(FAST_CLIENT, max_retries=0)) as (server, client):
        discovery = Discovery(client, miss_refresh_interval=0.0)
        server.sim.fail_discovery("v1", seconds=60)  # /api/v1 fails, /api and /apis answer
        with pytest.raises(DiscoveryFailedError):
            await discovery.resolve("v1", "Pod")
        server.sim.clear_faults()
        server.sim.make_unavailable(count=1)  # the next request, /api, fails
        with pytest.raises(ServiceUnavailableError):
            await discovery.resolve("v1", "Pod")
        assert discovery.listing_failed
        assert (await discovery.resolve("v1", "Pod")).resource == "pods"
        assert not discovery.listing_failed
