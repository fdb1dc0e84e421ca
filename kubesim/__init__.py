"""A Kubernetes API server simulator (README.md, "API behaviour"), for tests, the demo and
benchmarks.

    from kubesim import SimConfig, SimServer, SimThread, SimProcess, Simulator

    async with SimServer(SimConfig(bookmark_interval=0.05)) as server:  # in this loop
        server.sim.create({...}); server.sim.compact(); server.url, server.token

    with SimThread(SimConfig()) as st:          # in a background thread (sync tests)
        st.call(st.sim.inject_watch_error, 410)

    with SimProcess(["--scale", "2"]) as proc:  # `panopticon sim` as a child process
        proc.admin.compact(); proc.admin.bulk([...])

This package may import aiohttp, orjson and uvloop; never kubernetes, redis or hashring.
"""

from kubesim.admin_client import AdminClient, AdminError
from kubesim.config import DEFAULT_TOKEN, DEFAULT_USER, AccessRule, SimConfig
from kubesim.errors import ApiError
from kubesim.natives import WorkloadSpec, native_objects
from kubesim.runtime import SimProcess, SimServer, SimThread
from kubesim.simulator import Simulator
from kubesim.workload import example_configs, example_objects, mongodb_objects

__all__ = [
    "DEFAULT_TOKEN",
    "DEFAULT_USER",
    "AccessRule",
    "AdminClient",
    "AdminError",
    "ApiError",
    "SimConfig",
    "SimProcess",
    "SimServer",
    "SimThread",
    "Simulator",
    "WorkloadSpec",
    "example_configs",
    "example_objects",
    "mongodb_objects",
    "native_objects",
]
