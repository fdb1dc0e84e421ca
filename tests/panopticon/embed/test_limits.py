"""Series caps in the library: `spec.limits.series` and `Exporter(max_series_per_config=...)`.

The exporter serves what the offline render with the same caps gives (the objects
first in uid-hash order), other configs of the kind keep every series, a delete
lets the next object in, and the self-metric counts what is left out.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesim import SimThread
from panopticon._embed.configs import load
from panopticon.embed import Exporter, ExporterError
from panopticon.render.offline import render_exposition
from panopticon.sharding.limits import order_key
from tests.panopticon.embed.support import API_VERSION, CRD, KIND, eventually, memcached, scrape, served


def config(name: str, limits: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "targetRef": {"apiVersion": API_VERSION, "kind": KIND},
        "metrics": [
            {
                "name": f"{name}_size",
                "help": "h",
                "type": "gauge",
                "metricValue": {"valueFromPath": ".spec.size"},
            },
            {
                "name": f"{name}_memory",
                "help": "h",
                "type": "gauge",
                "metricValue": {"valueFromPath": ".spec.memoryMB"},
            },
        ],
    }
    if limits is not None:
        spec["limits"] = limits
    return {"apiVersion": "metrics.appscode.com/v1alpha1", "kind": "MetricsConfiguration",
            "metadata": {"name": name}, "spec": spec}  # fmt: skip


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[tuple[SimThread, str]]:
    with SimThread() as st:
        st.call(st.sim.create, dict(CRD))
        yield st, str(st.server.write_kubeconfig(tmp_path / "kubeconfig"))


def lines(text: str) -> collections.Counter[str]:
    return collections.Counter(
        line for line in text.splitlines() if line.startswith("cache_example_com_memcached_")
    )


def offline(
    configs: list[dict[str, Any]], objects: list[dict[str, Any]], cap: int | None
) -> collections.Counter[str]:
    loaded = load(configs)
    return lines(
        render_exposition(loaded.resolution, objects, max_series_per_config=cap, order=order_key)
        .to_bytes()
        .decode()
    )


def test_the_exporter_serves_the_capped_offline_render(sim: tuple[SimThread, str]) -> None:
    st, kubeconfig = sim
    for i in range(30):
        st.call(st.sim.create, memcached(f"m{i}", size=i))
    configs = [config("capped", {"series": 16}), config("global")]  # 8 objects; the global cap: 12

    async def main() -> None:
        exporter = Exporter(configs=configs, kubeconfig=kubeconfig, max_series_per_config=24)
        await exporter.start()
        async with served(exporter) as url:
            await asyncio.wait_for(exporter.wait_ready(), 30)

            async def matches() -> None:
                objects = st.call(st.sim.list_objects, API_VERSION, KIND, namespace="default")
                want = offline(configs, objects, 24)
                text = await scrape(url)
                assert lines(text) == want
                assert (
                    sum(1 for line in want if line.startswith("cache_example_com_memcached_capped_size")) == 8
                )
                assert (
                    sum(1 for line in want if line.startswith("cache_example_com_memcached_global_size"))
                    == 12
                )
                assert 'panopticon_embed_series_dropped{config="capped"} 44.0' in text
                assert 'panopticon_embed_series_dropped{config="global"} 36.0' in text

            await eventually(matches)
            served_names = {
                line.split('memcached="', 1)[1].split('"', 1)[0]
                for line in lines(await scrape(url))
                if line.startswith("cache_example_com_memcached_capped_size")
            }
            gone = sorted(served_names)[0]
            st.call(st.sim.delete, API_VERSION, KIND, gone, namespace="default")

            async def readmitted() -> None:
                objects = st.call(st.sim.list_objects, API_VERSION, KIND, namespace="default")
                text = await scrape(url)
                assert lines(text) == offline(configs, objects, 24)
                assert f'memcached="{gone}"' not in text

            await eventually(readmitted)
        await exporter.stop()

    asyncio.run(main())


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True])
def test_a_bad_global_cap_is_refused_with_its_name(bad: Any) -> None:
    with pytest.raises(ExporterError, match="max_series_per_config"):
        Exporter(configs=[], max_series_per_config=bad)
