"""The resource functions against resource-metrics' expected figures, the example
corpus, the semantics we chose where upstream is unclear, and hostile input."""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panopticon.config.documents import read_documents
from panopticon.errors import QuantityError, ResourceCalcError
from panopticon.render.expr import resources
from panopticon.render.expr.resources import (
    CALCULATORS,
    app_resource_limits,
    app_resource_requests,
    resource_mode,
    resource_replicas,
    resource_uses_tls,
    summarize,
    total_resource_limits,
    total_resource_requests,
)

EXAMPLES = Path(str(files("panopticon") / "data" / "examples"))
OBJECTS = EXAMPLES / "objects"
MI, GI = 2**20, 2**30

Figures = tuple[float, float, float | None]
"""cpu cores, memory bytes, storage bytes (None: not asserted upstream)."""


class Expected(NamedTuple):
    path: str
    replicas: int
    mode: str
    total_requests: Figures
    total_limits: Figures
    app_requests: Figures
    app_limits: Figures


def row(path: str, replicas: int, mode: str, *figures: tuple[float, int, int | None]) -> Expected:
    """A row as the expected file writes it: cores, Mi of memory, Gi of storage."""
    converted = [(cpu, mem * MI, None if gi is None else gi * GI) for cpu, mem, gi in figures]
    return Expected(path, replicas, mode, *converted)


# Every row of expected/resource-metrics-expected.md: total requests, total limits,
# app requests, app limits.
EXPECTED = [
    row("deployment/resource-metrics-deployment.yaml", 3, "",
        (0.75, 192, None), (1.5, 384, None), (0.75, 192, None), (1.5, 384, None)),
    row("statefulset/resource-metrics-statefulset.yaml", 3, "",
        (0.75, 192, None), (1.5, 384, None), (0.75, 192, None), (1.5, 384, None)),
    row("pod/resource-metrics-pod.yaml", 1, "",
        (0.5, 128, None), (1.0, 256, None), (0.5, 128, None), (1.0, 256, None)),
    row("elasticsearch/resource-metrics-v1-combined.yaml", 3, "Combined",
        (1.5, 1500, 6), (1.8, 1800, 6), (1.2, 1200, 6), (1.35, 1350, 6)),
    row("elasticsearch/resource-metrics-v1-topology.yaml", 3, "Dedicated",
        (1.5, 1500, 6), (1.8, 1800, 6), (1.2, 1200, 6), (1.35, 1350, 6)),
    row("kafka/resource-metrics-v1-combined.yaml", 3, "Combined",
        (1.5, 1500, 6), (1.8, 1800, 6), (1.2, 1200, 6), (1.35, 1350, 6)),
    row("kafka/resource-metrics-v1-topology.yaml", 6, "Dedicated",
        (2.7, 2700, 12), (3.3, 3300, 12), (2.1, 2100, 12), (2.4, 2400, 12)),
    row("mongodb/resource-metrics-v1-standalone.yaml", 1, "Standalone",
        (0.5, 500, 2), (0.6, 600, 2), (0.4, 400, 2), (0.45, 450, 2)),
    row("mongodb/resource-metrics-v1-replicaset.yaml", 3, "ReplicaSet",
        (2.4, 2400, 6), (2.85, 2850, 6), (1.2, 1200, 6), (1.35, 1350, 6)),
    row("mongodb/resource-metrics-v1-sharded.yaml", 11, "Sharded",
        (9.7, 9700, 18), (11.25, 11250, 18), (5.9, 5900, 18), (6.45, 6450, 18)),
    row("mysql/resource-metrics-v1-standalone.yaml", 1, "Standalone",
        (0.5, 500, 2), (0.6, 600, 2), (0.4, 400, 2), (0.45, 450, 2)),
    row("mysql/resource-metrics-v1-group-replication.yaml", 3, "GroupReplication",
        (2.4, 2400, 6), (2.85, 2850, 6), (1.2, 1200, 6), (1.35, 1350, 6)),
    row("mysql/resource-metrics-v1-innodb.yaml", 4, "InnoDBCluster",
        (2.9, 2900, 6), (3.4, 3400, 6), (1.7, 1700, 6), (1.9, 1900, 6)),
    row("postgres/resource-metrics-v1-standlone.yaml", 1, "Standalone",
        (0.5, 500, 2), (0.6, 600, 2), (0.4, 400, 2), (0.45, 450, 2)),
    row("postgres/resource-metrics-v1-hot-standby.yaml", 3, "Cluster",
        (2.4, 2400, 6), (2.85, 2850, 6), (1.2, 1200, 6), (1.35, 1350, 6)),
    row("redis/resource-metrics-v1-standalone.yaml", 1, "Standalone",
        (0.5, 500, 2), (0.6, 600, 2), (0.4, 400, 2), (0.45, 450, 2)),
    row("redis/resource-metrics-v1-cluster.yaml", 6, "Cluster",
        (3.0, 3000, 12), (3.6, 3600, 12), (2.4, 2400, 12), (2.7, 2700, 12)),
]  # fmt: skip


