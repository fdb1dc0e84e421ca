"""SQL databases and proxies of kubedb.com: Postgres, MySQL, MariaDB, PgBouncer, ProxySQL.

Each is one node (`spec`: `replicas` default 1, `podTemplate`, `storage`) whose
pods also run the metrics exporter; sidecars (`pg-coordinator`,
`mysql-coordinator`, `md-coordinator`) count in the totals only. TLS: `spec.tls`
is set. Modes, as resource-metrics reports them:

- Postgres: `spec.mode` if set, else `Cluster` for more than one replica, else `Standalone`;
- MySQL: `spec.topology.mode` (`GroupReplication`, `InnoDBCluster`, `SemiSync`...)
  or `Standalone`; an InnoDB cluster adds its router pods
  (`spec.topology.innoDBCluster.router`, default 1 replica, container
  `mysql-router`, application, no storage, no exporter);
- MariaDB, PgBouncer, ProxySQL: `Cluster` for more than one replica, else `Standalone`.

The proxies (PgBouncer, ProxySQL) have no storage.
"""

from __future__ import annotations

from collections.abc import Callable

from panopticon.render.expr.resources.databases import (
    STANDALONE,
    cluster_or_standalone,
    database_plan,
    node_group,
    spec_of,
    tls_configured,
)
from panopticon.render.expr.resources.fields import JSONMap, mapping, text
from panopticon.render.expr.resources.plan import Plan, PodGroup

INNODB_CLUSTER = "InnoDBCluster"


def postgres(obj: JSONMap) -> Plan:
    """The plan of a Postgres object."""
    spec = spec_of(obj)
    group = node_group(spec, "spec", container="postgres")
    mode = text(spec, "mode", "spec") or cluster_or_standalone(group.replicas)
    return _plan(spec, mode, group)


def mysql(obj: JSONMap) -> Plan:
    """The plan of a MySQL object, with its InnoDB router if any."""
    spec = spec_of(obj)
    topology = mapping(spec, "topology", "spec")
    mode = (None if topology is None else text(topology, "mode", "spec.topology")) or STANDALONE
    groups = [node_group(spec, "spec", container="mysql")]
    if topology is not None and mode == INNODB_CLUSTER:
        where = "spec.topology.innoDBCluster"
        innodb = mapping(topology, "innoDBCluster", "spec.topology")
        router = None if innodb is None else mapping(innodb, "router", where)
        router_group = node_group(
            router or {}, f"{where}.router", container="mysql-router", storage=False, exporter=False
        )
        groups.append(router_group)
    return _plan(spec, mode, *groups)


def _replicas_mode(container: str, *, storage: bool) -> Callable[[JSONMap], Plan]:
    """A calculator for a one-node kind whose mode only depends on its replica count."""

    def calculator(obj: JSONMap) -> Plan:
        spec = spec_of(obj)
        group = node_group(spec, "spec", container=container, storage=storage)
        return _plan(spec, cluster_or_standalone(group.replicas), group)

    calculator.__doc__ = f"The plan of a {container} object."
    return calculator


mariadb = _replicas_mode("mariadb", storage=True)
pgbouncer = _replicas_mode("pgbouncer", storage=False)
proxysql = _replicas_mode("proxysql", storage=False)


def _plan(spec: JSONMap, mode: str, *groups: PodGroup) -> Plan:
    return database_plan(spec, mode, groups, uses_tls=tls_configured(spec))
