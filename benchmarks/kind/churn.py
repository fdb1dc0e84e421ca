"""Sustained churn on the kind cluster: updates, deletes and creates at --rate events/s.

The mutations are the simulator's (kubesim/churn.py), so a churn phase means the
same on both sides: each tick (10 ms) spends the events the rate allows on objects
picked at random from the generated ones (those carrying the sim-uid annotation) of
the selected resources; 80% updates (an annotation `panopticon.dev/churn`, 10% of them
also flip the `churn-group` label, 30% of Pod and MongoDB updates change
`status.phase`), 10% deletes, 10% creates (a clone of a live object under a new name).

Differences a real API server imposes: an update that also changes the phase is two
requests (the object, then its status subresource) and so two MODIFIED events; an
object with finalizers has them removed before it is deleted (the simulator deletes
straight away).

    churn.py --preset small [--rate 20] [--seconds 60] [--kubeconfig FILE]

Prints one JSON line with the counts when done.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from kind_cluster import DEFAULT_CLUSTER, SIM_UID, kubeconfig_for, object_path, registry
from workload_presets import SERVER_FIELDS, load_preset

if TYPE_CHECKING:
    from kind_api import Api

    from kubesim.resources import ResourceType

MERGE_PATCH = "application/merge-patch+json"
MIX = (0.8, 0.1, 0.1)
"""update, delete, create: the simulator's default mix."""
NOT_CHURNED = ("namespaces", "customresourcedefinitions")


@dataclass(slots=True)
class Pool:
    rtype: ResourceType
    api_version: str
    objects: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    """update, delete or create."""
    pool: Pool
    obj: dict[str, Any]
    """The object as last seen (for create: the new object)."""
    patch: dict[str, Any] | None = None
    """For update: the merge patch (its `status` goes to the status subresource)."""


@dataclass(slots=True)
class Stats:
    updates: int = 0
    deletes: int = 0
    creates: int = 0
    failed: int = 0
    skipped: int = 0
    """Updates and deletes that found the object gone: an earlier event on it ran first
    (events run concurrently); the simulator counts these as skipped too."""
    lagged_ticks: int = 0
    """Ticks that found the previous events still queued: the API server is slower than the rate."""
    errors: list[str] = field(default_factory=list)

    def fail(self, what: str, message: str) -> None:
        self.failed += 1
        if len(self.errors) < 10:
            self.errors.append(f"{what}: {message}")


def selected(rtype: ResourceType, resources: tuple[str, ...]) -> bool:
    if not resources:
        return rtype.plural not in NOT_CHURNED
    return any(r in (rtype.plural, f"{rtype.plural}.{rtype.group}") for r in resources)


async def list_generated(api: Api, rtype: ResourceType) -> list[dict[str, Any]]:
    """Every object of `rtype` that generate.py applied (paged LIST, all namespaces)."""
    out: list[dict[str, Any]] = []
    base = object_path(rtype, rtype.storage_api_version, "", "")
    params = {"limit": "500"}
    while True:
        resp = await api.call("GET", base, params=params)
        if not resp.ok:
            return out  # not served by this cluster: nothing to churn
        # Items of built-in lists come without their type; clones need it for apply.
        head = {"apiVersion": rtype.storage_api_version, "kind": rtype.kind}
        items = resp.body.get("items", [])
        out += [{**head, **o} for o in items if SIM_UID in (o["metadata"].get("annotations") or {})]
        token = (resp.body.get("metadata") or {}).get("continue")
        if not token:
            return out
        params = {"limit": "500", "continue": token}


