"""Joined labels in the library: an Exporter on the test's loop, the simulator as the cluster.

The Pod config of issue 17 (team from the Namespace, zone from the Node, deployment
from the owner chain): the library watches the related kinds, and a relabelled
Namespace or Node shows on its Pods' series within 5 seconds, and a Namespace
relabelled into a namespaceSelector brings its Pods' series."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from kubesim import SimThread
from panopticon.embed import Exporter
from tests.panopticon.embed.support import eventually, samples, scrape, served
from tests.shard.test_joins_sharded import CONFIG, SELECTED, pod, related
from tests.support import aio

INFO = "kube_pod_info"


def test_the_library_joins_and_re_renders_when_a_namespace_or_node_changes(tmp_path: Path) -> None:
    with SimThread() as st:
        for obj in [*related(), *(pod(i) for i in range(6))]:
            st.call(st.sim.create, obj)
        kubeconfig = str(st.server.write_kubeconfig(tmp_path / "kubeconfig"))

        def labels_of(text: str) -> dict[str, dict[str, str]]:
            return {dict(labels)["pod"]: dict(labels) for (name, labels) in samples(text) if name == INFO}

        async def main() -> None:
            exporter = Exporter(configs=[CONFIG, SELECTED], kubeconfig=kubeconfig)
            await exporter.start()
            async with served(exporter) as url:
                await asyncio.wait_for(exporter.wait_ready(), 30)

                async def joined() -> None:
                    text = await scrape(url)
                    got = labels_of(text)
                    assert set(got) == {f"p{i}" for i in range(6)}
                    assert got["p1"] == {
                        "pod": "p1",
                        "namespace": "shop",
                        "team": "a",
                        "zone": "z2",
                        "tier": "front",
                    }
                    assert got["p3"] == {"pod": "p3", "namespace": "lab", "zone": "z2"}
                    assert "zone" not in got["p0"]  # its Node does not exist
                    assert "kube_pod_selected" not in text

                await eventually(joined)
                started = time.monotonic()
                st.call(st.sim.patch, "v1", "Namespace", "shop", {"metadata": {"labels": {"team": "b"}}})
                st.call(st.sim.patch, "v1", "Node", "n2", {"metadata": {"labels": {"zone": "z7"}}})
                st.call(st.sim.patch, "v1", "Namespace", "lab", {"metadata": {"labels": {"stage": "on"}}})

                async def changed() -> None:
                    text = await scrape(url)
                    got = labels_of(text)
                    assert got["p1"]["team"] == "b" and got["p2"]["team"] == "b"
                    assert got["p1"]["zone"] == "z7" and got["p3"]["zone"] == "z7"
                    assert got["p2"]["zone"] == "z1"
                    staged = {
                        dict(labels)["pod"] for (name, labels) in samples(text) if name == "kube_pod_selected"
                    }
                    assert staged == {"p0", "p3"}  # the Pods of namespace lab, now selected

                await eventually(changed, within=5)
                assert time.monotonic() - started < 5
            await exporter.stop()

        aio.run(main())
