"""Native workloads sized like real kind objects: nodes, namespaces, deployments
with their ReplicaSets and pods, services, configmaps and secrets (README.md,
"Workload generation").

`WorkloadSpec` says how many of each per namespace; generation is deterministic
for its seed (uids, names, timestamps, label mix with `app`, `tier` and `env`).
Objects carry managedFields, ownerReferences and status like real ones (a pod
is about 4 KiB of JSON).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kubesim.objmeta import rfc3339
from kubesim.podspec import container_spec, pod_spec, true_conditions
from kubesim.workload import ENVS, EPOCH, TIERS, clone, managed_entry, mongodb_objects, new_uid


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """Native objects per namespace, plus cluster-wide nodes."""

    namespaces: int = 2
    deployments: int = 3
    """Deployments per namespace, each with one ReplicaSet."""
    pods_per_deployment: int = 2
    services: int = 2
    configmaps: int = 2
    secrets: int = 2
    mongodbs: int = 1
    """MongoDB custom resources per namespace."""
    nodes: int = 3
    seed: int = 0


class NativeGenerator:
    """Builds the objects of a `WorkloadSpec`, one namespace at a time."""

    def __init__(self, spec: WorkloadSpec) -> None:
        self.spec = spec
        self.rng = random.Random(f"natives:{spec.seed}")  # noqa: S311 - reproducible workload
        self.nodes = [f"node-{i:04d}" for i in range(max(1, spec.nodes))]

    def _meta(self, name: str, ns: str, labels: dict[str, str], t: float) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if ns:
            meta["namespace"] = ns
        meta.update(uid=new_uid(self.rng), generation=1, creationTimestamp=rfc3339(t), labels=labels)
        return meta

    def objects(self) -> Iterator[dict[str, Any]]:
        spec, rng = self.spec, self.rng
        for i, node in enumerate(self.nodes[: spec.nodes]):
            yield self.node(node, EPOCH + i)
        for n in range(spec.namespaces):
            ns = f"ns-{n:04d}"
            yield {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": self._meta(ns, "", {"kubernetes.io/metadata.name": ns}, EPOCH),
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }
            for d in range(spec.deployments):
                yield from self.deployment(ns, f"app-{d:04d}", EPOCH + 60 * d)
            for s in range(spec.services):
                yield self.service(ns, f"svc-{s:04d}", EPOCH + s)
            for c in range(spec.configmaps):
                yield self.configmap(ns, f"config-{c:04d}", EPOCH + c)
            for s in range(spec.secrets):
                yield self.secret(ns, f"secret-{s:04d}", EPOCH + s)
            yield from mongodb_objects(spec.mongodbs, seed=rng.getrandbits(32), namespaces=(ns,))

    def deployment(self, ns: str, app: str, t: float) -> Iterator[dict[str, Any]]:
        rng = self.rng
        labels = {"app": app, "tier": rng.choice(TIERS), "env": rng.choice(ENVS)}
        container = container_spec(app, f"registry.example.com/{app}:1.{rng.randrange(30)}.0", rng)
        template = {"metadata": {"labels": labels}, "spec": pod_spec(container, "")}
        del template["spec"]["nodeName"]
        replicas = self.spec.pods_per_deployment
        when = rfc3339(t)
        dmeta = self._meta(app, ns, dict(labels), t)
        dmeta["annotations"] = {"deployment.kubernetes.io/revision": "1"}
        dspec = {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": template,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            },
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        }
        dmeta["managedFields"] = [
            managed_entry("kubectl-client-side-apply", "apps/v1", {"spec": dspec}, when),
            managed_entry(
                "kube-controller-manager", "apps/v1", {"status": {"replicas": 1}}, when, sub="status"
            ),
        ]
        ready = {
            "replicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "updatedReplicas": replicas,
            "observedGeneration": 1,
        }
        yield {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": dmeta,
            "spec": dspec,
            "status": {
                **ready,
                "conditions": [
                    {
                        "type": "Available",
                        "status": "True",
                        "lastUpdateTime": when,
                        "lastTransitionTime": when,
                        "reason": "MinimumReplicasAvailable",
                        "message": "Deployment has minimum availability.",
                    },
                    {
                        "type": "Progressing",
                        "status": "True",
                        "lastUpdateTime": when,
                        "lastTransitionTime": when,
                        "reason": "NewReplicaSetAvailable",
                        "message": f'ReplicaSet "{app}" has successfully progressed.',
                    },
                ],
            },
        }
        hash_ = f"{rng.getrandbits(40):010x}"[:10]
        rs_name = f"{app}-{hash_}"
        rs_labels = {**labels, "pod-template-hash": hash_}
        rmeta = self._meta(rs_name, ns, rs_labels, t)
        rmeta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": app,
                "uid": dmeta["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        rspec = {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app, "pod-template-hash": hash_}},
            "template": {"metadata": {"labels": rs_labels}, "spec": template["spec"]},
        }
        rmeta["managedFields"] = [
            managed_entry(
                "kube-controller-manager",
                "apps/v1",
                {"metadata": {"ownerReferences": rmeta["ownerReferences"]}, "spec": rspec},
                when,
            )
        ]
        yield {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": rmeta,
            "spec": rspec,
            "status": {
                "replicas": replicas,
                "fullyLabeledReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "observedGeneration": 1,
            },
        }
        pod_fields = None
        for p in range(replicas):
            pod = self.pod(
                ns, name=f"{rs_name}-{p:05d}", labels=rs_labels, container=container, owner=rmeta, t=t + 1
            )
            if pod_fields is None:  # identical for every pod of the set: compute once
                pod_fields = [
                    managed_entry(
                        "kube-controller-manager",
                        "v1",
                        {"metadata": {"labels": rs_labels}, "spec": pod["spec"]},
                        when,
                    ),
                    managed_entry("kubelet", "v1", {"status": pod["status"]}, when, sub="status"),
                ]
            pod["metadata"]["managedFields"] = clone(pod_fields)
            yield pod

    def pod(
        self,
        ns: str,
        *,
        name: str,
        labels: dict[str, str],
        container: dict[str, Any],
        owner: dict[str, Any],
        t: float,
    ) -> dict[str, Any]:
        rng = self.rng
        node = rng.choice(self.nodes)
        meta = self._meta(name, ns, dict(labels), t)
        meta["generateName"] = owner["name"] + "-"
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": owner["name"],
                "uid": owner["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        when = rfc3339(t)
        ip = f"10.244.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        host = f"172.18.0.{rng.randrange(2, 250)}"
        status = {
            "phase": "Running",
            "conditions": true_conditions(
                ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"), when
            ),
            "hostIP": host,
            "hostIPs": [{"ip": host}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": when,
            "containerStatuses": [
                {
                    "name": container["name"],
                    "state": {"running": {"startedAt": when}},
                    "lastState": {},
                    "ready": True,
                    "restartCount": rng.choice((0, 0, 0, 1, 2)),
                    "image": container["image"],
                    "imageID": f"{container['image']}@sha256:{rng.getrandbits(256):064x}",
                    "containerID": f"containerd://{rng.getrandbits(256):064x}",
                    "started": True,
                }
            ],
            "qosClass": "Burstable",
        }
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": pod_spec(container, node),
            "status": status,
        }

    def node(self, name: str, t: float) -> dict[str, Any]:
        meta = self._meta(
            name,
            "",
            {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node-role.kubernetes.io/worker": "",
            },
            t,
        )
        when = rfc3339(t)
        capacity = {"cpu": "8", "memory": "32859012Ki", "pods": "110", "ephemeral-storage": "102350Mi"}
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": meta,
            "spec": {
                "podCIDR": "10.244.0.0/24",
                "podCIDRs": ["10.244.0.0/24"],
                "providerID": f"kind://docker/kind/{name}",
            },
            "status": {
                "capacity": capacity,
                "allocatable": capacity,
                "conditions": [
                    {
                        "type": t_,
                        "status": "False" if t_ != "Ready" else "True",
                        "lastHeartbeatTime": when,
                        "lastTransitionTime": when,
                        "reason": f"Kubelet{t_}",
                        "message": "ok",
                    }
                    for t_ in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
                ],
                "addresses": [
                    {"type": "InternalIP", "address": "172.18.0.2"},
                    {"type": "Hostname", "address": name},
                ],
                "nodeInfo": {
                    "kubeletVersion": "v1.36.0",
                    "containerRuntimeVersion": "containerd://2.1.0",
                    "osImage": "Debian GNU/Linux 12",
                    "kernelVersion": "6.8.0",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                    "machineID": "",
                    "systemUUID": "",
                    "bootID": "",
                    "kubeProxyVersion": "",
                },
            },
        }

    def service(self, ns: str, name: str, t: float) -> dict[str, Any]:
        ip = f"10.96.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self._meta(name, ns, {"app": name}, t),
            "spec": {
                "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                "selector": {"app": name},
                "clusterIP": ip,
                "clusterIPs": [ip],
                "type": "ClusterIP",
                "sessionAffinity": "None",
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster",
            },
            "status": {"loadBalancer": {}},
        }

    def configmap(self, ns: str, name: str, t: float) -> dict[str, Any]:
        data = {f"key-{i}": f"value-{self.rng.getrandbits(64):016x}" for i in range(8)}
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": self._meta(name, ns, {"app": name}, t),
            "data": data,
        }

    def secret(self, ns: str, name: str, t: float) -> dict[str, Any]:
        data = {"username": "YWRtaW4=", "password": f"{self.rng.getrandbits(128):032x}"}
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": self._meta(name, ns, {"app": name}, t),
            "type": "Opaque",
            "data": data,
        }


def native_objects(spec: WorkloadSpec) -> Iterator[dict[str, Any]]:
    """Every object of `spec`, namespaces before what they hold."""
    return NativeGenerator(spec).objects()
