"""The resource registry: built-in kinds and CustomResourceDefinitions.

A `ResourceType` says how one resource is addressed and served (group, served
versions, plural, kind, scope, subresources, selectable fields). The registry maps
URL parts and apiVersion+kind to types; CRDs are added and removed at run time
("CustomResourceDefinitions" in README.md), and `generation` changes whenever the
set changes so discovery can cache.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")
GENERIC_FIELDS = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True, slots=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0


@dataclass(frozen=True, slots=True)
class ResourceType:
    """One resource of one group, served at one or more versions."""

    group: str
    versions: tuple[str, ...]
    """Served versions, preferred first."""
    storage_version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    extra_fields: tuple[str, ...] = ()
    """Selectable fields besides metadata.name/namespace (dotted paths)."""
    custom_field_conversion: bool = False
    """Built-ins with their own field label conversion word errors differently (README.md, "Selectors")."""
    crd: bool = False
    printer_columns: tuple[PrinterColumn, ...] = ()
    bookmark_fields: bytes = b""
    """Zero fields of an empty typed object, for realistic bookmarks (README.md, "Watch")."""

    @property
    def key(self) -> tuple[str, str]:
        """Storage identity: one store per group and plural, shared by versions."""
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    @property
    def storage_api_version(self) -> str:
        return self.api_version(self.storage_version)

    @property
    def selectable_fields(self) -> frozenset[str]:
        generic = GENERIC_FIELDS if self.namespaced else GENERIC_FIELDS[:1]
        return frozenset(generic + self.extra_fields)

    @property
    def typed(self) -> bool:
        """Built-in kinds are typed: their list items carry no kind/apiVersion."""
        return not self.crd


def _n(
    group: str,
    version: str,
    plural: str,
    kind: str,
    *,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    cats: tuple[str, ...] = (),
    sub: tuple[str, ...] = (),
    fields: tuple[str, ...] = (),
    bookmark: bytes = b"",
) -> ResourceType:
    singular = kind.lower()
    return ResourceType(
        group=group,
        versions=(version,),
        storage_version=version,
        plural=plural,
        singular=singular,
        kind=kind,
        namespaced=namespaced,
        short_names=short,
        categories=cats,
        subresources=sub,
        extra_fields=fields,
        custom_field_conversion=bool(fields),
        bookmark_fields=bookmark,
    )


_POD_TEMPLATE = b'"template":{"metadata":{"creationTimestamp":null},"spec":{"containers":null}}'
_ALL = ("all",)

NATIVE_TYPES: tuple[ResourceType, ...] = (
    _n(
        "",
        "v1",
        "pods",
        "Pod",
        short=("po",),
        cats=_ALL,
        sub=("status",),
        fields=(
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ),
        bookmark=b',"spec":{"containers":null},"status":{}',
    ),
    _n(
        "",
        "v1",
        "services",
        "Service",
        short=("svc",),
        cats=_ALL,
        sub=("status",),
        bookmark=b',"spec":{},"status":{"loadBalancer":{}}',
    ),
    _n("", "v1", "configmaps", "ConfigMap", short=("cm",)),
    _n("", "v1", "secrets", "Secret", fields=("type",)),
    _n(
        "",
        "v1",
        "namespaces",
        "Namespace",
        namespaced=False,
        short=("ns",),
        sub=("status", "finalize"),
        fields=("status.phase",),
        bookmark=b',"spec":{},"status":{}',
    ),
    _n(
        "",
        "v1",
        "nodes",
        "Node",
        namespaced=False,
        short=("no",),
        sub=("status",),
        fields=("spec.unschedulable",),
        bookmark=b',"spec":{},"status":{"daemonEndpoints":{"kubeletEndpoint":{"Port":0}},"nodeInfo":{"machineID":"","systemUUID":"","bootID":"","kernelVersion":"","osImage":"","containerRuntimeVersion":"","kubeletVersion":"","kubeProxyVersion":"","operatingSystem":"","architecture":""}}',
    ),
    _n(
        "",
        "v1",
        "events",
        "Event",
        short=("ev",),
        fields=(
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ),
    ),
    _n("", "v1", "endpoints", "Endpoints", short=("ep",)),
    _n("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short=("pvc",), sub=("status",)),
    _n("", "v1", "persistentvolumes", "PersistentVolume", namespaced=False, short=("pv",), sub=("status",)),
    _n("", "v1", "serviceaccounts", "ServiceAccount", short=("sa",)),
    _n("", "v1", "resourcequotas", "ResourceQuota", short=("quota",), sub=("status",)),
    _n("", "v1", "limitranges", "LimitRange", short=("limits",)),
    _n(
        "",
        "v1",
        "replicationcontrollers",
        "ReplicationController",
        short=("rc",),
        cats=_ALL,
        sub=("scale", "status"),
        fields=("status.replicas",),
    ),
    _n("", "v1", "podtemplates", "PodTemplate"),
    _n(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        short=("deploy",),
        cats=_ALL,
        sub=("scale", "status"),
        bookmark=b',"spec":{"selector":null,' + _POD_TEMPLATE + b',"strategy":{}},"status":{}',
    ),
    _n(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        short=("rs",),
        cats=_ALL,
        sub=("scale", "status"),
        fields=("status.replicas",),
        bookmark=b',"spec":{"selector":null,' + _POD_TEMPLATE + b'},"status":{"replicas":0}',
    ),
    _n(
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        short=("sts",),
        cats=_ALL,
        sub=("scale", "status"),
        bookmark=b',"spec":{"selector":null,'
        + _POD_TEMPLATE
        + b',"serviceName":"","updateStrategy":{}},"status":{"replicas":0,"availableReplicas":0}',
    ),
    _n(
        "apps",
        "v1",
        "daemonsets",
        "DaemonSet",
        short=("ds",),
        cats=_ALL,
        sub=("status",),
        bookmark=b',"spec":{"selector":null,'
        + _POD_TEMPLATE
        + b',"updateStrategy":{}},"status":{"currentNumberScheduled":0,"numberMisscheduled":0,'
        + b'"desiredNumberScheduled":0,"numberReady":0}',
    ),
    _n("apps", "v1", "controllerrevisions", "ControllerRevision"),
    _n("batch", "v1", "jobs", "Job", cats=_ALL, sub=("status",), fields=("status.successful",)),
    _n("batch", "v1", "cronjobs", "CronJob", short=("cj",), cats=_ALL, sub=("status",)),
    _n(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        short=("hpa",),
        cats=_ALL,
        sub=("status",),
    ),
    _n("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short=("pdb",), sub=("status",)),
    _n("networking.k8s.io", "v1", "ingresses", "Ingress", short=("ing",), sub=("status",)),
    _n("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short=("netpol",)),
    _n("networking.k8s.io", "v1", "ingressclasses", "IngressClass", namespaced=False),
    _n("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    _n("coordination.k8s.io", "v1", "leases", "Lease"),
    _n("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _n("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _n("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    _n("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    _n("storage.k8s.io", "v1", "storageclasses", "StorageClass", namespaced=False, short=("sc",)),
    _n(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short=("crd", "crds"),
        cats=("api-extensions",),
        sub=("status",),
    ),
)

CRD_TYPE = NATIVE_TYPES[-1]
NAMESPACE_TYPE = next(t for t in NATIVE_TYPES if t.plural == "namespaces")

_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key of Kubernetes version priority: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > others."""
    m = _VERSION.match(version)
    if m is None:
        return (3, 0, 0, version)
    major, level, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[level]
    return (rank, -major, -minor, version)