def load(path: str) -> dict[str, Any]:
    return read_documents(str(OBJECTS / path))[0].body


def figures_of(mapping: resources.ResourceFigures) -> tuple[float, float, float]:
    return mapping["cpu"], mapping["memory"], mapping["storage"]


def matches(actual: tuple[float, float, float], expected: Figures) -> bool:
    return actual[:2] == expected[:2] and (expected[2] is None or actual[2] == expected[2])


@pytest.mark.parametrize("row", EXPECTED, ids=[row.path for row in EXPECTED])
def test_every_resource_metrics_test_object_gives_the_upstream_figures(row: Expected) -> None:
    obj = load(row.path)
    summary = summarize(obj)
    assert summary.replicas == row.replicas
    assert summary.mode == row.mode
    assert matches(figures_of(summary.total_requests), row.total_requests)
    assert matches(figures_of(summary.total_limits), row.total_limits)
    assert matches(figures_of(summary.app_requests), row.app_requests)
    assert matches(figures_of(summary.app_limits), row.app_limits)


@pytest.mark.parametrize("row", EXPECTED, ids=[row.path for row in EXPECTED])
def test_the_single_figure_functions_agree_with_the_summary(row: Expected) -> None:
    obj = load(row.path)
    summary = summarize(obj)
    assert resource_replicas(obj) == row.replicas
    assert resource_mode(obj) == row.mode
    assert resource_uses_tls(obj) is summary.uses_tls
    for index, rtype in enumerate(("cpu", "memory", "storage")):
        assert total_resource_requests(obj, rtype) == figures_of(summary.total_requests)[index]
        assert total_resource_limits(obj, rtype) == figures_of(summary.total_limits)[index]
        assert app_resource_requests(obj, rtype) == figures_of(summary.app_requests)[index]
        assert app_resource_limits(obj, rtype) == figures_of(summary.app_limits)[index]


def _md_rows() -> list[list[str]]:
    text = (EXAMPLES / "expected" / "resource-metrics-expected.md").read_text()
    rows = [line.strip("|").split("|") for line in text.splitlines() if line.startswith("| objects/")]
    return [[cell.strip() for cell in row] for row in rows]


def test_the_table_above_covers_every_row_of_the_expected_file_with_its_numbers() -> None:
    rows = _md_rows()
    assert len(rows) == len(EXPECTED)
    by_path = {row.path: row for row in EXPECTED}
    for cells in rows:
        row = by_path[cells[0].removeprefix("objects/")]
        assert int(cells[1]) == row.replicas
        assert cells[2].removeprefix("DBMode").replace("(empty)", "") == row.mode
        for column, figures in ((7, row.total_requests), (8, row.total_limits)):
            numbers = [None if part.strip() == "-" else float(part) for part in cells[column].split("/")]
            assert numbers == list(figures)


