"""Protobuf message schemas of the built-in kinds kubectl's generators post.

Field numbers come from k8s.io/api `*/generated.proto` (core/v1, apps/v1,
batch/v1) and k8s.io/apimachinery `pkg/apis/meta/v1/generated.proto`; only the
messages that `kubectl create namespace|configmap|secret|serviceaccount|
deployment|job|cronjob|service` and `kubectl run` fill are listed. A field a body sets
that is not listed here is refused (`protobody`), never guessed: decoding is
exact for what is listed, and the simulator says so for the rest.

A field is (JSON name, type, flags). Types: `s` string, `b` bytes (base64 in
JSON), `i` integer, `?` bool, `q` resource.Quantity, `t` metav1.Time, `ios`
IntOrString, `ss`/`sb`/`sq` maps of string to string/bytes/Quantity, and the
name of another message. Flags: REPEATED, and KEEP for Go pointer fields, whose
zero value is meaningful (`replicas: 0`); other zero values are dropped, as
JSON's omitempty drops them.
"""

from __future__ import annotations

from typing import Final

REPEATED: Final = 1
KEEP: Final = 2

Field = tuple[str, str, int]
Message = dict[int, Field]


def _f(name: str, type_: str = "s", flags: int = 0) -> Field:
    return (name, type_, flags)


