"""Core workload kinds: Pod, ReplicationController, Deployment, ReplicaSet,
StatefulSet, DaemonSet, Job, CronJob.

Every regular container counts as application; native kinds have no mode (empty
string) and no TLS switch. Replicas:

- Pod: 1;
- Deployment, ReplicaSet, StatefulSet, ReplicationController: `spec.replicas`,
  default 1 (the API server's default);
- DaemonSet: `status.desiredNumberScheduled` (nodes the controller wants a pod
  on), 0 before the controller has reported it;
- Job: `spec.parallelism` (pods running at once), default 1; CronJob: the same
  field of its `spec.jobTemplate`: one run's worth of pods.

A StatefulSet's storage is its `volumeClaimTemplates`, per replica.
"""

from __future__ import annotations

from panopticon.errors import ResourceCalcError
from panopticon.render.expr.resources.databases import spec_of
from panopticon.render.expr.resources.fields import JSONMap, count, describe, mapping, sequence
from panopticon.render.expr.resources.plan import Plan, PodGroup


def pod(obj: JSONMap) -> Plan:
    """A Pod: one pod, `spec` is its pod spec."""
    return _plan(PodGroup("spec", spec_of(obj), 1))


def scaled(obj: JSONMap) -> Plan:
    """Deployment, ReplicaSet, ReplicationController: `spec.replicas` pods of `spec.template`."""
    spec = spec_of(obj)
    return _plan(_template(spec, "spec", count(spec, "replicas", "spec", default=1)))


def stateful_set(obj: JSONMap) -> Plan:
    """StatefulSet: like `scaled`, plus each replica's volume claims."""
    spec = spec_of(obj)
    group = _template(spec, "spec", count(spec, "replicas", "spec", default=1))
    claims = []
    for index, item in enumerate(sequence(spec, "volumeClaimTemplates", "spec")):
        where = f"spec.volumeClaimTemplates[{index}]"
        if not isinstance(item, dict):
            raise ResourceCalcError(f"{where}: expected an object, got {describe(item)}")
        claim = mapping(item, "spec", where)
        if claim is not None:
            claims.append((f"{where}.spec", claim))
    return _plan(PodGroup(group.where, group.pod_spec, group.replicas, storage=tuple(claims)))


def daemon_set(obj: JSONMap) -> Plan:
    """DaemonSet: one pod per node the controller schedules on."""
    status = mapping(obj, "status", "") or {}
    replicas = count(status, "desiredNumberScheduled", "status", default=0)
    return _plan(_template(spec_of(obj), "spec", replicas))


def job(obj: JSONMap) -> Plan:
    """Job: `spec.parallelism` pods at once."""
    spec = spec_of(obj)
    return _plan(_template(spec, "spec", count(spec, "parallelism", "spec", default=1)))


def cron_job(obj: JSONMap) -> Plan:
    """CronJob: the pods of one run of `spec.jobTemplate`."""
    job_template = mapping(spec_of(obj), "jobTemplate", "spec")
    job_spec = None if job_template is None else mapping(job_template, "spec", "spec.jobTemplate")
    if job_spec is None:
        return _plan(PodGroup("spec.jobTemplate.spec.template.spec", None, 1))
    where = "spec.jobTemplate.spec"
    return _plan(_template(job_spec, where, count(job_spec, "parallelism", where, default=1)))


def _template(spec: JSONMap, where: str, replicas: int) -> PodGroup:
    """`replicas` pods of the pod template at `<where>.template`."""
    template = mapping(spec, "template", where)
    pod_spec = None if template is None else mapping(template, "spec", f"{where}.template")
    return PodGroup(f"{where}.template.spec", pod_spec, replicas)


def _plan(group: PodGroup) -> Plan:
    return Plan(mode="", uses_tls=False, groups=(group,))