def test_native_kinds_report_statefulset_claims_as_storage_and_others_none() -> None:
    assert total_resource_requests(load("statefulset/resource-metrics-statefulset.yaml"), "storage") == 3 * GI
    assert app_resource_limits(load("statefulset/resource-metrics-statefulset.yaml"), "storage") == 3 * GI
    assert total_resource_requests(load("deployment/resource-metrics-deployment.yaml"), "storage") == 0
    assert total_resource_requests(load("pod/resource-metrics-pod.yaml"), "storage") == 0


def _kubedb_objects() -> list[str]:
    found = []
    for path in sorted(OBJECTS.rglob("*.yaml")):
        api_version = read_documents(str(path))[0].body.get("apiVersion", "")
        if api_version.rpartition("/")[0].endswith("kubedb.com"):
            found.append(str(path.relative_to(OBJECTS)))
    return found


# The KubeDB objects of the corpus that cannot give resource figures, and why. Both
# are old documentation outputs whose container names differ from the operator's.
KUBEDB_RESOURCE_ERRORS = {
    "mongodb/kubedb-docs-guide-clustering-standalone-mg-alone-status.yaml": (
        "MongoDB demo/mg-alone: spec.podTemplate.spec.containers: no container named 'mongodb'"
    ),
    "redissentinel/kubedb-docs-guide-sentinel-status.yaml": (
        "RedisSentinel demo/sen-demo: spec.podTemplate.spec.containers: no container named 'redissentinel'"
    ),
}
# KubeDB kinds without a calculator: operations, schemas, catalog versions.
KUBEDB_UNSUPPORTED = ("MongoDBOpsRequest", "PostgresOpsRequest", "MongoDBDatabase", "MongoDBVersion")


@pytest.mark.parametrize("path", _kubedb_objects())
def test_every_kubedb_example_object_gets_figures_or_a_clear_error(path: str) -> None:
    obj = load(path)
    if obj["kind"] in KUBEDB_UNSUPPORTED:
        with pytest.raises(ResourceCalcError, match=f"no resource calculator for {obj['kind']} "):
            summarize(obj)
        return
    summary = summarize(obj)
    assert summary.replicas >= 1
    assert summary.mode
    if path in KUBEDB_RESOURCE_ERRORS:
        assert summary.totals is None
        with pytest.raises(ResourceCalcError) as caught:
            total_resource_requests(obj, "cpu")
        assert str(caught.value) == KUBEDB_RESOURCE_ERRORS[path]
        return
    for figures in (summary.total_requests, summary.total_limits, summary.app_requests, summary.app_limits):
        assert all(math.isfinite(value) and value >= 0 for value in figures.values())
    assert summary.total_requests["cpu"] >= summary.app_requests["cpu"]
    assert summary.total_limits["memory"] >= summary.app_limits["memory"]


def test_the_corpus_has_kubedb_objects_of_every_family_and_the_expected_failures() -> None:
    paths = _kubedb_objects()
    assert set(KUBEDB_RESOURCE_ERRORS) <= set(paths)
    kinds = {load(path)["kind"] for path in paths}
    assert {"MongoDB", "Postgres", "MySQL", "Redis", "RedisSentinel", "Elasticsearch", "Kafka"} <= kinds


@pytest.mark.parametrize(
    ("path", "uses_tls"),
    [
        ("mongodb/kubedb-docs-examples-tls-mg-replicaset-ssl.yaml", True),
        ("mongodb/resource-metrics-v1-replicaset.yaml", False),
        ("mysql/kubedb-docs-examples-tls-tls-group.yaml", True),
        ("redis/kubedb-docs-examples-tls-rd-cluster-ssl.yaml", True),
        ("kafka/kubedb-docs-examples-tls-kafka-prod-tls.yaml", True),
        ("elasticsearch/kubedb-docs-examples-x-pack-ssl-elasticsearch.yaml", True),
        ("elasticsearch/resource-metrics-v1-combined.yaml", False),
        ("pod/resource-metrics-pod.yaml", False),
    ],
)
def test_tls_is_reported_where_the_object_configures_it(path: str, uses_tls: bool) -> None:
    assert resource_uses_tls(load(path)) is uses_tls


# --- Semantics, on small hand-made objects -------------------------------------------------