def type_from_crd(crd: Mapping[str, Any]) -> ResourceType:
    """The `ResourceType` a CRD object defines (raises KeyError/ValueError if malformed)."""
    spec = crd["spec"]
    names = spec["names"]
    served = [v for v in spec["versions"] if v.get("served", True)]
    storage = next((v["name"] for v in spec["versions"] if v.get("storage")), spec["versions"][0]["name"])
    if not served:
        raise ValueError("no served version")
    versions = tuple(sorted((v["name"] for v in served), key=version_priority))
    storage_def = next((v for v in spec["versions"] if v["name"] == storage), served[0])
    subresources = tuple(sorted((storage_def.get("subresources") or {}).keys()))
    fields = tuple(
        f["jsonPath"].lstrip(".") for f in storage_def.get("selectableFields") or [] if isinstance(f, dict)
    )
    columns = tuple(
        PrinterColumn(
            name=c["name"],
            type=c.get("type", "string"),
            json_path=c["jsonPath"],
            description=c.get("description", ""),
            priority=int(c.get("priority", 0)),
        )
        for c in storage_def.get("additionalPrinterColumns") or []
    )
    return ResourceType(
        group=spec["group"],
        versions=versions,
        storage_version=storage,
        plural=names["plural"],
        singular=names.get("singular") or names["kind"].lower(),
        kind=names["kind"],
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        short_names=tuple(names.get("shortNames") or ()),
        categories=tuple(names.get("categories") or ()),
        subresources=subresources,
        extra_fields=fields,
        crd=True,
        printer_columns=columns,
    )


class Registry:
    """Served resource types, indexed by URL and by apiVersion+kind."""

    def __init__(self, types: tuple[ResourceType, ...] = NATIVE_TYPES) -> None:
        self._by_key: dict[tuple[str, str], ResourceType] = {}
        self._kinds: dict[tuple[str, str], ResourceType] = {}
        self._kinds_generation = -1
        self.generation = 0
        for t in types:
            self.add(t)

    def add(self, rtype: ResourceType) -> None:
        self._by_key[rtype.key] = rtype
        self.generation += 1

    def remove(self, key: tuple[str, str]) -> ResourceType | None:
        self.generation += 1
        return self._by_key.pop(key, None)

    def get(self, key: tuple[str, str]) -> ResourceType | None:
        return self._by_key.get(key)

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(self._by_key.values())

    def resolve(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The type served at `/…/{group}/{version}/{plural}`, if any."""
        t = self._by_key.get((group, plural))
        if t is None or version not in t.versions:
            return None
        return t

    def for_kind(self, api_version: str, kind: str) -> ResourceType | None:
        if self._kinds_generation != self.generation:
            self._kinds = {(t.api_version(v), t.kind): t for t in self._by_key.values() for v in t.versions}
            self._kinds_generation = self.generation
        return self._kinds.get((api_version, kind))

    def group_versions(self) -> dict[str, list[str]]:
        """Group → served versions, preferred first (core group under "")."""
        out: dict[str, set[str]] = {}
        for t in self._by_key.values():
            out.setdefault(t.group, set()).update(t.versions)
        return {g: sorted(vs, key=version_priority) for g, vs in out.items()}

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [t for t in self._by_key.values() if t.group == group and version in t.versions]

    def serves(self, group: str, version: str) -> bool:
        return any(t.group == group and version in t.versions for t in self._by_key.values())
