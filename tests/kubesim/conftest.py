"""Fixtures of the simulator's tests.

`api` is the black-box target of the contract tests: the in-process simulator
(a `SimThread`, one per session) by default, or the cluster in KUBECONFIG for
the `real_cluster` parameter (skipped unless asked for; see tests/conftest.py).
Tests that need a simulator knob take `knobs`, which skips on a real cluster and
restores the configuration and clears faults afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubesim import AdminClient, SimConfig, SimThread
from tests.kubesim.client import Api, api_from_kubeconfig

TEST_CONFIG = SimConfig(
    seed=7,
    too_large_rv_wait=0.3,  # real: 3 s; tests only need "waits, then 504"
    compaction_window=None,  # tests compact explicitly
)


@pytest.fixture(scope="session")
def sim_thread() -> Iterator[SimThread]:
    with SimThread(TEST_CONFIG) as st:
        yield st


@pytest.fixture(scope="session", params=["sim", pytest.param("real", marks=pytest.mark.real_cluster)])
def api(request: pytest.FixtureRequest) -> Api:
    if request.param == "sim":
        st: SimThread = request.getfixturevalue("sim_thread")
        return Api(st.url, token=st.token, admin=AdminClient(st.url, st.token))
    path = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    return api_from_kubeconfig(path.split(os.pathsep)[0])


@pytest.fixture
def ns(api: Api) -> Iterator[str]:
    """A fresh namespace, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    api.create_namespace(name)
    yield name
    api.delete_namespace(name)


@pytest.fixture
def knobs(api: Api) -> Iterator[AdminClient]:
    """The simulator's admin API; restores the config and clears faults afterwards."""
    if api.admin is None:
        pytest.skip("needs the simulator's admin API (not available on a real cluster)")
    before = api.admin.config()
    yield api.admin
    api.admin.clear_faults()
    now = api.admin.config()
    changed = {k: v for k, v in before.items() if now.get(k) != v}
    if changed:
        api.admin.config(**changed)
