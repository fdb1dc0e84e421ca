"""The library serves aggregate families as `panopticon render` does, through changes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesim import SimThread
from panopticon.embed import Exporter
from panopticon.render.families import resolve_families
from panopticon.render.offline import render_exposition
from panopticon.render.program import compile_config
from tests.panopticon.embed.support import API_VERSION, CRD, KIND, eventually, memcached, scrape, served

CONFIG: dict[str, Any] = {
    "apiVersion": "metrics.appscode.com/v1alpha1",
    "kind": "MetricsConfiguration",
    "metadata": {"name": "memcached-totals"},
    "spec": {
        "targetRef": {"apiVersion": API_VERSION, "kind": KIND},
        "metrics": [
            {
                "name": "size_total",
                "help": "Replicas asked for, per namespace.",
                "type": "gauge",
                "aggregate": {"function": "sum", "by": ["namespace"]},
                "metricValue": {"valueFromPath": ".spec.size"},
            },
            {
                "name": "count",
                "help": "Memcacheds.",
                "type": "gauge",
                "aggregate": {"function": "count"},
                "metricValue": {"value": 1},
            },
        ],
    },
}


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[tuple[SimThread, str]]:
    with SimThread() as st:
        st.call(st.sim.create, dict(CRD))
        yield st, str(st.server.write_kubeconfig(tmp_path / "kubeconfig"))


def offline(objects: list[dict[str, Any]]) -> list[str]:
    compiled = compile_config(CONFIG)
    assert compiled.program is not None, compiled.errors
    text = render_exposition(resolve_families([compiled.program]), objects).to_bytes().decode()
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_the_library_serves_the_offline_renders_aggregates_through_creates_updates_and_deletes(
    sim: tuple[SimThread, str],
) -> None:
    st, kubeconfig = sim
    objects = {
        ("default", "a"): memcached("a", size=3),
        ("default", "b"): memcached("b", size=0.5),
        ("team", "c"): memcached("c", "team", size=4),
    }
    for obj in objects.values():
        st.call(st.sim.create, obj)

    async def main() -> None:
        exporter = Exporter(configs=[CONFIG], kubeconfig=kubeconfig)
        await exporter.start()
        async with served(exporter) as url:
            await asyncio.wait_for(exporter.wait_ready(), 30)

            async def matches() -> None:
                text = await scrape(url)
                got = [line for line in text.splitlines() if line.startswith("cache_example_com_memcached_")]
                assert got == offline(list(objects.values()))

            await eventually(matches)
            assert 'cache_example_com_memcached_size_total{namespace="default"} 3.5' in await scrape(url)
            st.call(st.sim.patch, API_VERSION, KIND, "a", {"spec": {"size": 7}}, namespace="default")
            objects["default", "a"]["spec"]["size"] = 7
            st.call(st.sim.delete, API_VERSION, KIND, "c", namespace="team")
            del objects["team", "c"]
            await eventually(matches)
            assert "cache_example_com_memcached_count 2" in await scrape(url)
        await exporter.stop()

    asyncio.run(main())
