"""A churn driver: updates, deletes and creates at a steady rate (README.md, "Workload generation").

Each tick (10 ms) spends the events the rate allows on randomly chosen objects of
the selected resources: an update bumps an annotation and sometimes moves the
`churn-group` label (so selector watches see ADDED/DELETED transitions) or the
status phase; a delete removes an object; a create clones a live one under a new
name and uid. Deterministic for a seed and a given sequence of ticks.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubesim import errors
from kubesim.objects import WriteOptions
from kubesim.resources import ResourceType

if TYPE_CHECKING:
    from kubesim.simulator import Simulator

TICK = 0.01
_PRESERVE = WriteOptions(preserve=True)
_PHASES = {
    "Pod": ("Running", "Pending", "Running"),
    "MongoDB": ("Ready", "Provisioning", "Ready", "Critical"),
}


@dataclass(slots=True)
class ChurnStats:
    updates: int = 0
    deletes: int = 0
    creates: int = 0
    skipped: int = 0

    @property
    def events(self) -> int:
        return self.updates + self.deletes + self.creates


@dataclass(slots=True)
class _Pool:
    rtype: ResourceType
    keys: list[str] = field(default_factory=list)


class Churn:
    """Mutates `resources` (plurals, or `plural.group`; default: every one with
    objects except namespaces and CRDs) at `rate` events per second."""

    def __init__(
        self,
        sim: Simulator,
        *,
        rate: float,
        seed: int = 0,
        resources: tuple[str, ...] = (),
        mix: tuple[float, float, float] = (0.8, 0.1, 0.1),
    ) -> None:
        self.sim = sim
        self.rate = rate
        self.rng = random.Random(f"churn:{seed}")  # noqa: S311 - reproducible load, not security
        self.mix = mix
        self.stats = ChurnStats()
        self._serial = 0
        self._pools = [
            _Pool(st.rtype, list(st.current))
            for st in sim.storage.stores.values()
            if _selected(st.rtype, resources) and st.current
        ]

    def step(self, events: int) -> None:
        """Spend `events` mutations now."""
        if not self._pools:
            return
        for _ in range(events):
            pool = self.rng.choice(self._pools)
            roll = self.rng.random()
            try:
                if roll < self.mix[0] or len(pool.keys) < 2:
                    self._update(pool)
                elif roll < self.mix[0] + self.mix[1]:
                    self._delete(pool)
                else:
                    self._create(pool)
            except errors.ApiError:
                self.stats.skipped += 1

    def _pick(self, pool: _Pool) -> tuple[int, Any]:
        st = self.sim.storage.store(pool.rtype)
        while pool.keys:
            i = self.rng.randrange(len(pool.keys))
            v = st.current.get(pool.keys[i])
            if v is not None:
                return i, v
            pool.keys[i] = pool.keys[-1]
            pool.keys.pop()
        raise errors.not_found(pool.rtype.plural, "")

    def _update(self, pool: _Pool) -> None:
        _, v = self._pick(pool)
        obj = v.obj()
        meta = obj["metadata"]
        self._serial += 1
        meta.setdefault("annotations", {})["panopticon.dev/churn"] = str(self._serial)
        if self.rng.random() < 0.1:
            labels = meta.setdefault("labels", {})
            labels["churn-group"] = "b" if labels.get("churn-group") == "a" else "a"
        phases = _PHASES.get(pool.rtype.kind)
        if phases and isinstance(obj.get("status"), dict) and self.rng.random() < 0.3:
            obj["status"]["phase"] = self.rng.choice(phases)
        self.sim.objects.update(pool.rtype, obj, namespace=v.namespace, name=v.name, opts=_PRESERVE)
        self.stats.updates += 1

    def _delete(self, pool: _Pool) -> None:
        i, v = self._pick(pool)
        self.sim.storage.delete(pool.rtype, v.key)  # straight delete: finalizers would only stall churn
        pool.keys[i] = pool.keys[-1]
        pool.keys.pop()
        self.stats.deletes += 1

    def _create(self, pool: _Pool) -> None:
        _, v = self._pick(pool)
        obj = v.obj()
        meta = obj["metadata"]
        self._serial += 1
        meta["name"] = f"{meta['name'].rsplit('-c', 1)[0]}-c{self._serial}"
        for k in ("uid", "resourceVersion", "creationTimestamp"):
            meta.pop(k, None)
        created = self.sim.objects.create(pool.rtype, obj, namespace=v.namespace, opts=_PRESERVE)
        pool.keys.append(created.key)
        self.stats.creates += 1

    async def run(self, duration: float | None = None) -> ChurnStats:
        """Churn until cancelled, or for `duration` seconds."""
        loop = asyncio.get_running_loop()
        start = last = loop.time()
        budget = 0.0
        while duration is None or loop.time() - start < duration:
            await asyncio.sleep(TICK)
            now = loop.time()
            budget += (now - last) * self.rate
            last = now
            n = int(budget)
            budget -= n
            self.step(n)
        return self.stats


def _selected(rtype: ResourceType, resources: tuple[str, ...]) -> bool:
    if not resources:
        return rtype.plural not in ("namespaces", "customresourcedefinitions")
    return any(r in (rtype.plural, f"{rtype.plural}.{rtype.group}") for r in resources)
