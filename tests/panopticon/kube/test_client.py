"""The REST client against the simulator: Status errors in every form, client-go's
Retry-After retries, token refresh on 401, gzip, merge patches, many watches."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest

from kubesim import AccessRule, SimServer, mongodb_objects
from panopticon.kube.client import ClientSettings, KubeClient
from panopticon.kube.credentials import Credentials
from panopticon.kube.errors import (
    ApiStatusError,
    ExpiredError,
    ForbiddenError,
    InvalidError,
    KubeConnectionError,
    NotFoundError,
    ServiceUnavailableError,
    TooManyRequestsError,
    UnauthorizedError,
    api_error,
    status_error,
)
from panopticon.kube.reflector import Reflector
from tests.panopticon.kube.helpers import (
    CONFIGMAPS,
    FAST,
    FAST_CLIENT,
    NS,
    configmap,
    converged,
    credentials_for,
    running,
    sim_client,
    sim_config,
    wait_until,
)
from tests.support.aio import asynctest

CM_PATH = CONFIGMAPS.list_path(NS)


@asynctest
async def test_a_missing_object_is_a_not_found_status() -> None:
    async with sim_client() as (_, client):
        with pytest.raises(NotFoundError) as info:
            await client.get(f"{CM_PATH}/nope")
        err = info.value
        assert (err.code, err.reason, err.message) == (404, "NotFound", 'configmaps "nope" not found')
        assert err.status["details"] == {"name": "nope", "kind": "configmaps"}


@asynctest
async def test_a_path_outside_any_group_is_the_plain_text_404() -> None:
    async with sim_client() as (_, client):
        with pytest.raises(NotFoundError) as info:
            await client.get("/apis/nowhere.example.com/v1/things")
        assert info.value.message == "404 page not found" and info.value.reason == "NotFound"


@asynctest
async def test_an_invalid_option_is_422_with_its_causes() -> None:
    async with sim_client() as (_, client):
        with pytest.raises(InvalidError) as info:
            await client.get(CM_PATH, {"resourceVersionMatch": "Exact"})
        assert info.value.causes[0]["field"] == "resourceVersionMatch"


@asynctest
async def test_wrong_credentials_and_rbac_denials_are_typed() -> None:
    async with sim_client(sim_config(rules=(AccessRule(user="system:admin", verbs=("get",)),))) as (
        s,
        client,
    ):
        with pytest.raises(ForbiddenError) as info:
            await client.get(CM_PATH)
        assert 'cannot list resource "configmaps"' in info.value.message
        bad = Credentials(s.url, None, lambda: "Bearer wrong", source="test")
        async with KubeClient(bad, settings=FAST_CLIENT) as other:
            with pytest.raises(UnauthorizedError):
                await other.get(CM_PATH)
            assert other.stats.requests == 2  # asked the credentials again once


@asynctest
async def test_a_rotated_token_is_fetched_again_after_a_401() -> None:
    async with sim_client() as (server, _):
        tokens = iter(["Bearer stale", f"Bearer {server.token}"])
        creds = Credentials(server.url, None, lambda: next(tokens), source="rotating")
        async with KubeClient(creds, settings=FAST_CLIENT) as client:
            page = await client.get(CM_PATH)
            assert page["kind"] == "ConfigMapList"
            assert [r.status for r in server.sim.requests.since(0)] == [401, 200]


@pytest.mark.parametrize("form", ["text", "json"])
@asynctest
async def test_429_with_retry_after_is_retried_up_to_ten_times(form: str) -> None:
    async with sim_client() as (server, client):
        server.sim.throttle(10, form=form, retry_after=1)
        assert (await client.get(CM_PATH))["items"] == []
        assert client.stats.retries == 10
        server.sim.throttle(11, form=form, retry_after=1)
        with pytest.raises(TooManyRequestsError) as info:
            await client.get(CM_PATH)
        assert info.value.retry_after == 1.0 and info.value.code == 429
        assert client.stats.retries == 20


@asynctest
async def test_503_with_retry_after_is_retried_and_honours_the_header() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async with sim_client() as (server, _):
        settings = ClientSettings(max_retry_wait=60.0)
        async with KubeClient(credentials_for(server), settings=settings, sleep=sleep) as client:
            server.sim.make_unavailable(count=2)
            assert (await client.get(CM_PATH))["kind"] == "ConfigMapList"
            assert slept == [5.0, 5.0]
            server.sim.make_unavailable(count=11)
            with pytest.raises(ServiceUnavailableError):
                await client.get(CM_PATH)


@asynctest
async def test_a_continue_token_that_expired_is_410_with_an_inconsistent_token() -> None:
    async with sim_client(sim_config(rv0_honours_limit=True)) as (server, client):
        for i in range(5):
            server.sim.create(configmap(f"c{i}"))
        page = await client.list_page(CM_PATH, {"limit": "2"})
        server.sim.create(configmap("later"))
        server.sim.compact()
        with pytest.raises(ExpiredError) as info:
            await client.list_page(CM_PATH, {"limit": "2", "continue": page["metadata"]["continue"]})
        assert info.value.continue_token and info.value.code == 410


def test_status_parsing_follows_client_go() -> None:
    gone = status_error({"kind": "Status", "code": 410, "reason": "Gone", "message": "too old"})
    assert isinstance(gone, ExpiredError)
    odd = status_error({"kind": "Status", "reason": "Expired", "message": "x"}, code=500)
    assert isinstance(odd, ExpiredError)
    pretty = b'{\n  "kind": "Status",\n  "code": 403,\n  "reason": "Forbidden",\n  "message": "no"\n}\n'
    assert isinstance(api_error(403, pretty), ForbiddenError)
    text = api_error(429, b"Too many requests, please try again later.\n", retry_after="3")
    assert isinstance(text, TooManyRequestsError) and text.retry_after == 3.0
    assert type(api_error(418, b"teapot")) is ApiStatusError


@asynctest
async def test_large_lists_and_watch_list_streams_arrive_gzipped_and_decode() -> None:
    config = sim_config(gzip_threshold_bytes=512, watch_list_compression=True)
    async with sim_client(config) as (server, client):
        for i in range(40):
            server.sim.create(configmap(f"z{i}", blob="ä" * 200))
        page = await client.get(CM_PATH)
        assert len(page["items"]) == 40
        r = Reflector(client, CONFIGMAPS, settings=FAST)
        async with running(r) as applied:
            await wait_until(lambda: applied.synced == 1, what="sync")
            server.sim.create(configmap("after", blob="ö" * 300))
            await converged(r, applied, client)
        assert all(q.headers.get("Accept-Encoding") == "gzip" for q in server.sim.requests.since(0))


@asynctest
async def test_merge_patches_and_status_patches() -> None:
    async with sim_client() as (server, client):
        server.sim.create(configmap("p", a="1", b="2"))
        out = await client.patch_merge(f"{CM_PATH}/p", {"data": {"a": None, "c": "3"}})
        assert out["data"] == {"b": "2", "c": "3"}
        db = next(iter(mongodb_objects(1, seed=3, namespaces=(NS,))))
        created = server.sim.create(db)
        path = f"/apis/kubedb.com/v1/namespaces/{NS}/mongodbs/{created['metadata']['name']}"
        patched = await client.patch_status(path, {"status": {"phase": "Patched"}})
        assert patched["status"]["phase"] == "Patched"
        (record,) = [r for r in server.sim.requests.since(0) if r.method == "PATCH" and "mongodbs" in r.path]
        assert record.path.endswith("/status")
        assert record.headers["Content-Type"] == "application/merge-patch+json"


@asynctest
async def test_more_than_a_hundred_watches_share_one_session() -> None:
    async with sim_client() as (server, client):
        assert client.session.connector is not None and client.session.connector.limit > 100
        params = {"watch": "1", "resourceVersion": str(server.sim.revision)}
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(130):
                await stack.enter_async_context(client.stream(CM_PATH, params))
            assert len(server.sim.open_watches("configmaps")) == 130


@asynctest
async def test_a_refused_connection_is_a_connection_error_marked_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    creds = Credentials(f"http://127.0.0.1:{port}", None, lambda: None, source="nowhere")
    async with KubeClient(creds, settings=FAST_CLIENT) as client:
        with pytest.raises(KubeConnectionError) as info:
            await client.get("/api")
        assert info.value.refused


@asynctest
async def test_a_reflector_rides_out_an_api_server_restart() -> None:
    async with sim_client() as (server, client):
        for i in range(5):
            server.sim.create(configmap(f"r{i}"))
        r = Reflector(client, CONFIGMAPS, settings=FAST)
        async with running(r) as applied:
            await wait_until(lambda: applied.synced == 1, what="sync")
            port = server.port
            await server.stop()  # connection refused while down
            await asyncio.sleep(0.2)
            restarted = SimServer(server.sim, port=port)
            await restarted.start()
            try:
                server.sim.create(configmap("while-away"))
                await converged(r, applied, client)
            finally:
                await restarted.stop()
        assert r.stats.errors.get("refused", 0) + r.stats.errors.get("connection", 0) >= 1