def kubedb(kind: str, spec: dict[str, Any], *, version: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": f"kubedb.com/{version}",
        "kind": kind,
        "metadata": {"name": "db", "namespace": "ns"},
        "spec": spec,
    }


def container(
    name: str, requests: dict[str, Any] | None = None, limits: dict[str, Any] | None = None
) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if requests is not None:
        resources["requests"] = requests
    if limits is not None:
        resources["limits"] = limits
    return {"name": name, "resources": resources}


def pod(containers: list[dict[str, Any]], init: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers}
    if init is not None:
        spec["initContainers"] = init
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


def test_a_limit_falls_back_to_the_request_per_resource() -> None:
    obj = pod([container("a", {"cpu": "1", "memory": "1Gi"}, {"memory": "2Gi"})])
    assert total_resource_limits(obj, "cpu") == 1.0
    assert total_resource_limits(obj, "memory") == 2 * GI


def test_requests_do_not_fall_back_to_limits() -> None:
    obj = pod([container("a", None, {"cpu": "2"})])
    assert total_resource_requests(obj, "cpu") == 0.0
    assert total_resource_limits(obj, "cpu") == 2.0


def test_a_pod_needs_the_larger_of_its_containers_and_its_largest_init_container() -> None:
    obj = pod(
        [container("a", {"cpu": "100m", "memory": "1Gi"})],
        init=[
            container("i1", {"cpu": "2", "memory": "10Mi"}),
            container("i2", {"cpu": "1", "memory": "20Mi"}),
        ],
    )
    assert total_resource_requests(obj, "cpu") == 2.0  # init 2 > runtime 0.1
    assert total_resource_requests(obj, "memory") == GI  # runtime 1Gi > init 20Mi
    assert app_resource_requests(obj, "cpu") == 0.1  # init containers are never application


def test_deployment_and_replicaset_multiply_the_template_by_replicas_defaulting_to_one() -> None:
    template = {"spec": {"containers": [container("a", {"cpu": "250m"})]}}
    for kind in ("Deployment", "ReplicaSet"):
        obj: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": kind,
            "spec": {"replicas": 4, "template": template},
        }
        assert total_resource_requests(obj, "cpu") == 1.0
        del obj["spec"]["replicas"]
        assert resource_replicas(obj) == 1
        assert resource_mode(obj) == ""


def test_a_daemonset_runs_one_pod_per_scheduled_node_from_its_status() -> None:
    template = {"spec": {"containers": [container("a", {"cpu": "250m"})]}}
    obj = {"apiVersion": "apps/v1", "kind": "DaemonSet", "spec": {"template": template}}
    assert resource_replicas(obj) == 0
    assert total_resource_requests(obj, "cpu") == 0.0
    obj["status"] = {"desiredNumberScheduled": 5}
    assert resource_replicas(obj) == 5
    assert total_resource_requests(obj, "cpu") == 1.25


def test_jobs_and_cronjobs_count_their_parallelism() -> None:
    template = {"spec": {"containers": [container("a", {"memory": "1Gi"})]}}
    job: dict[str, Any] = {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": template}}
    assert resource_replicas(job) == 1
    job["spec"]["parallelism"] = 3
    assert total_resource_requests(job, "memory") == 3 * GI
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "spec": {"jobTemplate": {"spec": job["spec"]}}}
    assert resource_replicas(cron) == 3
    assert app_resource_requests(cron, "memory") == 3 * GI
    assert resource_replicas({"apiVersion": "batch/v1", "kind": "CronJob", "spec": {}}) == 1


def test_older_kubedb_objects_give_the_database_resources_outside_the_container_list() -> None:
    obj = kubedb(
        "MongoDB",
        {
            "replicas": 2,
            "replicaSet": {"name": "rs0"},
            "podTemplate": {"spec": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}},
            "storage": {"resources": {"requests": {"storage": "1Gi"}}},
        },
        version="v1alpha2",
    )
    summary = summarize(obj)
    assert (summary.replicas, summary.mode) == (2, "ReplicaSet")
    assert figures_of(summary.app_requests) == (1.0, 2 * GI, 2 * GI)
    assert figures_of(summary.total_limits) == (1.0, 2 * GI, 2 * GI)


