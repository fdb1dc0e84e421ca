"""Which calculator handles an object: looked up by API group and kind.

The version is not part of the key: within a group a kind keeps its shape across
versions, and the calculators read both KubeDB shapes (v1alpha2 and v1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from panopticon.errors import ResourceCalcError
from panopticon.render.expr.resources import mongodb, native, redis, sql, topologies
from panopticon.render.expr.resources.fields import JSONMap, describe
from panopticon.render.expr.resources.plan import Plan

Calculator = Callable[[JSONMap], Plan]

KUBEDB = "kubedb.com"

CALCULATORS: Final[Mapping[tuple[str, str], Calculator]] = MappingProxyType(
    {
        ("", "Pod"): native.pod,
        ("", "ReplicationController"): native.scaled,
        ("apps", "Deployment"): native.scaled,
        ("apps", "ReplicaSet"): native.scaled,
        ("apps", "StatefulSet"): native.stateful_set,
        ("apps", "DaemonSet"): native.daemon_set,
        ("batch", "Job"): native.job,
        ("batch", "CronJob"): native.cron_job,
        (KUBEDB, "MongoDB"): mongodb.mongodb,
        (KUBEDB, "Postgres"): sql.postgres,
        (KUBEDB, "MySQL"): sql.mysql,
        (KUBEDB, "MariaDB"): sql.mariadb,
        (KUBEDB, "PgBouncer"): sql.pgbouncer,
        (KUBEDB, "ProxySQL"): sql.proxysql,
        (KUBEDB, "Redis"): redis.redis,
        (KUBEDB, "RedisSentinel"): redis.redis_sentinel,
        (KUBEDB, "Elasticsearch"): topologies.elasticsearch,
        (KUBEDB, "Kafka"): topologies.kafka,
        (KUBEDB, "Solr"): topologies.solr,
        (KUBEDB, "Druid"): topologies.druid,
        ("kafka.kubedb.com", "ConnectCluster"): topologies.connect_cluster,
    }
)
"""(API group, kind) to calculator; the core group is the empty string."""


def calculator_for(obj: JSONMap) -> tuple[str, Calculator]:
    """The object's kind and its calculator; `ResourceCalcError` if there is none."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise ResourceCalcError(
            f"apiVersion and kind must be strings, got {describe(api_version)} and {describe(kind)}"
        )
    group = api_version.rpartition("/")[0]
    calculator = CALCULATORS.get((group, kind))
    if calculator is None:
        where = f"{kind} ({api_version})" if len(kind) + len(api_version) < 200 else "this kind"
        raise ResourceCalcError(f"no resource calculator for {where}")
    return kind, calculator