MESSAGES: Final[dict[str, Message]] = {
    # --- meta/v1 ---
    "ObjectMeta": {
        1: _f("name"),
        2: _f("generateName"),
        3: _f("namespace"),
        4: _f("selfLink"),
        5: _f("uid"),
        6: _f("resourceVersion"),
        7: _f("generation", "i"),
        8: _f("creationTimestamp", "t"),
        9: _f("deletionTimestamp", "t"),
        10: _f("deletionGracePeriodSeconds", "i", KEEP),
        11: _f("labels", "ss"),
        12: _f("annotations", "ss"),
        13: _f("ownerReferences", "OwnerReference", REPEATED),
        14: _f("finalizers", "s", REPEATED),
    },
    "OwnerReference": {
        1: _f("kind"),
        3: _f("name"),
        4: _f("uid"),
        5: _f("apiVersion"),
        6: _f("controller", "?", KEEP),
        7: _f("blockOwnerDeletion", "?", KEEP),
    },
    "LabelSelector": {
        1: _f("matchLabels", "ss"),
        2: _f("matchExpressions", "LabelSelectorRequirement", REPEATED),
    },
    "LabelSelectorRequirement": {1: _f("key"), 2: _f("operator"), 3: _f("values", "s", REPEATED)},
    # --- core/v1 ---
    "Namespace": {1: _f("metadata", "ObjectMeta"), 2: _f("spec", "NamespaceSpec")},
    "NamespaceSpec": {1: _f("finalizers", "s", REPEATED)},
    "ConfigMap": {
        1: _f("metadata", "ObjectMeta"),
        2: _f("data", "ss"),
        3: _f("binaryData", "sb"),
        4: _f("immutable", "?", KEEP),
    },
    "Secret": {
        1: _f("metadata", "ObjectMeta"),
        2: _f("data", "sb"),
        3: _f("type"),
        4: _f("stringData", "ss"),
        5: _f("immutable", "?", KEEP),
    },
    "ServiceAccount": {
        1: _f("metadata", "ObjectMeta"),
        3: _f("imagePullSecrets", "LocalObjectReference", REPEATED),
        4: _f("automountServiceAccountToken", "?", KEEP),
    },
    "LocalObjectReference": {1: _f("name")},
    "Service": {1: _f("metadata", "ObjectMeta"), 2: _f("spec", "ServiceSpec")},
    "ServiceSpec": {
        1: _f("ports", "ServicePort", REPEATED),
        2: _f("selector", "ss"),
        3: _f("clusterIP"),
        4: _f("type"),
        5: _f("externalIPs", "s", REPEATED),
        7: _f("sessionAffinity"),
        8: _f("loadBalancerIP"),
        9: _f("loadBalancerSourceRanges", "s", REPEATED),
        10: _f("externalName"),
        11: _f("externalTrafficPolicy"),
        12: _f("healthCheckNodePort", "i"),
        13: _f("publishNotReadyAddresses", "?"),
    },
    "ServicePort": {
        1: _f("name"),
        2: _f("protocol"),
        3: _f("port", "i"),
        4: _f("targetPort", "ios"),
        5: _f("nodePort", "i"),
    },
    "Pod": {1: _f("metadata", "ObjectMeta"), 2: _f("spec", "PodSpec")},
    "PodTemplateSpec": {1: _f("metadata", "ObjectMeta"), 2: _f("spec", "PodSpec")},
    "PodSpec": {
        2: _f("containers", "Container", REPEATED),
        3: _f("restartPolicy"),
        4: _f("terminationGracePeriodSeconds", "i", KEEP),
        5: _f("activeDeadlineSeconds", "i", KEEP),
        6: _f("dnsPolicy"),
        7: _f("nodeSelector", "ss"),
        8: _f("serviceAccountName"),
        9: _f("serviceAccount"),
        10: _f("nodeName"),
        11: _f("hostNetwork", "?"),
        12: _f("hostPID", "?"),
        13: _f("hostIPC", "?"),
        15: _f("imagePullSecrets", "LocalObjectReference", REPEATED),
        16: _f("hostname"),
        17: _f("subdomain"),
        19: _f("schedulerName"),
        20: _f("initContainers", "Container", REPEATED),
        24: _f("priorityClassName"),
    },
    "Container": {
        1: _f("name"),
        2: _f("image"),
        3: _f("command", "s", REPEATED),
        4: _f("args", "s", REPEATED),
        5: _f("workingDir"),
        6: _f("ports", "ContainerPort", REPEATED),
        7: _f("env", "EnvVar", REPEATED),
        8: _f("resources", "ResourceRequirements"),
        13: _f("terminationMessagePath"),
        14: _f("imagePullPolicy"),
        16: _f("stdin", "?"),
        17: _f("stdinOnce", "?"),
        18: _f("tty", "?"),
        20: _f("terminationMessagePolicy"),
    },
    "ContainerPort": {
        1: _f("name"),
        2: _f("hostPort", "i"),
        3: _f("containerPort", "i"),
        4: _f("protocol"),
        5: _f("hostIP"),
    },
    "EnvVar": {1: _f("name"), 2: _f("value")},
    "ResourceRequirements": {1: _f("limits", "sq"), 2: _f("requests", "sq")},
    # --- apps/v1 ---
    "Deployment": {1: _f("metadata", "ObjectMeta"), 2: _f("spec", "DeploymentSpec")},
    "DeploymentSpec": {
        1: _f("replicas", "i", KEEP),
        2: _f("selector", "LabelSelector"),
        3: _f("template", "PodTemplateSpec"),
        4: _f("strategy", "DeploymentStrategy"),
        5: _f("minReadySeconds", "i"),
        6: _f("revisionHistoryLimit", "i", KEEP),
        7: _f("paused", "?"),
        9: _f("progressDeadlineSeconds", "i", KEEP),
    },
    "DeploymentStrategy": {1: _f("type"), 2: _f("rollingUpdate", "RollingUpdateDeployment")},
    "RollingUpdateDeployment": {1: _f("maxUnavailable", "ios"), 2: _f("maxSurge", "ios")},
    # --- batch/v1 ---
    "Job": {1: _f("metadata", "ObjectMeta"), 2: _f("spec", "JobSpec")},
    "JobSpec": {
        1: _f("parallelism", "i", KEEP),
        2: _f("completions", "i", KEEP),
        3: _f("activeDeadlineSeconds", "i", KEEP),
        4: _f("selector", "LabelSelector"),
        5: _f("manualSelector", "?", KEEP),
        6: _f("template", "PodTemplateSpec"),
        7: _f("backoffLimit", "i", KEEP),
        8: _f("ttlSecondsAfterFinished", "i", KEEP),
        10: _f("suspend", "?", KEEP),
    },
    "CronJob": {1: _f("metadata", "ObjectMeta"), 2: _f("spec", "CronJobSpec")},
    "CronJobSpec": {
        1: _f("schedule"),
        2: _f("startingDeadlineSeconds", "i", KEEP),
        3: _f("concurrencyPolicy"),
        4: _f("suspend", "?", KEEP),
        5: _f("jobTemplate", "JobTemplateSpec"),
        6: _f("successfulJobsHistoryLimit", "i", KEEP),
        7: _f("failedJobsHistoryLimit", "i", KEEP),
        8: _f("timeZone", "s", KEEP),
    },
    "JobTemplateSpec": {1: _f("metadata", "ObjectMeta"), 2: _f("spec", "JobSpec")},
}

KINDS: Final[dict[tuple[str, str], str]] = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "Secret"): "Secret",
    ("v1", "ServiceAccount"): "ServiceAccount",
    ("v1", "Service"): "Service",
    ("v1", "Pod"): "Pod",
    ("apps/v1", "Deployment"): "Deployment",
    ("batch/v1", "Job"): "Job",
    ("batch/v1", "CronJob"): "CronJob",
}
"""apiVersion and kind → top-level message (status is never read: a create ignores it)."""