def test_an_object_without_a_pod_template_still_reports_replicas_and_storage() -> None:
    summary = summarize(load("mongodb/kubedb-docs-examples-clustering-mongo-sharding.yaml"))
    assert (summary.replicas, summary.mode) == (11, "Sharded")
    assert figures_of(summary.total_requests) == (0.0, 0.0, 9 * GI)  # 2 x 3 shard pods + 3 config servers


def test_sidecars_and_the_exporter_count_in_totals_but_not_in_application_figures() -> None:
    spec = {
        "replicas": 2,
        "podTemplate": {
            "spec": {
                "containers": [
                    container("postgres", {"cpu": "1"}),
                    container("pg-coordinator", {"cpu": "200m"}),
                ]
            }
        },
        "monitor": {"prometheus": {"exporter": {"resources": {"requests": {"cpu": "100m"}}}}},
    }
    obj = kubedb("Postgres", spec)
    assert total_resource_requests(obj, "cpu") == 2.6
    assert app_resource_requests(obj, "cpu") == 2.0
    assert resource_mode(obj) == "Cluster"


def test_a_missing_database_container_spoils_only_the_resource_figures() -> None:
    spec = {"replicas": 3, "podTemplate": {"spec": {"containers": [container("sidecar", {"cpu": "1"})]}}}
    obj = kubedb("MariaDB", spec)
    summary = summarize(obj)
    assert (summary.replicas, summary.mode, summary.uses_tls) == (3, "Cluster", False)
    reads: list[Callable[[], object]] = [lambda: summary.total_requests, lambda: summary.app_limits]
    for read in reads:
        with pytest.raises(
            ResourceCalcError,
            match=r"^MariaDB ns/db: spec\.podTemplate\.spec\.containers: no container named 'mariadb'$",
        ):
            read()
    with pytest.raises(ResourceCalcError) as first:
        _ = summary.total_limits
    with pytest.raises(ResourceCalcError) as second:
        _ = summary.total_limits
    assert first.value is not second.value  # a fresh error each time: no traceback pile-up


def test_mongodb_arbiters_and_hidden_members_count_per_replica_set_or_shard() -> None:
    member = {"spec": {"containers": [container("mongodb", {"cpu": "1"})]}}
    spec: dict[str, Any] = {
        "replicaSet": {"name": "rs0"},
        "replicas": 3,
        "podTemplate": member,
        "arbiter": {"podTemplate": {"spec": {"containers": [container("mongodb", {"cpu": "100m"})]}}},
        "hidden": {
            "replicas": 2,
            "podTemplate": member,
            "storage": {"resources": {"requests": {"storage": "1Gi"}}},
        },
    }
    summary = summarize(kubedb("MongoDB", spec))
    assert summary.replicas == 6
    assert figures_of(summary.app_requests) == (5.1, 0.0, 2 * GI)
    del spec["replicaSet"], spec["replicas"], spec["podTemplate"]
    spec["shardTopology"] = {
        "shard": {"shards": 2, "replicas": 3, "podTemplate": member},
        "configServer": {"replicas": 3, "podTemplate": member},
        "mongos": {"replicas": 2, "podTemplate": member},
    }
    summary = summarize(kubedb("MongoDB", spec))
    assert summary.replicas == 6 + 3 + 2 + 2 + 4  # shards, config, mongos, an arbiter and 2 hidden per shard
    assert summary.total_requests["cpu"] == 6 + 3 + 2 + 0.2 + 4
    assert summary.total_requests["storage"] == 4 * GI


def test_a_sharded_mongodb_needs_its_required_counts() -> None:
    obj = kubedb(
        "MongoDB",
        {
            "shardTopology": {
                "shard": {"replicas": 3},
                "configServer": {"replicas": 1},
                "mongos": {"replicas": 1},
            }
        },
    )
    with pytest.raises(
        ResourceCalcError, match=r"^MongoDB ns/db: spec\.shardTopology\.shard\.shards is required$"
    ):
        summarize(obj)


