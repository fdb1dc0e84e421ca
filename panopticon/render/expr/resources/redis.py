"""Redis and RedisSentinel (kubedb.com).

Redis mode is `spec.mode` (`Standalone`, `Cluster`, `Sentinel`), `Standalone` if
unset. In `Cluster` mode the pods are shards x pods per shard, read in either API
shape, with the API's defaults:

- `kubedb.com/v1`: `spec.cluster.shards` (default 3) x `spec.cluster.replicas`
  (pods per shard, master included, default 2);
- older objects: `spec.cluster.master` (default 3) x (`spec.cluster.replicas`
  + 1), since there `replicas` counted the replicas of each master, master
  excluded. (resource-metrics multiplies master x replicas, one pod short per
  shard; the v1alpha2 shape is recognised by its `master` field.)

Otherwise the pods are `spec.replicas` (default 1). RedisSentinel is always
mode `Cluster` (as resource-metrics reports it) with `spec.replicas` pods of the
`redissentinel` container. TLS: `spec.tls` is set (resource-metrics reports
false for every RedisSentinel; a sentinel with `spec.tls` does use TLS).
"""

from __future__ import annotations

from panopticon.render.expr.resources.databases import (
    CLUSTER,
    STANDALONE,
    database_plan,
    node_group,
    spec_of,
    tls_configured,
)
from panopticon.render.expr.resources.fields import JSONMap, count, mapping, text
from panopticon.render.expr.resources.plan import Plan, PodGroup


def redis(obj: JSONMap) -> Plan:
    """The plan of a Redis object."""
    spec = spec_of(obj)
    mode = text(spec, "mode", "spec") or STANDALONE
    replicas = _cluster_pods(spec) if mode == CLUSTER else None
    return _plan(spec, mode, node_group(spec, "spec", container="redis", replicas=replicas))


def redis_sentinel(obj: JSONMap) -> Plan:
    """The plan of a RedisSentinel object."""
    spec = spec_of(obj)
    return _plan(spec, CLUSTER, node_group(spec, "spec", container="redissentinel"))


def _cluster_pods(spec: JSONMap) -> int:
    cluster = mapping(spec, "cluster", "spec") or {}
    where = "spec.cluster"
    if cluster.get("master") is not None:
        masters = count(cluster, "master", where, default=3)
        return masters * (count(cluster, "replicas", where, default=1) + 1)
    return count(cluster, "shards", where, default=3) * count(cluster, "replicas", where, default=2)


def _plan(spec: JSONMap, mode: str, group: PodGroup) -> Plan:
    return database_plan(spec, mode, (group,), uses_tls=tls_configured(spec))
