"""The reflector against the simulator as a real HTTP server: the client-go algorithm
(client-go `tools/cache/reflector.go`) step by step, each fault ending with the view
equal to the server's state."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from kubesim import SimServer
from kubesim.faults import RequestRecord
from panopticon.kube.client import KubeClient
from panopticon.kube.reflector import Reflector
from tests.panopticon.kube.helpers import (
    CONFIGMAPS,
    FAST,
    NS,
    configmap,
    converged,
    running,
    sim_client,
    sim_config,
    wait_until,
    watching,
)
from tests.support.aio import asynctest


def requests(server: SimServer, *, verb: str, since: int = 0) -> list[RequestRecord]:
    """The reflector's requests (the tests' own oracle LISTs carry no parameters)."""
    return [
        r
        for r in server.sim.requests.since(since)
        if r.verb == verb and r.path.endswith("/configmaps") and r.query
    ]


def populate(server: SimServer, count: int, *, prefix: str = "cm", **data: str) -> list[dict[str, Any]]:
    return [server.sim.create(configmap(f"{prefix}-{i}", **(data or {"k": str(i)}))) for i in range(count)]


def churn(server: SimServer, step: int) -> None:
    """A few creates, updates and deletes."""
    sim = server.sim
    sim.create(configmap(f"new-{step}", v="1"))
    items = sim.list_objects("v1", "ConfigMap", namespace=NS)
    if len(items) > 2:
        sim.patch("v1", "ConfigMap", items[0]["metadata"]["name"], {"data": {"s": str(step)}}, namespace=NS)
        sim.delete("v1", "ConfigMap", items[-1]["metadata"]["name"], namespace=NS)


def reflector(client: KubeClient, **settings: Any) -> Reflector:
    return Reflector(client, CONFIGMAPS, settings=dataclasses.replace(FAST, **settings), seed=1)


@asynctest
async def test_list_then_watch_follows_client_go_and_reports_every_change() -> None:
    async with sim_client(sim_config(watch_list=False)) as (server, client):
        populate(server, 30)
        r = reflector(client, watch_list=False)
        async with running(r) as applied:
            await wait_until(lambda: applied.synced == 1, what="first sync")
            assert len(applied.of_type("ADDED")) == 30
            for step in range(5):
                churn(server, step)
            await converged(r, applied, client)
        lists = requests(server, verb="list")
        assert lists[0].query["resourceVersion"] == "0" and lists[0].query["limit"] == "500"
        watch = requests(server, verb="watch")[0].query
        assert watch["resourceVersion"] == r.last_sync_rv
        assert watch["allowWatchBookmarks"] == "true" and "sendInitialEvents" not in watch
        assert 20 <= int(watch["timeoutSeconds"]) < 30
        assert r.stats.syncs == 1 and r.synced and r.watch_list_supported is False


@asynctest
async def test_a_watch_list_syncs_from_the_stream_and_keeps_it_open() -> None:
    async with sim_client() as (server, client):
        populate(server, 25)
        r = reflector(client)
        async with running(r) as applied:
            await wait_until(lambda: applied.synced == 1, what="first sync")
            assert [e.type for e in applied.events] == ["ADDED"] * 25 + ["SYNCED"]
            for step in range(5):
                churn(server, step)
            await converged(r, applied, client)
        assert requests(server, verb="list") == []
        (watch,) = requests(server, verb="watch")
        q = watch.query
        assert q["sendInitialEvents"] == "true" and q["resourceVersionMatch"] == "NotOlderThan"
        assert q["allowWatchBookmarks"] == "true" and "resourceVersion" not in q
        assert r.stats.watch_list_syncs == 1 and r.watch_list_supported is not False


@pytest.mark.parametrize(
    ("config", "first_status"),
    [({"watch_list": False}, 422), ({"watch_list_progress_notify": False}, 200)],
    ids=["gate-off-422", "storage-unsupported-error-event"],
)
@asynctest
async def test_watch_list_unsupported_falls_back_to_list_and_remembers(
    config: dict[str, Any], first_status: int
) -> None:
    async with sim_client(sim_config(**config)) as (server, client):
        populate(server, 10)
        r = reflector(client)
        async with running(r) as applied:
            await wait_until(lambda: applied.synced == 1, what="first sync")
            await watching(server)
            server.sim.inject_watch_error(410)
            churn(server, 1)
            await wait_until(lambda: applied.synced == 2, what="relist")
            await converged(r, applied, client)
        watches = requests(server, verb="watch")
        assert watches[0].query.get("sendInitialEvents") == "true" and watches[0].status == first_status
        assert all("sendInitialEvents" not in w.query for w in watches[1:])
        assert len(requests(server, verb="list")) == 2
        assert r.watch_list_supported is False


@pytest.mark.parametrize("watch_list", [True, False], ids=["watch-list", "list"])
@asynctest
async def test_objects_deleted_while_away_are_deleted_with_their_identity(watch_list: bool) -> None:
    async with sim_client(sim_config(watch_list=watch_list)) as (server, client):
        created = populate(server, 12)
        r = reflector(client, watch_list=watch_list)
        async with running(r) as applied:
            await wait_until(lambda: applied.synced == 1, what="first sync")
        for obj in created[:4]:
            server.sim.delete("v1", "ConfigMap", obj["metadata"]["name"], namespace=NS)
        server.sim.patch("v1", "ConfigMap", "cm-5", {"data": {"k": "changed"}}, namespace=NS)
        server.sim.compact()
        async with running(r, applied):
            await wait_until(lambda: applied.synced == 2, what="second sync")
            await converged(r, applied, client)
        second = applied.events[applied.events.index(applied.of_type("SYNCED")[0]) + 1 :]
        assert [e.type for e in second] == ["MODIFIED", "DELETED", "DELETED", "DELETED", "DELETED", "SYNCED"]
        gone = {e.obj["metadata"]["name"] for e in second if e.type == "DELETED" and e.obj}
        assert gone == {o["metadata"]["name"] for o in created[:4]}
        assert all(e.final_state_unknown for e in second if e.type == "DELETED")
        assert second[1].obj == {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"uid": second[1].uid, "name": second[1].obj["metadata"]["name"], "namespace": NS},
        }


@asynctest
async def test_an_in_band_410_relists_at_the_last_resource_version() -> None:
    async with sim_client(sim_config(watch_list=False)) as (server, client):
        populate(server, 10)
        r = reflector(client, watch_list=False)
        async with running(r) as applied:
            await wait_until(lambda: applied.synced == 1, what="first sync")
            churn(server, 1)
            await converged(r, applied, client)
            last = r.resource_version
            await watching(server)
            seq = server.sim.requests.last_seq
            server.sim.inject_watch_error(410)
            churn(server, 2)
            await wait_until(lambda: applied.synced == 2, what="relist")
            await converged(r, applied, client)
        relist = requests(server, verb="list", since=seq)[0].query
        assert relist["resourceVersion"] == last and relist["resourceVersionMatch"] == "NotOlderThan"
        assert r.stats.errors["expired"] == 1


@pytest.mark.parametrize("reason", ["Expired", "Gone"])
@asynctest
async def test_a_watch_list_from_a_compacted_rv_retries_from_the_latest_state(reason: str) -> None:
    async with sim_client(sim_config(expired_reason=reason)) as (server, client):
        populate(server, 10)
        r = reflector(client)
        async with running(r) as applied:
            await wait_until(lambda: applied.synced == 1, what="first sync")
        synced_at = r.resource_version
        for step in range(3):
            churn(server, step)
        server.sim.compact()
        seq = server.sim.requests.last_seq
        async with running(r, applied):
            await wait_until(lambda: applied.synced == 2, what="second sync")
            await converged(r, applied, client)
        first, second = requests(server, verb="watch", since=seq)[:2]
        assert first.query["resourceVersion"] == synced_at and first.query["sendInitialEvents"] == "true"
        assert "resourceVersion" not in second.query and second.query["sendInitialEvents"] == "true"
        assert r.stats.errors["expired"] == 1 and r.watch_list_supported is not False


class CompactingClient(KubeClient):
    """Compacts the simulator's history right after the first LIST page, so the
    continue token of the second page has expired."""

    server: SimServer
    compact_after_pages = 1

    async def list_page(self, path: str, params: Any = None) -> dict[str, Any]:
        page = await super().list_page(path, params)
        self.compact_after_pages -= 1
        if self.compact_after_pages == 0:
            self.server.sim.patch("v1", "ConfigMap", "cm-0", {"data": {"k": "moved"}}, namespace=NS)
            self.server.sim.compact()
        return page


@asynctest
async def test_an_expired_continue_token_falls_back_to_a_full_list() -> None:
    async with sim_client(sim_config(watch_list=False, rv0_honours_limit=True)) as (server, _):
        populate(server, 23)
        from tests.panopticon.kube.helpers import FAST_CLIENT, credentials_for

        async with CompactingClient(credentials_for(server), settings=FAST_CLIENT) as client:
            client.server = server
            r = reflector(client, watch_list=False, page_size=5)
            async with running(r) as applied:
                await wait_until(lambda: applied.synced == 1, what="first sync")
                await converged(r, applied, client)
            lists = requests(server, verb="list")
            assert lists[0].query["limit"] == "5"
            assert "continue" in lists[1].query and lists[1].status == 410
            assert "limit" not in lists[2].query and lists[2].status == 200
            assert len(applied.of_type("ADDED")) == 23 and len(applied.of_type("MODIFIED")) == 1


@pytest.mark.parametrize("form", ["text", "json"])
@asynctest
async def test_429_on_the_watch_backs_off_and_rewatches_without_relisting(form: str) -> None:
    async with sim_client() as (server, client):
        populate(server, 5)
        r = reflector(client)
        async with running(r) as applied:
            await wait_until(lambda: applied.synced == 1, what="first sync")
            await watching(server)
            server.sim.throttle(13, form=form, retry_after=1, verbs=("watch",))
            server.sim.close_watches("abort")
            churn(server, 1)
            await converged(r, applied, client)
        assert r.stats.syncs == 1
        assert r.stats.errors["too_many_requests"] == 1
        assert client.stats.retries >= 10


@asynctest
async def test_in_band_500s_rewatch_for_a_while_then_relist() -> None:
    async with sim_client() as (server, client):
        populate(server, 5)
        r = reflector(client, max_internal_error_retry=0.5)
        async with running(r) as applied:
            await wait_until(lambda: applied.synced == 1, what="first sync")
            await watching(server)
            server.sim.inject_watch_error(500)
            churn(server, 1)
            await converged(r, applied, client)
            assert r.stats.syncs == 1 and r.stats.errors["internal"] == 1
            for _ in range(40):  # 500s for longer than the retry window: relist
                await watching(server)
                server.sim.inject_watch_error(500)
                await asyncio.sleep(0.03)
                if r.stats.syncs > 1:
                    break
            churn(server, 2)
            await converged(r, applied, client)
        assert r.stats.syncs >= 2


@asynctest
async def test_a_stalled_watch_is_replaced_after_the_inactivity_timeout() -> None:
    async with sim_client(sim_config(bookmark_interval=0.05)) as (server, client):
        populate(server, 5)
        r = reflector(client, inactivity_timeout=0.4)
        async with running(r) as applied:
            await wait_until(lambda: applied.synced == 1, what="first sync")
            await watching(server)
            server.sim.stall_watches(None)
            churn(server, 1)
            await converged(r, applied, client)
        assert r.stats.errors["inactivity"] >= 1 and r.stats.syncs == 1


@pytest.mark.parametrize("mode", ["eof", "abort"])
@asynctest
async def test_dropped_connections_rewatch_from_the_last_rv_without_relisting(mode: str) -> None:
    async with sim_client(sim_config(bookmark_interval=None)) as (server, client):
        populate(server, 5)
        r = reflector(client)
        async with running(r) as applied:
            await wait_until(lambda: applied.synced == 1, what="first sync")
            for step in range(6):
                churn(server, step)
                await converged(r, applied, client)
                await watching(server)
                before = r.resource_version
                seq = server.sim.requests.last_seq
                server.sim.close_watches(mode)
                await wait_until(lambda: requests(server, verb="watch", since=seq) != [], what="re-watch")  # noqa: B023
                assert requests(server, verb="watch", since=seq)[0].query["resourceVersion"] == before
            await converged(r, applied, client)
        assert r.stats.syncs == 1 and r.stats.watch_restarts >= 6


@asynctest
async def test_chunks_split_inside_utf8_sequences_decode_exactly() -> None:
    async with sim_client() as (server, client):
        r = reflector(client)
        async with running(r) as applied:
            await wait_until(lambda: applied.synced == 1, what="first sync")
            server.sim.split_chunks(max_piece=16, utf8=True, delay=0.0005)
            for i in range(12):
                server.sim.create(configmap(f"u-{i}", text="ünïcødé ✓ 日本語 🎉" * (i + 1), n=str(i)))
            await converged(r, applied, client)
        for item in server.sim.list_objects("v1", "ConfigMap", namespace=NS):
            assert applied.bodies[item["metadata"]["uid"]]["data"] == item["data"]


@asynctest
async def test_a_very_short_watch_is_an_error_that_relists_after_backoff() -> None:
    async with sim_client(sim_config(watch_list=False, bookmark_interval=None)) as (server, client):
        populate(server, 3)
        r = reflector(client, watch_list=False, very_short_watch=1.0)
        async with running(r) as applied:
            await wait_until(lambda: applied.synced == 1, what="first sync")
            await watching(server)
            server.sim.close_watches("eof")
            await wait_until(lambda: applied.synced == 2, what="relist")
        assert r.stats.errors["short_watch"] == 1


@asynctest
async def test_bookmarks_advance_the_resource_version_a_watch_resumes_from() -> None:
    async with sim_client(sim_config(bookmark_interval=0.05)) as (server, client):
        populate(server, 3)
        r = reflector(client)
        async with running(r) as applied:
            await wait_until(lambda: applied.synced == 1, what="first sync")
            for i in range(5):  # other resources move the global revision
                server.sim.create(
                    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"s{i}", "namespace": NS}}
                )
            await wait_until(lambda: r.resource_version == str(server.sim.revision), what="bookmark")
            await watching(server)
            seq = server.sim.requests.last_seq
            server.sim.close_watches("eof")
            await wait_until(lambda: requests(server, verb="watch", since=seq) != [], what="re-watch")
        assert requests(server, verb="watch", since=seq)[0].query["resourceVersion"] == str(
            server.sim.revision
        )
        assert r.stats.bookmarks >= 1 and applied.synced == 1


@asynctest
async def test_a_client_ahead_of_a_lagging_server_relists_from_its_latest_state() -> None:
    async with sim_client(sim_config(start_revision=5_000_000)) as (server, client):
        populate(server, 4)
        r = reflector(client)
        async with running(r) as applied:
            await wait_until(lambda: applied.synced == 1, what="first sync")
        async with sim_client(sim_config(start_revision=1_000)) as (lagging, client2):
            populate(lagging, 2, prefix="other")
            r.client = client2  # as after a failover to an apiserver that is behind
            async with running(r, applied):
                await wait_until(lambda: applied.synced == 2, what="second sync", within=15)
                await converged(r, applied, client2)
            assert r.stats.errors["too_large_rv"] == 1
            first, second = requests(lagging, verb="watch")[:2]
            assert first.query["resourceVersion"] != "" and "resourceVersion" not in second.query