@pytest.mark.parametrize(
    ("cluster", "pods"),
    [({"shards": 4, "replicas": 3}, 12), ({}, 6), ({"master": 3, "replicas": 1}, 6), ({"master": 5}, 10)],
)
def test_redis_cluster_pods_read_either_api_shape_with_its_defaults(
    cluster: dict[str, Any], pods: int
) -> None:
    assert resource_replicas(kubedb("Redis", {"mode": "Cluster", "cluster": cluster})) == pods


@pytest.mark.parametrize(
    ("kind", "spec", "mode"),
    [
        ("Redis", {}, "Standalone"),
        ("Redis", {"mode": "Sentinel", "replicas": 3}, "Sentinel"),
        ("RedisSentinel", {"replicas": 3}, "Cluster"),
        ("Postgres", {"replicas": 1}, "Standalone"),
        ("Postgres", {"replicas": 3, "mode": "RemoteReplica"}, "RemoteReplica"),
        ("MySQL", {"replicas": 3, "topology": {"mode": "SemiSync"}}, "SemiSync"),
        ("MariaDB", {"replicas": 1}, "Standalone"),
        ("PgBouncer", {"replicas": 2}, "Cluster"),
        ("ProxySQL", {}, "Standalone"),
        ("Elasticsearch", {"topology": {}}, "Dedicated"),
        ("Kafka", {"topology": None}, "Combined"),
        ("Solr", {"replicas": 2}, "Combined"),
        ("Druid", {"topology": {"coordinators": {"replicas": 1}}}, "Dedicated"),
    ],
)
def test_each_kind_reports_the_resource_metrics_mode(kind: str, spec: dict[str, Any], mode: str) -> None:
    assert resource_mode(kubedb(kind, spec)) == mode


def test_connect_cluster_is_distributed_beyond_one_worker() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "kafka.kubedb.com/v1alpha1",
        "kind": "ConnectCluster",
        "spec": {"replicas": 3},
    }
    assert (resource_replicas(obj), resource_mode(obj)) == (3, "Distributed")
    obj["spec"]["replicas"] = 1
    assert resource_mode(obj) == "Standalone"


def test_tls_follows_enable_ssl_for_search_and_streaming_kinds_and_spec_tls_for_the_rest() -> None:
    assert resource_uses_tls(kubedb("Kafka", {"enableSSL": True}))
    assert not resource_uses_tls(kubedb("Kafka", {"enableSSL": False, "tls": {"issuerRef": {}}}))
    assert resource_uses_tls(kubedb("RedisSentinel", {"tls": {"issuerRef": {}}}))
    assert not resource_uses_tls(kubedb("Postgres", {"tls": None}))


def test_older_elasticsearch_topology_roles_give_resources_in_the_role_itself() -> None:
    spec = {
        "topology": {
            "master": {"replicas": 3, "resources": {"requests": {"cpu": "500m"}}},
            "data": {
                "replicas": 2,
                "resources": {"requests": {"cpu": "1"}},
                "storage": {"resources": {"requests": {"storage": "10Gi"}}},
            },
        }
    }
    summary = summarize(kubedb("Elasticsearch", spec, version="v1alpha2"))
    assert summary.replicas == 5
    assert figures_of(summary.app_requests) == (3.5, 0.0, 20 * GI)


def test_the_innodb_router_is_application_without_exporter_or_storage() -> None:
    summary = summarize(load("mysql/resource-metrics-v1-innodb.yaml"))
    assert summary.app_requests["cpu"] - summarize(
        load("mysql/resource-metrics-v1-group-replication.yaml")
    ).app_requests["cpu"] == pytest.approx(0.5)


