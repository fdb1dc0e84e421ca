"""What a kind's calculator says about an object: its mode, TLS, and its pods.

Calculators only read the object's shape (counts, names, where templates live)
into a `Plan`; `tally` does all the arithmetic, the same way for every kind.

Both records are NamedTuples rather than frozen dataclasses: a few are built per
object on every render, and a NamedTuple is about twice as cheap to construct.
"""

from __future__ import annotations

from typing import NamedTuple

from panopticon.render.expr.resources.fields import JSONMap


class PodGroup(NamedTuple):
    """`replicas` identical pods: a workload's template, or one KubeDB node (a shard, a role, a router).

    - `pod_spec` is the pod template's spec (containers, initContainers), None if
      the object has none; `where` is its path, for error messages.
    - `app_container` names the application container; None means every regular
      container is application (native workloads).
    - `legacy_resources` is the application container's resources when they are
      given outside the container list, as older KubeDB objects do
      (`podTemplate.spec.resources`); used only if no container has that name.
    - `storage` lists the PersistentVolumeClaim specs each pod gets, with their paths.
    - `exporter`: whether each pod also runs the plan's metrics exporter.
    """

    where: str
    pod_spec: JSONMap | None
    replicas: int
    app_container: str | None = None
    legacy_resources: JSONMap | None = None
    legacy_where: str = ""
    storage: tuple[tuple[str, JSONMap], ...] = ()
    exporter: bool = False


class Plan(NamedTuple):
    """An object's mode, TLS use, pod groups and metrics exporter (a container-like
    object with `resources`, added to every group that has `exporter` set)."""

    mode: str
    uses_tls: bool
    groups: tuple[PodGroup, ...]
    exporter: JSONMap | None = None
    exporter_where: str = ""

    @property
    def replicas(self) -> int:
        """Pods over all groups."""
        total = 0
        for group in self.groups:  # not sum() of a generator: this runs for every object
            total += group.replicas
        return total
