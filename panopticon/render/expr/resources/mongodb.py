"""MongoDB (kubedb.com): standalone, replica set, or sharded.

Mode follows resource-metrics: `Sharded` when `spec.shardTopology` is set, else
`ReplicaSet` when `spec.replicaSet` is set, else `Standalone`. The database
container is `mongodb`; sidecars such as `replication-mode-detector` count in the
totals, not in the application figures. TLS: `spec.tls` is set.

Pods:

- standalone and replica set: `spec.replicas` (default 1) with `spec.storage`;
- sharded: `shard.shards` x `shard.replicas` shard pods and `configServer.replicas`
  config servers (each with its node's storage), `mongos.replicas` routers (no
  storage). These four counts are required, as in the KubeDB API;
- a replica set or each shard also gets one arbiter pod when `spec.arbiter` is
  set (no storage) and `spec.hidden.replicas` hidden members (with
  `spec.hidden.storage`) when `spec.hidden` is set. resource-metrics leaves both
  out; they are database pods, so they count here (replicas and figures).

Every pod runs the metrics exporter when `spec.monitor.prometheus.exporter` is set.
"""

from __future__ import annotations

from panopticon.errors import ResourceCalcError
from panopticon.render.expr.resources.databases import (
    STANDALONE,
    database_plan,
    node_group,
    spec_of,
    tls_configured,
)
from panopticon.render.expr.resources.fields import MAX_REPLICAS, JSONMap, count, mapping
from panopticon.render.expr.resources.plan import Plan, PodGroup

CONTAINER = "mongodb"
SHARDED = "Sharded"
REPLICA_SET = "ReplicaSet"

_TOPOLOGY = "spec.shardTopology"
_SHARD = f"{_TOPOLOGY}.shard"
_CONFIG_SERVER = f"{_TOPOLOGY}.configServer"
_MONGOS = f"{_TOPOLOGY}.mongos"


def mongodb(obj: JSONMap) -> Plan:
    """The plan of a MongoDB object (either API version)."""
    spec = spec_of(obj)
    # `mapping` (a call) only validates fields that are present.
    topology = spec.get("shardTopology")
    if topology is not None and mapping(spec, "shardTopology", "spec") is not None:
        mode, groups = SHARDED, _sharded(spec, topology)
    elif spec.get("replicaSet") is not None and mapping(spec, "replicaSet", "spec") is not None:
        mode, groups = REPLICA_SET, (node_group(spec, "spec", container=CONTAINER), *_extra_members(spec, 1))
    else:
        mode, groups = STANDALONE, (node_group(spec, "spec", container=CONTAINER),)
    return database_plan(spec, mode, groups, uses_tls=tls_configured(spec))


def _sharded(spec: JSONMap, topology: JSONMap) -> tuple[PodGroup, ...]:
    shard = _node(topology, "shard")
    shards = _required(shard, "shards", _SHARD)
    shard_pods = shards * _required(shard, "replicas", _SHARD)
    config = _node(topology, "configServer")
    mongos = _node(topology, "mongos")
    return (
        node_group(shard, _SHARD, container=CONTAINER, replicas=shard_pods),
        node_group(
            config,
            _CONFIG_SERVER,
            container=CONTAINER,
            replicas=_required(config, "replicas", _CONFIG_SERVER),
        ),
        node_group(
            mongos,
            _MONGOS,
            container=CONTAINER,
            replicas=_required(mongos, "replicas", _MONGOS),
            storage=False,
        ),
        *_extra_members(spec, shards),
    )


def _extra_members(spec: JSONMap, replica_sets: int) -> tuple[PodGroup, ...]:
    """Arbiter and hidden members: per replica set, so once per shard when sharded."""
    groups = []
    if spec.get("arbiter") is not None:
        arbiter = mapping(spec, "arbiter", "spec") or {}
        groups.append(node_group(arbiter, "spec.arbiter", container=CONTAINER, replicas=replica_sets))
    if spec.get("hidden") is not None:
        hidden = mapping(spec, "hidden", "spec") or {}
        members = replica_sets * _required(hidden, "replicas", "spec.hidden")
        groups.append(node_group(hidden, "spec.hidden", container=CONTAINER, replicas=members))
    return tuple(groups)


def _node(topology: JSONMap, key: str) -> JSONMap:
    node = topology.get(key)
    if type(node) is dict:
        return node
    mapping(topology, key, _TOPOLOGY)  # raises for a value of the wrong type
    raise ResourceCalcError(f"{_TOPOLOGY}.{key} is required in a sharded MongoDB")


def _required(node: JSONMap, key: str, where: str) -> int:
    value = node.get(key)
    if type(value) is int and 0 <= value <= MAX_REPLICAS:
        return value
    if value is None:
        raise ResourceCalcError(f"{where}.{key} is required")
    return count(node, key, where, default=0)  # raises