# --- Errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], "expected a Kubernetes object, got a list"),
        ({"kind": "Pod"}, "apiVersion and kind must be strings, got null and a string"),
        ({"apiVersion": "v1", "kind": "ConfigMap"}, "no resource calculator for ConfigMap (v1)"),
        (
            {"apiVersion": "kubedb.com/v1", "kind": "Memcached"},
            "no resource calculator for Memcached (kubedb.com/v1)",
        ),
        (
            kubedb("Postgres", {"replicas": "3"}),
            "Postgres ns/db: spec.replicas: expected an integer, got a string",
        ),
        (
            kubedb("Postgres", {"replicas": 3.0}),
            "Postgres ns/db: spec.replicas: expected an integer, got a number",
        ),
        (
            kubedb("Postgres", {"replicas": 2**31}),
            "Postgres ns/db: spec.replicas: expected an integer in 0..2147483647",
        ),
        (
            kubedb("Postgres", {"replicas": -1}),
            "Postgres ns/db: spec.replicas: expected an integer in 0..2147483647",
        ),
        (kubedb("Redis", {"mode": 3}), "Redis ns/db: spec.mode: expected a string, got a number"),
        (
            kubedb("Kafka", {"enableSSL": "yes"}),
            "Kafka ns/db: spec.enableSSL: expected a boolean, got a string",
        ),
        (
            kubedb("Kafka", {"topology": {"broker": []}}),
            "Kafka ns/db: spec.topology.broker: expected an object, got a list",
        ),
        (
            kubedb("MongoDB", {"podTemplate": "x"}),
            "MongoDB ns/db: spec.podTemplate: expected an object, got a string",
        ),
    ],
)
def test_unusable_input_raises_resource_calc_error_naming_the_field(obj: object, message: str) -> None:
    with pytest.raises(ResourceCalcError) as caught:
        summarize(obj)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("containers", "error", "message"),
    [
        (
            [container("a", {"cpu": "lots"})],
            QuantityError,
            "spec.containers[0].resources.requests.cpu: invalid quantity 'lots'",
        ),
        (
            [container("a", None, {"memory": "1e99"})],
            QuantityError,
            "spec.containers[0].resources.limits.memory: quantity '1e99' has an exponent",
        ),
        (
            [container("a"), container("b", {"cpu": "-1"})],
            ResourceCalcError,
            "spec.containers[1].resources.requests.cpu: a resource quantity cannot be negative",
        ),
        (
            [{"name": "a", "resources": {"requests": ["1"]}}],
            ResourceCalcError,
            "spec.containers[0].resources.requests: expected an object, got a list",
        ),
        (["a"], ResourceCalcError, "spec.containers[0]: expected an object, got a string"),
        (
            [{"resources": 1}],
            ResourceCalcError,
            "spec.containers[0].resources: expected an object, got a number",
        ),
    ],
)
def test_bad_resources_raise_when_read_naming_the_field(
    containers: list[Any], error: type[Exception], message: str
) -> None:
    obj = pod(containers)
    summary = summarize(obj)
    assert summary.replicas == 1
    with pytest.raises(error) as caught:
        app_resource_requests(obj, "cpu")
    assert type(caught.value) is error
    assert str(caught.value).startswith(f"Pod p: {message}")


def test_an_unknown_resource_type_is_an_error() -> None:
    obj = load("pod/resource-metrics-pod.yaml")
    with pytest.raises(ResourceCalcError, match="unknown resource type 'gpu'"):
        total_resource_requests(obj, "gpu")
    with pytest.raises(ResourceCalcError, match="unknown resource type list"):
        app_resource_limits(obj, ["cpu"])  # type: ignore[arg-type]


