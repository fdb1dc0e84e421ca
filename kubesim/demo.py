"""`panopticon demo`: see Panopticon work, with one command and no cluster.

Starts the Kubernetes API simulator as a separate process with a seeded workload
(the KubeDB and native example objects, generated MongoDBs, Deployments, Pods...)
and churn, loads the example MetricsConfigurations into it, runs the embedded
exporter against it, and prints where to look. Ctrl-C stops everything.

The simulator serves HTTPS with a throwaway CA: client-go (kubectl) sends a
bearer token only over TLS (clientcmd applies the user's credentials only when
the transport is TLS), so the printed kubeconfig, which carries the CA, works
with kubectl as it does for the embedded exporter. Without an `openssl` command
it falls back to plain HTTP and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import sys
import urllib.request

from kubesim import SimProcess
from panopticon import flags, serving
from panopticon.commands import run as run_command
from panopticon.errors import PanopticonError

HELP = "run the simulator with example workloads and the embedded exporter; print the URLs"
log = logging.getLogger("panopticon.demo")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address the exporter listens on")
    parser.add_argument("--port", type=flags.port, default=8080, help="/metrics (0: any free port)")
    parser.add_argument("--telemetry-port", type=flags.port, default=8081)
    parser.add_argument("--shard-port", type=flags.port, default=8082)
    parser.add_argument(
        "--scale", type=flags.integer(minimum=0), default=2, help="copies of every example object"
    )
    parser.add_argument(
        "--mongodbs", type=flags.integer(minimum=0), default=200, help="generated MongoDB objects"
    )
    parser.add_argument("--churn", type=flags.non_negative, default=20.0, help="object changes per second")
    parser.add_argument("--seed", type=flags.integer(), default=1)
    parser.add_argument(
        "--duration", type=flags.seconds, help="stop after this many seconds (default: until Ctrl-C)"
    )
    parser.add_argument("--log-level", type=flags.log_level, default="WARNING")


def _embedded_args(args: argparse.Namespace, kubeconfig: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    run_command.add_arguments(parser)
    return parser.parse_args(
        [
            "--kubeconfig", kubeconfig, "--host", args.host, "--port", str(args.port),
            "--telemetry-port", str(args.telemetry_port), "--shard-port", str(args.shard_port),
            "--log-level", args.log_level, "--status-interval", "5",
        ]
    )  # fmt: skip


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:  # noqa: S310 - our own local server
        data: bytes = r.read()
        return data


async def _wait_ready(args: argparse.Namespace, embedded: argparse.Namespace, within: float) -> None:
    """Until the shard's /readyz answers 200 (its port is known once it listens:
    `--shard-port 0` picks one)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        port = getattr(embedded, "bound_shard_port", None)
        if port is not None:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(_get, f"http://{args.host}:{port}/readyz")
                return
        await asyncio.sleep(0.2)
    raise PanopticonError(f"the exporter's shard was not ready after {within:.0f} s")


def _banner(
    args: argparse.Namespace, embedded: argparse.Namespace, sim: SimProcess, exposition: bytes
) -> str:
    lines = exposition.decode().splitlines()
    families = sum(1 for line in lines if line.startswith("# TYPE"))
    series = sum(1 for line in lines if line and not line.startswith("#"))
    sample = [line for line in lines if line.startswith("kubedb_com_mongodb_status_phase{")][:6]
    metrics = f"http://{args.host}:{embedded.bound_metrics_port}/metrics"
    telemetry = f"http://{args.host}:{embedded.bound_telemetry_port}/metrics"
    return "\n".join(
        [
            "",
            "Panopticon demo is running.",
            f"  metrics:        {metrics}   ({families} families, {series} series now)",
            f"  telemetry:      {telemetry}",
            f"  shard:          http://{args.host}:{embedded.bound_shard_port}/metrics  (/readyz, /healthz)",
            f"  API simulator:  {sim.url}  (kubeconfig: {sim.kubeconfig_path})",
            f"  kubectl:        export KUBECONFIG={sim.kubeconfig_path}; kubectl get mongodbs -A",
            f"  churn:          {args.churn:g} object changes per second",
            "",
            "  A few series:",
            *(f"    {line}" for line in sample),
            "",
            f"  Try: curl -s {metrics} | grep kubedb_com_mongodb_info | head",
            "  Ctrl-C to stop.",
            "",
        ]
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    flags.distinct_ports(
        {"--port": args.port, "--telemetry-port": args.telemetry_port, "--shard-port": args.shard_port}
    )
    https = shutil.which("openssl") is not None
    if not https:
        print(
            "no openssl command: the simulator serves plain HTTP, which kubectl cannot use", file=sys.stderr
        )
    sim_args = [
        *(["--https"] if https else []),
        "--with-configs",
        "--scale",
        str(args.scale),
        "--mongodbs",
        str(args.mongodbs),
    ]
    sim_args += ["--seed", str(args.seed), "--churn", str(args.churn)]
    print("starting the Kubernetes API simulator...", file=sys.stderr)
    with SimProcess(sim_args) as sim:
        embedded = _embedded_args(args, str(sim.kubeconfig_path))

        async def main() -> int:
            stop = serving.stop_event()
            exporter = asyncio.create_task(run_command.run_embedded(embedded, stop), name="exporter")
            ready = asyncio.create_task(_wait_ready(args, embedded, within=120), name="ready")
            try:
                await asyncio.wait({exporter, ready}, return_when=asyncio.FIRST_COMPLETED)
                if not ready.done():  # the exporter ended first: its error (a port in use...)
                    ready.cancel()
                    await exporter
                    return 0
                await ready
                data = await asyncio.to_thread(
                    _get, f"http://{args.host}:{embedded.bound_metrics_port}/metrics"
                )
                print(_banner(args, embedded, sim, data), flush=True)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(args.duration):
                        await stop.wait()
            finally:
                stop.set()
                await exporter
            return 0

        return serving.run(main)
