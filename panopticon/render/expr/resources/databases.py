"""Shapes every KubeDB kind shares: nodes, the metrics exporter, TLS switches.

A KubeDB "node" is a mapping with `replicas`, `podTemplate` and `storage`: the
whole `spec` of a simple database, or one entry of a topology (a MongoDB shard,
an Elasticsearch role, the MySQL router). Both API shapes are read:

- `kubedb.com/v1` (and recent v1alpha2): resources per container, under
  `podTemplate.spec.containers[]`; the database container is found by name;
- older objects: the database container's resources under
  `podTemplate.spec.resources` (or, for Elasticsearch and Kafka topology roles,
  under the role's own `resources`).
"""

from __future__ import annotations

from collections.abc import Iterable

from panopticon.render.expr.resources.fields import (
    MAX_REPLICAS,
    JSONMap,
    count,
    has_object,
    is_true,
    join,
    mapping,
)
from panopticon.render.expr.resources.plan import Plan, PodGroup

EXPORTER_WHERE = "spec.monitor.prometheus.exporter"

# Mode names shared by several kinds, spelled as resource-metrics reports them.
STANDALONE = "Standalone"
CLUSTER = "Cluster"
COMBINED = "Combined"
DEDICATED = "Dedicated"


def spec_of(obj: JSONMap) -> JSONMap:
    """The object's `spec`; an empty one if absent."""
    spec = obj.get("spec")
    if type(spec) is dict:
        return spec
    return mapping(obj, "spec", "") or {}


def node_group(
    node: JSONMap,
    where: str,
    *,
    container: str,
    replicas: int | None = None,
    storage: bool = True,
    exporter: bool = True,
    role_resources: bool = False,
) -> PodGroup:
    """The pods of the node at `where`.

    `replicas` overrides the node's own `replicas` (default 1, as KubeDB defaults
    it); `storage` says whether the node's `storage` claim counts; `exporter`
    whether its pods run the metrics exporter; `role_resources` whether the node's
    own `resources` field is a fallback for the database container's resources.
    """
    # Every object renders through here, so fields are read inline and the readers
    # of `fields` (which build the paths for their messages) run only to raise.
    if replicas is None:
        replicas = node.get("replicas")
        if replicas is None:
            replicas = 1
        elif type(replicas) is not int or not 0 <= replicas <= MAX_REPLICAS:
            count(node, "replicas", where, default=1)  # raises
    pod_where = f"{where}.podTemplate.spec" if where else "podTemplate.spec"
    pod_spec = legacy = None
    template = node.get("podTemplate")
    if template is not None:
        if type(template) is not dict:
            mapping(node, "podTemplate", where)  # raises
        pod_spec = template.get("spec")
        if pod_spec is not None:
            if type(pod_spec) is not dict:
                mapping(template, "spec", join(where, "podTemplate"))  # raises
            legacy = pod_spec.get("resources")
            if legacy is not None and type(legacy) is not dict:
                mapping(pod_spec, "resources", pod_where)  # raises
    legacy_where = ""  # `<pod_where>.resources`, built by tally if ever needed
    if legacy is None and role_resources:
        legacy = mapping(node, "resources", where)
        legacy_where = join(where, "resources")
    claims: tuple[tuple[str, JSONMap], ...] = ()
    if storage:
        claim = node.get("storage")
        if claim is not None:
            if type(claim) is not dict:
                mapping(node, "storage", where)  # raises
            claims = ((f"{where}.storage" if where else "storage", claim),)
    return PodGroup(pod_where, pod_spec, replicas, container, legacy, legacy_where, claims, exporter)


def database_plan(spec: JSONMap, mode: str, groups: Iterable[PodGroup], *, uses_tls: bool) -> Plan:
    """The plan of a KubeDB object: its groups, with the metrics exporter if configured."""
    exporter = None if spec.get("monitor") is None else exporter_of(spec)
    return Plan(mode, uses_tls, tuple(groups), exporter, EXPORTER_WHERE)


def exporter_of(spec: JSONMap) -> JSONMap | None:
    """The metrics exporter container (`spec.monitor.prometheus.exporter`), if configured."""
    monitor = mapping(spec, "monitor", "spec")
    prometheus = None if monitor is None else mapping(monitor, "prometheus", "spec.monitor")
    return None if prometheus is None else mapping(prometheus, "exporter", "spec.monitor.prometheus")


def tls_configured(spec: JSONMap) -> bool:
    """Whether `spec.tls` is set (most KubeDB kinds)."""
    tls = spec.get("tls")
    return type(tls) is dict or (tls is not None and has_object(spec, "tls", "spec"))


def ssl_enabled(spec: JSONMap) -> bool:
    """Whether `spec.enableSSL` is true (Elasticsearch, Kafka, Solr, Druid, ConnectCluster)."""
    return is_true(spec, "enableSSL", "spec")


def cluster_or_standalone(replicas: int) -> str:
    """The mode of kinds that only tell one pod from several: `Cluster` or `Standalone`."""
    return CLUSTER if replicas > 1 else STANDALONE