def test_the_summary_and_its_figures_are_immutable() -> None:
    summary = summarize(load("pod/resource-metrics-pod.yaml"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.replicas = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        summary.total_requests["cpu"] = 0.0  # type: ignore[index]


# --- Hostile input -------------------------------------------------------------------------

KINDS = sorted(CALCULATORS)
API_VERSIONS = {
    "": "v1",
    "apps": "apps/v1",
    "batch": "batch/v1",
    "kubedb.com": "kubedb.com/v1",
    "kafka.kubedb.com": "kafka.kubedb.com/v1alpha1",
}
FIELD_NAMES = [
    "spec", "status", "metadata", "replicas", "podTemplate", "template", "containers", "initContainers",
    "name", "resources", "requests", "limits", "cpu", "memory", "storage", "shardTopology", "shard", "shards",
    "configServer", "mongos", "replicaSet", "arbiter", "hidden", "topology", "mode", "innoDBCluster",
    "router", "cluster", "master", "monitor", "prometheus", "exporter", "tls", "enableSSL",
    "volumeClaimTemplates", "jobTemplate", "parallelism", "desiredNumberScheduled", "broker", "controller",
    "data", "mongodb", "redis",
]  # fmt: skip
"""Keys the calculators read, so random documents reach past the first level."""
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.sampled_from([2**31, 10**30, -1, 0, 1, 3]),
    st.integers(min_value=4400, max_value=4500).map(lambda digits: 10**digits),  # beyond what str() prints
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        ["500m", "1Gi", "-1", "1e999", "abc", "", "Cluster", "InnoDBCluster", "mongodb", "1" * 70]
    ),
    st.text(max_size=12),
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=30,
)
RTYPES = st.sampled_from(["cpu", "memory", "storage", "gpu"])


def evaluate_all(obj: object, rtype: str) -> None:
    """Call every function; each must return its type or raise one of ours."""
    calls: list[tuple[Callable[[], object], type | tuple[type, ...]]] = [
        (lambda: resource_replicas(obj), int),
        (lambda: resource_mode(obj), str),
        (lambda: resource_uses_tls(obj), bool),
        (lambda: total_resource_requests(obj, rtype), float),
        (lambda: total_resource_limits(obj, rtype), float),
        (lambda: app_resource_requests(obj, rtype), float),
        (lambda: app_resource_limits(obj, rtype), float),
    ]
    for call, expected in calls:
        try:
            value = call()
        except (ResourceCalcError, QuantityError) as e:
            assert str(e)
            continue
        assert isinstance(value, expected)
        if isinstance(value, float):
            assert math.isfinite(value)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(KINDS), JSON, JSON, RTYPES)
def test_arbitrary_specs_of_every_supported_kind_only_raise_our_errors(
    key: tuple[str, str], spec: object, status: object, rtype: str
) -> None:
    group, kind = key
    evaluate_all(
        {
            "apiVersion": API_VERSIONS[group],
            "kind": kind,
            "metadata": {"name": "x"},
            "spec": spec,
            "status": status,
        },
        rtype,
    )


EXAMPLE_BODIES = [load(row.path) for row in EXPECTED]


def _slots(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) position in a JSON document, depth first."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        found.append((node, key))
        found.extend(_slots(child))
    return found


@st.composite
def mutated_examples(draw: st.DrawFn) -> dict[str, Any]:
    """A resource-metrics test object with one to three values, anywhere, replaced by
    anything or removed. Positions are drawn uniformly, so deep ones (a container's
    `resources.limits.cpu`) are as likely as shallow ones."""
    obj: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(EXAMPLE_BODIES)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        slots = _slots(obj)
        parent, key = slots[draw(st.integers(min_value=0, max_value=len(slots) - 1))]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[key]
        else:
            parent[key] = draw(JSON)
    return obj


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_examples(), RTYPES)
def test_real_objects_with_any_field_replaced_only_raise_our_errors(obj: dict[str, Any], rtype: str) -> None:
    evaluate_all(obj, rtype)


@given(JSON, RTYPES)
def test_arbitrary_documents_only_raise_our_errors(obj: object, rtype: str) -> None:
    evaluate_all(obj, rtype)


def test_the_module_reports_failures_with_the_object_name() -> None:
    obj = load("mongodb/resource-metrics-v1-replicaset.yaml")
    obj["spec"]["storage"]["resources"]["requests"]["storage"] = "2Gb"
    with pytest.raises(
        QuantityError,
        match=re.escape("MongoDB demo/rs: spec.storage.resources.requests.storage: invalid quantity '2Gb'"),
    ):
        total_resource_requests(obj, "storage")
