"""The library end to end: an Exporter on the test's loop, the simulator as the cluster."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from kubesim import SimThread
from panopticon import embed
from panopticon._embed import kinds
from panopticon.embed import Exporter, ExporterError, Sample
from panopticon.render.expr.functions import FUNCTIONS, Function
from tests.panopticon.embed.support import (
    API_VERSION,
    CONFIG,
    CRD,
    KIND,
    OM_ACCEPT,
    eventually,
    memcached,
    promtool_accepts,
    samples,
    scrape,
    served,
)
from tests.support import aio

SPEC_SIZE = "cache_example_com_memcached_spec_size"
READY_REPLICAS = "cache_example_com_memcached_status_ready_replicas"
PHASE = "cache_example_com_memcached_status_phase"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[tuple[SimThread, str]]:
    with SimThread() as st:
        st.call(st.sim.create, dict(CRD))
        yield st, str(st.server.write_kubeconfig(tmp_path / "kubeconfig"))


def series(name: str, obj: str, namespace: str = "default", **labels: str) -> tuple[str, Any]:
    return (name, tuple(sorted({"memcached": obj, "namespace": namespace, **labels}.items())))


def test_creates_updates_and_deletes_of_custom_resources_show_in_metrics_beside_the_operators(
    sim: tuple[SimThread, str],
) -> None:
    st, kubeconfig = sim
    st.call(st.sim.create, memcached("sessions"))
    registry = CollectorRegistry()
    reconciles = Counter("memcached_operator_reconciles", "Reconciliations.", registry=registry)

    async def main() -> None:
        exporter = Exporter(configs=[CONFIG], registry=registry, kubeconfig=kubeconfig)
        await exporter.start()
        async with served(exporter) as url:
            await asyncio.wait_for(exporter.wait_ready(), 30)
            reconciles.inc()
            got = samples(await scrape(url))
            assert got[series(SPEC_SIZE, "sessions")] == 3
            assert series(READY_REPLICAS, "sessions") not in got  # no status yet: no series
            assert got[("memcached_operator_reconciles_total", ())] == 1

            status = {"status": {"readyReplicas": 3, "phase": "Ready"}}
            st.call(st.sim.patch, API_VERSION, KIND, "sessions", status, namespace="default", status=True)
            st.call(st.sim.create, memcached("cache", size=1))

            async def updated() -> None:
                got = samples(await scrape(url))
                assert got[series(READY_REPLICAS, "sessions")] == 3
                assert got[series(PHASE, "sessions", phase="Ready")] == 1
                assert got[series(PHASE, "sessions", phase="Pending")] == 0
                assert got[series(SPEC_SIZE, "cache")] == 1

            await eventually(updated)
            st.call(st.sim.delete, API_VERSION, KIND, "cache", namespace="default")

            async def deleted() -> None:
                text = await scrape(url)
                assert 'memcached="cache"' not in text
                assert 'memcached="sessions"' in text

            await eventually(deleted)
            text, om = await scrape(url), await scrape(url, Accept=OM_ACCEPT)
            assert om.endswith("# EOF\n") and om.count("# EOF") == 1
            assert 'cache_example_com_memcached_spec_size{memcached="sessions",namespace="default"} 3' in om
            promtool_accepts(text)
            assert samples(text)[("panopticon_embed_objects", (("kind", f"{API_VERSION}/{KIND}"),))] == 1
        await exporter.stop()

    aio.run(main())


BAD_CONFIG: dict[str, Any] = {
    "apiVersion": "metrics.appscode.com/v1alpha1",
    "kind": "MetricsConfiguration",
    "metadata": {"name": "broken"},
    "spec": {
        "targetRef": {"apiVersion": API_VERSION, "kind": KIND},
        "metrics": [
            {"name": "size", "help": "h", "type": "gauge", "metricValue": {"valueFromPath": "spec..size["}}
        ],
    },
}


def test_a_config_that_does_not_validate_is_reported_and_the_others_run(
    sim: tuple[SimThread, str], caplog: pytest.LogCaptureFixture
) -> None:
    st, kubeconfig = sim
    st.call(st.sim.create, memcached("sessions"))

    async def main() -> None:
        with caplog.at_level(logging.ERROR, logger="panopticon.embed"):
            exporter = Exporter(
                configs=[CONFIG, BAD_CONFIG, "/nonexistent/metrics.yaml"], kubeconfig=kubeconfig
            )
        reports = {r.name or r.source: r for r in exporter.configs}
        assert reports["cache-example-com-memcached"].valid
        broken = reports["broken"]
        assert not broken.valid and broken.source == "configs[1]"
        assert "spec.metrics[0].metricValue.valueFromPath" in broken.errors[0]
        assert not reports["/nonexistent/metrics.yaml"].valid
        logged = [r.getMessage() for r in caplog.records]
        assert any("config broken: spec.metrics[0]" in line for line in logged), logged
        assert all("\n" not in line for line in logged)
        async with exporter:
            await asyncio.wait_for(exporter.wait_ready(), 30)
            async with served(exporter) as url:
                got = samples(await scrape(url))
        assert got[series(SPEC_SIZE, "sessions")] == 3
        assert got[("panopticon_embed_configs", (("state", "invalid"),))] == 2
        assert got[("panopticon_embed_configs", (("state", "valid"),))] == 1

    aio.run(main())


def test_a_generator_that_raises_or_returns_a_non_number_is_counted_and_never_breaks_the_scrape(
    sim: tuple[SimThread, str], caplog: pytest.LogCaptureFixture
) -> None:
    st, kubeconfig = sim
    for name, memory in (("good", 64), ("no-memory-a", None), ("no-memory-b", None), ("text", "lots")):
        obj = memcached(name, memory=memory)
        if memory is None:
            del obj["spec"]["memoryMB"]
        st.call(st.sim.create, obj)

    def memory_limit(obj: dict[str, Any]) -> Iterator[Sample]:
        spec = obj["spec"]
        if isinstance(spec["memoryMB"], str):
            yield Sample("memcached_memory_limit_bytes", {}, spec["memoryMB"])  # not a number
        else:
            yield Sample("memcached_memory_limit_bytes", {}, spec["size"] * spec["memoryMB"] * 2**20)

    async def main() -> None:
        exporter = Exporter(
            configs=[CONFIG], generators={(API_VERSION, KIND): memory_limit}, kubeconfig=kubeconfig
        )
        with caplog.at_level(logging.WARNING, logger="panopticon.embed"):
            async with exporter:
                await asyncio.wait_for(exporter.wait_ready(), 30)
                async with served(exporter) as url:
                    text = await scrape(url)
        got = samples(text)
        assert got[series("memcached_memory_limit_bytes", "good")] == 192 * 2**20
        assert got[series(SPEC_SIZE, "no-memory-a")] == 3  # the config's series of the same object stay
        assert 'memcached_memory_limit_bytes{memcached="no-memory' not in text
        label = f"{__name__}.test_a_generator_that_raises_or_returns_a_non_number_is_counted_and_never_breaks_the_scrape.<locals>.memory_limit"  # noqa: E501
        assert (
            got[("panopticon_embed_generator_errors_total", (("generator", label), ("reason", "raised")))]
            == 2
        )
        assert (
            got[
                (
                    "panopticon_embed_generator_errors_total",
                    (("generator", label), ("reason", "not_a_number")),
                )
            ]
            == 1
        )
        raised = [r.getMessage() for r in caplog.records if "KeyError" in r.getMessage()]
        assert len(raised) == 1, raised  # rate-limited: the second object's failure is counted, not logged
        assert "Memcached default/no-memory-" in raised[0]
        promtool_accepts(text)

    aio.run(main())


def test_start_twice_stop_before_start_and_restart(sim: tuple[SimThread, str], tmp_path: Path) -> None:
    st, kubeconfig = sim
    st.call(st.sim.create, memcached("sessions"))

    async def main() -> None:
        exporter = Exporter(configs=[CONFIG], kubeconfig=kubeconfig)
        await exporter.stop()  # before start: nothing to do
        with pytest.raises(ExporterError, match=r"^Exporter.wait_ready\(\): not started$"):
            await exporter.wait_ready()
        await exporter.start()
        with pytest.raises(
            ExporterError, match=r"^Exporter.start\(\): already started \(call stop\(\) first\)$"
        ):
            await exporter.start()
        await asyncio.wait_for(exporter.wait_ready(), 30)
        await exporter.stop()
        await exporter.stop()
        assert not exporter.ready
        async with exporter, served(exporter) as url:  # started again: a fresh sync
            await asyncio.wait_for(exporter.wait_ready(), 30)
            assert samples(await scrape(url))[series(SPEC_SIZE, "sessions")] == 3
        missing = Exporter(configs=[CONFIG], kubeconfig=str(tmp_path / "nope"))
        with pytest.raises(ExporterError, match=r"^Exporter.start\(\): --kubeconfig .*/nope: no such file$"):
            await missing.start()
        with pytest.raises(
            ExporterError, match=r"^generators: key 'Memcached' is not an \(apiVersion, kind\) pair$"
        ):
            Exporter(generators={"Memcached": print})  # type: ignore[dict-item]

    aio.run(main())


def test_only_the_namespaces_asked_for_are_watched_and_a_kind_served_later_is_picked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kinds, "RESOLVE_RETRY", 0.2)
    monkeypatch.setattr(embed, "RESOLVE_RETRY", 0.2)
    with SimThread() as st:
        kubeconfig = str(st.server.write_kubeconfig(tmp_path / "kubeconfig"))

        async def main() -> None:
            exporter = Exporter(configs=[CONFIG], namespaces=["team-a", "team-b"], kubeconfig=kubeconfig)
            async with exporter, served(exporter) as url:
                # The CRD is not installed: the kind counts as synced (nothing to show).
                await asyncio.wait_for(exporter.wait_ready(), 30)
                assert 'kind_served{kind="cache.example.com/v1/Memcached"} 0' in await scrape(url)
                st.call(st.sim.create, dict(CRD))
                for namespace in ("team-a", "team-b", "default"):
                    st.call(st.sim.create, memcached(f"in-{namespace}", namespace=namespace))

                async def picked_up() -> None:
                    text = await scrape(url)
                    assert 'memcached="in-team-a"' in text and 'memcached="in-team-b"' in text

                await eventually(picked_up)
                assert "in-default" not in await scrape(url)

        aio.run(main())


def _explode(env: Any, args: list[Any]) -> int:
    if args[0] == "boom":
        raise RuntimeError("injected fault for boom")
    return 1


EXPLOSIVE_CONFIG: dict[str, Any] = {
    "apiVersion": "metrics.appscode.com/v1alpha1",
    "kind": "MetricsConfiguration",
    "metadata": {"name": "explosive"},
    "spec": {
        "targetRef": {"apiVersion": API_VERSION, "kind": KIND},
        "metrics": [
            {"name": "explosive", "help": "h", "type": "gauge",
             "params": [{"key": "name", "valuePath": ".metadata.name"}],
             "metricValue": {"valueFromExpression": "explode(name)"}},
        ],
    },
}  # fmt: skip


def test_a_program_that_raises_costs_its_own_series_and_the_other_configs_of_the_kind_render(
    sim: tuple[SimThread, str], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The library renders through the same isolation boundary as the shard."""
    monkeypatch.setitem(FUNCTIONS, "explode", Function("explode", 1, 1, _explode, pure=False))
    st, kubeconfig = sim
    for name in ("boom", "calm", "boom-not"):
        st.call(st.sim.create, memcached(name))

    async def main() -> None:
        exporter = Exporter(configs=[CONFIG, EXPLOSIVE_CONFIG], kubeconfig=kubeconfig)
        with caplog.at_level(logging.WARNING, logger="panopticon.embed"):
            async with exporter:
                await asyncio.wait_for(exporter.wait_ready(), 30)
                st.call(st.sim.create, memcached("later", size=5))
                async with served(exporter) as url:

                    async def later_rendered() -> None:
                        assert 'memcached="later"' in await scrape(url)

                    await eventually(later_rendered)
                    text = await scrape(url)
        got = samples(text)
        for name in ("boom", "calm", "boom-not"):
            assert got[series(SPEC_SIZE, name)] == 3
        assert got[series(SPEC_SIZE, "later")] == 5
        explosive = "cache_example_com_memcached_explosive"
        assert series(explosive, "boom") not in got
        assert got[series(explosive, "calm")] == 1 and got[series(explosive, "later")] == 1
        errors = ("panopticon_embed_render_errors_total", (("config", "explosive"), ("family", explosive)))
        assert got[errors] == 1
        logged = [r.getMessage() for r in caplog.records if "RuntimeError" in r.getMessage()]
        assert (
            len(logged) == 1
            and "unexpected RuntimeError while rendering: injected fault for boom" in logged[0]
        )
        promtool_accepts(text)

    aio.run(main())
