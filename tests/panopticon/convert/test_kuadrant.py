"""Kuadrant's gateway-api-state-metrics end to end: its CRS config, converted, served by
Panopticon from the simulator, meets the assertions of its own e2e test.

As Kuadrant's CI does with kube-state-metrics: install the CRDs, apply the test
objects (then their status, through the status subresource), run the exporter with
the config, scrape `/metrics`, and assert what `tests/e2e/main_test.go` asserts
(read from that file by `kuadrant_assertions`). Here the exporter is `panopticon run`
(a shard and the aggregator, over a real Redis) fed the MetricsConfigurations that
`panopticon convert --from ksm-crs` made of `config/kuadrant/custom-resource-state.yaml`.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kubesim import SimProcess
from panopticon.commands import run as run_command
from panopticon.config.documents import read_documents
from panopticon.convert.ksmcrs import convert_ksm_crs
from tests.panopticon.convert.helpers import KUADRANT, kuadrant_crds
from tests.panopticon.convert.kuadrant_assertions import check, read_assertions
from tests.support import aio
from tests.support.redis_server import RedisServer, free_port

CONFIG = KUADRANT / "kuadrant-custom-resource-state.yaml"
OBJECTS = sorted((KUADRANT / "objects").glob("*.yaml"))
ASSERTIONS = read_assertions((KUADRANT / "expected" / "main_test.go").read_text())
LAST_FAMILY = "kuadrant_dnshealthcheckprobe_healthy_status"


def test_every_assertion_of_main_test_go_is_read() -> None:
    """351 assertion statements (two of them loops over a family's series)."""
    source = (KUADRANT / "expected" / "main_test.go").read_text()
    statements = source.count("expectEqual(t,") + source.count("expectValidTimestampInPast(t,")
    assert len(ASSERTIONS) == statements == 351


def cluster_operations() -> list[dict[str, Any]]:
    """CRDs, then objects in `default`, then each object's status (the subresource)."""
    crds = [copy.deepcopy(crd) for crd in kuadrant_crds()]
    objects = [doc.body for path in OBJECTS for doc in read_documents(str(path))]
    for obj in objects:
        obj["metadata"].setdefault("namespace", "default")
    ops = [{"op": "create", "object": crd} for crd in crds]
    ops += [{"op": "create", "object": {k: v for k, v in obj.items() if k != "status"}} for obj in objects]
    ops += [{"op": "status", "object": obj} for obj in objects if "status" in obj]
    return ops


def converted_configs() -> list[dict[str, Any]]:
    conversion = convert_ksm_crs([str(CONFIG)], crds=list(kuadrant_crds()))
    assert not conversion.errors, "\n".join(map(str, conversion.errors))
    return [config.body for config in conversion.configs]


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        return str(response.read().decode())


def serve_and_scrape(sim: SimProcess, redis_url: str) -> str:
    """Run `panopticon run` against the simulator until its first sync; one scrape."""
    ports = [free_port() for _ in range(3)]
    parser = argparse.ArgumentParser()
    run_command.add_arguments(parser)
    args = parser.parse_args(
        ["--kubeconfig", str(sim.kubeconfig_path), "--host", "127.0.0.1", "--port", str(ports[0]),
         "--telemetry-port", str(ports[1]), "--shard-port", str(ports[2]), "--flush-interval", "0.02",
         "--redis", redis_url]
    )  # fmt: skip

    async def main() -> str:
        stop = asyncio.Event()
        task = asyncio.create_task(run_command.run_embedded(args, stop))
        try:
            text = ""
            for _ in range(600):
                try:
                    ready = f"http://127.0.0.1:{ports[2]}/readyz"
                    await asyncio.to_thread(urllib.request.urlopen, ready, None, 1)
                    text = await asyncio.to_thread(scrape, ports[0])
                    if LAST_FAMILY in text:
                        break
                except OSError:
                    pass
                await asyncio.sleep(0.1)
            return text
        finally:
            stop.set()
            await task

    return aio.run(main())


@pytest.fixture(scope="module")
def exposition() -> str:
    redis = RedisServer()
    redis.start()
    try:
        with SimProcess(["--seed", "1"]) as sim:
            results = sim.admin.bulk(cluster_operations())["results"]
            assert all(r["code"] < 300 for r in results), [r for r in results if r["code"] >= 300]
            configs = [{"op": "create", "object": body} for body in converted_configs()]
            results = sim.admin.bulk(configs)["results"]
            assert all(r["code"] < 300 for r in results), results
            return serve_and_scrape(sim, redis.url)
    finally:
        redis.close()


def test_panopticon_serves_what_kuadrants_e2e_test_asserts(exposition: str) -> None:
    ran, failures = check(ASSERTIONS, exposition)
    assert failures == [], "\n".join(failures)
    # 349 single assertions, plus one per series in the two loops (4 features, 2 owners).
    assert ran == 355


def test_the_served_exposition_is_valid_with_each_family_once(exposition: str) -> None:
    names = [family.name for family in text_string_to_metric_families(exposition)]
    assert len(names) == len(set(names))
    assert sum(name.startswith(("gatewayapi_", "kuadrant_")) for name in names) >= 40


def test_the_assertions_fail_on_a_wrong_exposition(exposition: str) -> None:
    """The check is not vacuous: a label changed, or a series missing, is caught."""
    _, failures = check(ASSERTIONS, exposition.replace('type="Accepted"', 'type="Refused"'))
    assert len(failures) == 2  # the Gateway's and the GatewayClass' first condition
    lines = [line for line in exposition.splitlines() if not line.startswith("kuadrant_dnsrecord_status{")]
    _, failures = check(ASSERTIONS, "\n".join(lines))
    assert any("kuadrant_dnsrecord_status has no series [0]" in f for f in failures)


def test_the_converted_configs_are_written_to_files_and_read_back(tmp_path: Path) -> None:
    from panopticon.convert.output import write_files
    from panopticon.render.loading import load_configs

    conversion = convert_ksm_crs([str(CONFIG)], crds=list(kuadrant_crds()))
    written = write_files(conversion.configs, str(tmp_path))
    assert len(written) == 14
    loaded = load_configs(written)
    assert loaded.error_count == 0 and len(loaded.resolution.programs) == 14
