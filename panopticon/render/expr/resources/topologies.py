"""Kinds deployed either combined or as a topology of dedicated roles:
Elasticsearch, Kafka, Solr, Druid (kubedb.com), and Kafka ConnectCluster
(kafka.kubedb.com), which is a single node.

With `spec.topology` set (even empty) the mode is `Dedicated` and every entry
of the topology is a role node (Elasticsearch `master`, `data`, `ingest`,
`dataHot`...; Kafka `broker`, `controller`; Solr `overseer`, `data`,
`coordinator`; Druid `coordinators`, `brokers`, `historicals`...), each with its
own `replicas` (default 1), pod template and storage. Otherwise the mode is
`Combined` and `spec` is the one node. Every pod runs the metrics exporter.

TLS: `spec.enableSSL` is true. (resource-metrics reports TLS whenever the field
is present, even `enableSSL: false`; an explicit false means no TLS here.)

ConnectCluster: `spec.replicas` (default 1) pods of container `connect-cluster`,
no storage; mode `Distributed` for more than one replica, else `Standalone`, the
two modes its operator runs workers in.
"""

from __future__ import annotations

from collections.abc import Callable

from panopticon.errors import ResourceCalcError
from panopticon.render.expr.resources.databases import (
    COMBINED,
    DEDICATED,
    STANDALONE,
    database_plan,
    node_group,
    spec_of,
    ssl_enabled,
)
from panopticon.render.expr.resources.fields import JSONMap, describe, mapping
from panopticon.render.expr.resources.plan import Plan, PodGroup

DISTRIBUTED = "Distributed"


def _combined_or_dedicated(container: str, *, role_resources: bool = False) -> Callable[[JSONMap], Plan]:
    """A calculator for a kind with an optional `spec.topology` of roles.

    `role_resources`: older objects of the kind give a role's resources in the
    role node itself (Elasticsearch and Kafka topologies before `podTemplate`).
    """

    def calculator(obj: JSONMap) -> Plan:
        spec = spec_of(obj)
        topology = mapping(spec, "topology", "spec")
        if topology is None:
            groups = [node_group(spec, "spec", container=container)]
            return database_plan(spec, COMBINED, groups, uses_tls=ssl_enabled(spec))
        groups = _roles(topology, container, role_resources=role_resources)
        return database_plan(spec, DEDICATED, groups, uses_tls=ssl_enabled(spec))

    calculator.__doc__ = f"The plan of an object whose database container is {container!r}."
    return calculator


def _roles(topology: JSONMap, container: str, *, role_resources: bool) -> list[PodGroup]:
    groups = []
    for role, node in topology.items():
        where = f"spec.topology.{role}"
        if node is None:
            continue
        if not isinstance(node, dict):
            raise ResourceCalcError(f"{where}: expected an object, got {describe(node)}")
        groups.append(node_group(node, where, container=container, role_resources=role_resources))
    return groups


elasticsearch = _combined_or_dedicated("elasticsearch", role_resources=True)
kafka = _combined_or_dedicated("kafka", role_resources=True)
solr = _combined_or_dedicated("solr")
druid = _combined_or_dedicated("druid")


def connect_cluster(obj: JSONMap) -> Plan:
    """The plan of a Kafka ConnectCluster object."""
    spec = spec_of(obj)
    group = node_group(spec, "spec", container="connect-cluster", storage=False)
    mode = DISTRIBUTED if group.replicas > 1 else STANDALONE
    return database_plan(spec, mode, (group,), uses_tls=ssl_enabled(spec))
