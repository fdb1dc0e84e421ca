"""The figures the resource functions report for one object, computed once.

`ResourceSummary` holds everything the seven resource functions return, so an
evaluator summarizes an object once and answers all of them from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from panopticon.errors import QuantityError, ResourceCalcError

RESOURCE_TYPES: Final = ("cpu", "memory", "storage")
"""The resource types the functions accept, spelled as in Kubernetes resource lists."""

ResourceFigures = Mapping[str, float]
"""Read-only `{"cpu": cores, "memory": bytes, "storage": bytes}`: exactly the keys of `RESOURCE_TYPES`."""


OFFSETS: Final = {"cpu": 0, "memory": 1, "storage": 2}
"""Where a resource type's figure sits within each triple of `ResourceSummary.totals`."""

Totals = tuple[int, int, int, int, int, int, int, int, int, int, int, int]
"""The four figures in milli-units, each as (cpu, memory, storage): total requests,
total limits, application requests, application limits."""


def figures(cpu: float, memory: float, storage: float) -> ResourceFigures:
    """A read-only figures mapping."""
    return MappingProxyType({"cpu": cpu, "memory": memory, "storage": storage})


def check_type(rtype: object) -> str:
    """`rtype` if it is one of `RESOURCE_TYPES`, else `ResourceCalcError`."""
    for known in RESOURCE_TYPES:
        if rtype == known:
            return known
    shown = repr(rtype) if isinstance(rtype, str) and len(rtype) <= 40 else type(rtype).__name__
    raise ResourceCalcError(f"unknown resource type {shown}: expected cpu, memory or storage")


@dataclass(frozen=True, slots=True)
class ResourceSummary:
    """What the resource functions report for one object.

    - `replicas`: pods the object asks for, over all its roles (shards, routers...).
    - `mode`: the topology name resource-metrics reports (`ReplicaSet`, `Sharded`,
      `Dedicated`...); empty for native kinds.
    - `uses_tls`: whether the object configures TLS.
    - `total_requests`, `total_limits`: every pod's containers, sidecars and the
      metrics exporter included, and its storage.
    - `app_requests`, `app_limits`: only the application (database) containers, and
      the storage.

    The four figures are `ResourceFigures` (`summary.total_requests["cpu"]`). They
    are held in `totals` as exact sums in milli-units (see `Totals`) and converted
    when read (`figure`): an object's summary is computed on every render, and most
    configs read a few of its twelve figures, if any. Replicas, mode and TLS never
    depend on resource quantities: when the resources cannot be computed (a
    malformed quantity, a missing database container) `totals` is None, `error`
    says why, and reading any of the four figures raises that error again; the
    other fields still hold.
    """

    kind: str
    replicas: int
    mode: str
    uses_tls: bool
    totals: Totals | None
    error: ResourceCalcError | QuantityError | None = None

    @property
    def total_requests(self) -> ResourceFigures:
        return self._figures(0)

    @property
    def total_limits(self) -> ResourceFigures:
        return self._figures(3)

    @property
    def app_requests(self) -> ResourceFigures:
        return self._figures(6)

    @property
    def app_limits(self) -> ResourceFigures:
        return self._figures(9)

    def figure(self, offset: int) -> float:
        """The figure at `offset` in `totals` (cores or bytes); raises like the properties."""
        # int / int is correctly rounded: 9700 milli-cores are exactly the double 9.7.
        return self.checked_totals()[offset] / 1000

    def _figures(self, start: int) -> ResourceFigures:
        totals = self.checked_totals()
        return figures(totals[start] / 1000, totals[start + 1] / 1000, totals[start + 2] / 1000)

    def checked_totals(self) -> Totals:
        """`totals`, or the error that prevented them."""
        if self.totals is not None:
            return self.totals
        # A fresh exception per raise: re-raising one stored instance would keep
        # growing its traceback with every evaluation that reads it.
        if self.error is not None:
            raise type(self.error)(*self.error.args)
        raise ResourceCalcError(f"{self.kind}: no resource figures")