class Churner:
    def __init__(self, api: Api, pools: list[Pool], *, seed: int) -> None:
        from kubesim import churn  # the simulator's tick and phase choices, kept in one place

        self.tick: float = churn.TICK
        self.phases: dict[str, tuple[str, ...]] = churn._PHASES
        self.api = api
        self.pools = [p for p in pools if p.objects]
        self.rng = random.Random(f"churn:{seed}")
        self.stats = Stats()
        self.serial = 0

    def next_event(self) -> Event:
        """Decide one event now (in tick order, so a seed gives one sequence of choices)."""
        pool = self.rng.choice(self.pools)
        roll = self.rng.random()
        i = self.rng.randrange(len(pool.objects))
        obj = pool.objects[i]
        self.serial += 1
        if roll < MIX[0] or len(pool.objects) < 2:
            return Event("update", pool, obj, self._update_patch(pool, obj))
        if roll < MIX[0] + MIX[1]:
            pool.objects[i] = pool.objects[-1]
            pool.objects.pop()
            return Event("delete", pool, obj)
        clone = orjson.loads(orjson.dumps(obj))
        meta = clone["metadata"]
        meta["name"] = f"{meta['name'].rsplit('-c', 1)[0]}-c{self.serial}"
        for key in SERVER_FIELDS:
            meta.pop(key, None)
        (meta.get("annotations") or {}).pop(SIM_UID, None)
        pool.objects.append(clone)
        return Event("create", pool, clone)

    def _update_patch(self, pool: Pool, obj: dict[str, Any]) -> dict[str, Any]:
        """The merge patch of an update (applied to the cached copy too)."""
        meta = obj["metadata"]
        value = str(self.serial)
        meta.setdefault("annotations", {})["panopticon.dev/churn"] = value
        patch: dict[str, Any] = {"metadata": {"annotations": {"panopticon.dev/churn": value}}}
        if self.rng.random() < 0.1:
            labels = meta.setdefault("labels", {})
            labels["churn-group"] = "b" if labels.get("churn-group") == "a" else "a"
            patch["metadata"]["labels"] = {"churn-group": labels["churn-group"]}
        phases = self.phases.get(pool.rtype.kind)
        if phases and isinstance(obj.get("status"), dict) and self.rng.random() < 0.3:
            obj["status"]["phase"] = self.rng.choice(phases)
            patch["status"] = {"phase": obj["status"]["phase"]}
        return patch

    async def perform(self, event: Event) -> None:
        pool, obj, meta = event.pool, event.obj, event.obj["metadata"]
        rtype, api = pool.rtype, self.api
        path = object_path(rtype, pool.api_version, meta.get("namespace", ""), meta["name"])
        has_status = "status" in rtype.subresources
        if event.kind == "update":
            patch = dict(event.patch or {})
            status = patch.pop("status", None) if has_status else None
            resp = await api.call("PATCH", path, body=patch, content_type=MERGE_PATCH)
            if resp.ok and status is not None:
                resp = await api.call(
                    "PATCH", path + "/status", body={"status": status}, content_type=MERGE_PATCH
                )
            self.stats.updates += resp.ok
        elif event.kind == "delete":
            if meta.get("finalizers"):
                await api.call(
                    "PATCH", path, body={"metadata": {"finalizers": None}}, content_type=MERGE_PATCH
                )
            resp = await api.call("DELETE", path)
            self.stats.deletes += resp.ok
        else:
            status = obj.get("status") if has_status else None
            resp = await api.apply(path, {k: v for k, v in obj.items() if k != "status" or not has_status})
            if resp.ok and status:
                ident = {k: v for k, v in meta.items() if k in ("name", "namespace")}
                head = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": ident}
                resp = await api.apply(path + "/status", {**head, "status": status})
            self.stats.creates += resp.ok
        if resp.status == 404 and event.kind != "create":
            self.stats.skipped += 1
        elif not resp.ok:
            self.stats.fail(
                f"{event.kind} {rtype.kind} {meta.get('namespace', '')}/{meta['name']}", resp.message
            )

    async def run(self, rate: float, seconds: float, *, concurrency: int) -> None:
        queue: asyncio.Queue[Event] = asyncio.Queue()

        async def worker() -> None:
            while True:
                event = await queue.get()
                try:
                    await self.perform(event)
                finally:
                    queue.task_done()

        workers = [asyncio.create_task(worker(), name=f"churn-{i}") for i in range(concurrency)]
        loop = asyncio.get_running_loop()
        start = last = loop.time()
        budget = 0.0
        try:
            while loop.time() - start < seconds:
                await asyncio.sleep(self.tick)
                now = loop.time()
                budget += (now - last) * rate
                last = now
                n = int(budget)
                budget -= n
                if n and queue.qsize() > rate * self.tick * 2:
                    self.stats.lagged_ticks += 1
                for _ in range(n):
                    queue.put_nowait(self.next_event())
            await queue.join()
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)


async def churn(args: argparse.Namespace, kubeconfig: str) -> dict[str, Any]:
    from kind_api import Api

    reg = registry()
    resources = tuple(r for r in args.resources.split(",") if r)
    async with Api(kubeconfig, context=args.context, qps=args.qps) as api:
        rtypes = [t for t in reg if selected(t, resources)]
        lists = await asyncio.gather(*(list_generated(api, t) for t in rtypes))
        pools = [Pool(t, t.storage_api_version, objs) for t, objs in zip(rtypes, lists, strict=True)]
        churner = Churner(api, pools, seed=args.seed)
        if not churner.pools:
            raise SystemExit("churn.py: no generated objects to churn; run generate.py first")
        started = time.monotonic()
        await churner.run(args.rate, args.seconds, concurrency=args.concurrency)
        elapsed = time.monotonic() - started
        s = churner.stats
        events = s.updates + s.deletes + s.creates
        return {
            "rate": args.rate,
            "seconds": round(elapsed, 3),
            "objects": sum(len(p) for p in lists),
            "updates": s.updates,
            "deletes": s.deletes,
            "creates": s.creates,
            "failed": s.failed,
            "skipped": s.skipped,
            "achieved_rate": round(events / elapsed, 2) if elapsed else 0.0,
            "lagged_ticks": s.lagged_ticks,
            "requests": api.requests,
            "errors": s.errors,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="small", help="rate, seconds, seed and resources come from it")
    parser.add_argument("--rate", type=float, help="events per second (default: the preset's)")
    parser.add_argument("--seconds", type=float, help="how long (default: the preset's)")
    parser.add_argument("--resources", help="comma-separated plurals (default: the preset's, else all)")
    parser.add_argument(
        "--cluster", default=DEFAULT_CLUSTER, help=f"kind cluster (default {DEFAULT_CLUSTER})"
    )
    parser.add_argument("--kubeconfig", help="churn this cluster instead of the kind one")
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument("--qps", type=float, default=0.0, help="request limit (default none: the rate rules)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    args = parser.parse_args(argv)
    kubeconfig = kubeconfig_for(args.kubeconfig, args.cluster)
    preset = load_preset(args.preset)
    args.seed = preset.seed
    args.rate = preset.churn_rate if args.rate is None else args.rate
    args.seconds = preset.churn_seconds if args.seconds is None else args.seconds
    args.resources = ",".join(preset.churn_resources) if args.resources is None else args.resources
    if args.rate <= 0 or args.seconds <= 0:
        raise SystemExit("churn.py: nothing to do (rate or seconds is 0)")
    result = asyncio.run(churn(args, kubeconfig))
    print(orjson.dumps(result).decode())
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
