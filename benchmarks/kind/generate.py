"""Load a workload preset into the kind cluster with server-side apply, qps-limited.

The objects are the simulator's: `workload_presets` runs the code that fills
`panopticon sim`, so for one preset both sides hold the same names, labels, specs and
statuses. What a real API server needs differs (see `workload_presets.apply_item`):
it assigns its own uids (the simulator's stays in the annotation
`benchmarks.panopticon.dev/sim-uid`), managedFields and timestamps are its own, and
status goes through the status subresource. Objects stream from the generator with
`--concurrency` requests in flight; a CRD (until Established) or a namespace is applied
before anything that needs it.

    generate.py --preset small                           # apply to the kind cluster
    generate.py --preset small --dry-run --out small.yaml   # the manifests, no cluster
    generate.py --preset small --dry-run --format json      # the same as JSON Lines
    generate.py --preset small --print-sim-command       # the same workload in the simulator
    generate.py --preset small --kubeconfig FILE         # any cluster (no Docker or kind needed)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from kind_cluster import DEFAULT_CLUSTER, kubeconfig_for, object_path, registry
from workload_presets import ApplyItem, apply_items, load_preset, workload_objects, write_manifests

if TYPE_CHECKING:
    from kind_api import Api, Response

RETRY_4XX = frozenset({403, 404, 409})
"""Answers that clear up on their own right after a namespace or CRD appears: the
namespace-lifecycle and service-account admission plugins read informer caches, and a
new CRD is served a moment after it is Established."""
ATTEMPTS = 8


class Progress:
    def __init__(self) -> None:
        self.done = 0
        self.failed: list[str] = []
        self.reassigned_ips = 0
        self.started = time.monotonic()
        self._last = self.started

    def tick(self) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self._last >= 5:
            self._last = now
            rate = self.done / max(now - self.started, 1e-9)
            print(
                f"applied {self.done} ({rate:.0f} objects/s), {len(self.failed)} failed",
                file=sys.stderr,
                flush=True,
            )


async def apply_with_retries(api: Api, path: str, body: dict[str, Any]) -> Response:
    resp = await api.apply(path, body)
    for attempt in range(ATTEMPTS):
        if resp.ok or resp.status not in RETRY_4XX:
            break
        await asyncio.sleep(min(5.0, 0.25 * 2**attempt))
        resp = await api.apply(path, body)
    return resp


async def apply_one(api: Api, item: ApplyItem, progress: Progress) -> None:
    path = object_path(item.rtype, item.api_version, item.namespace, item.name)
    body = item.body
    resp = await apply_with_retries(api, path, body)
    if resp.status == 422 and item.rtype.kind == "Service" and "allocated" in resp.message:
        # A generated ClusterIP taken by another Service: let the server pick one.
        spec = {k: v for k, v in body.get("spec", {}).items() if k not in ("clusterIP", "clusterIPs")}
        body = {**body, "spec": spec}
        progress.reassigned_ips += 1
        resp = await apply_with_retries(api, path, body)
    if resp.ok and item.status is not None:
        meta = {k: v for k, v in body["metadata"].items() if k in ("name", "namespace")}
        status_body = {"apiVersion": body["apiVersion"], "kind": body["kind"], "metadata": meta}
        resp = await apply_with_retries(api, path + "/status", {**status_body, "status": item.status})
    if not resp.ok:
        progress.failed.append(f"{item.rtype.kind} {item.namespace}/{item.name}: {resp.message}")
    progress.tick()


async def apply_all(api: Api, items: Iterator[ApplyItem], progress: Progress, *, concurrency: int) -> None:
    """Apply `items` as they come, `concurrency` at a time. CRDs and namespaces are
    barriers: the objects after them wait until they exist (and CRDs are Established)."""
    queue: asyncio.Queue[ApplyItem] = asyncio.Queue(maxsize=4 * concurrency)  # bounded: items stream

    async def worker() -> None:
        while True:
            item = await queue.get()
            try:
                await apply_one(api, item, progress)
            finally:
                queue.task_done()

    workers = [asyncio.create_task(worker(), name=f"apply-{i}") for i in range(max(1, concurrency))]
    crds: list[str] = []
    try:
        for item in items:
            if item.is_crd:
                await apply_one(api, item, progress)
                crds.append(item.name)
                continue
            if crds:
                await wait_established(api, crds)
                crds = []
            if item.is_namespace:
                await apply_one(api, item, progress)  # inline: what follows needs it
            else:
                await queue.put(item)
        await queue.join()
    finally:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


async def wait_established(api: Api, names: list[str], *, within: float = 120.0) -> None:
    deadline = time.monotonic() + within
    pending = list(names)
    while pending:
        resp = await api.call("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{pending[0]}")
        conditions = (resp.body.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise SystemExit(f"CRD {pending[0]} not Established after {within:.0f}s")
        await asyncio.sleep(0.5)


async def load(items: Iterator[ApplyItem], args: argparse.Namespace, kubeconfig: str) -> int:
    from kind_api import Api

    progress = Progress()
    async with Api(kubeconfig, context=args.context, qps=args.qps) as api:
        await apply_all(api, items, progress, concurrency=args.concurrency)
        seconds = time.monotonic() - progress.started
        print(
            f"{progress.done} objects in {seconds:.1f}s with {api.requests} requests "
            f"(qps limit {args.qps:g}); {progress.reassigned_ips} ClusterIPs reassigned; "
            f"{len(progress.failed)} failed",
            file=sys.stderr,
        )
    for line in progress.failed[:20]:
        print(f"  failed: {line}", file=sys.stderr)
    return 1 if progress.failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--preset", default="small", help="small, medium, large or a preset file (default small)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="write the manifests (YAML) instead of applying"
    )
    parser.add_argument("--out", default="-", help="where --dry-run writes (default: standard output)")
    parser.add_argument(
        "--format", choices=("yaml", "json"), default="yaml", help="--dry-run: YAML documents or JSON Lines"
    )
    parser.add_argument(
        "--print-sim-command", action="store_true", help="print the `panopticon sim` command for this preset"
    )
    parser.add_argument(
        "--no-sharding",
        action="store_true",
        help="with --print-sim-command: no --sharding (as for a cluster made by setup.sh --no-sharding)",
    )
    parser.add_argument(
        "--with-churn", action="store_true", help="with --print-sim-command: add --churn RATE"
    )
    parser.add_argument(
        "--cluster", default=DEFAULT_CLUSTER, help=f"kind cluster (default {DEFAULT_CLUSTER})"
    )
    parser.add_argument("--kubeconfig", help="apply to this cluster instead of the kind one")
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument("--qps", type=float, default=200.0, help="requests per second at most (default 200)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    args = parser.parse_args(argv)

    preset = load_preset(args.preset)
    if args.print_sim_command:
        print(preset.sim_command(sharding=not args.no_sharding, churn=args.with_churn))
        return 0
    kubeconfig = None if args.dry_run else kubeconfig_for(args.kubeconfig, args.cluster)
    items = apply_items(workload_objects(preset), registry())
    if not args.dry_run:
        assert kubeconfig is not None
        return asyncio.run(load(items, args, kubeconfig))
    if args.out == "-":
        counts = write_manifests(items, sys.stdout, fmt=args.format)
    else:
        with open(args.out, "w") as out:
            counts = write_manifests(items, out, fmt=args.format)
    kinds = ", ".join(f"{n} {kind}" for kind, n in counts.most_common())
    print(f"{preset.name}: {counts.total()} objects ({kinds})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
