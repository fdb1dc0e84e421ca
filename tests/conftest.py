"""Project-wide pytest options.

`real_cluster` tests (marker in pyproject) run only when asked for: with
`--real-cluster`, or with KUBECONFIG set and a `-m` expression naming the marker
(`KUBECONFIG=~/.kube/config pytest -m real_cluster`). Otherwise they are skipped.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

CI_EXAMPLES = 150
"""Examples per property test without a budget of its own (hypothesis' default is 100)."""

# No deadline: the machines are shared and loaded; a slow example is not a failure.
settings.register_profile("ci", max_examples=CI_EXAMPLES, deadline=None)
settings.load_profile("ci")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--real-cluster",
        action="store_true",
        default=False,
        help="also run tests marked real_cluster, against the cluster in KUBECONFIG",
    )
    parser.addoption(
        "--fuzz-examples",
        type=int,
        default=None,
        metavar="N",
        help="examples per property test without a budget of its own (a long fuzz run: -m fuzz)",
    )


def pytest_configure(config: pytest.Config) -> None:
    examples = config.getoption("--fuzz-examples")
    if examples:
        settings.register_profile("fuzz", max_examples=examples, deadline=None)
        settings.load_profile("fuzz")


def real_cluster_enabled(config: pytest.Config) -> bool:
    if config.getoption("--real-cluster"):
        return True
    return bool(os.environ.get("KUBECONFIG")) and "real_cluster" in (config.getoption("-m") or "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if real_cluster_enabled(config):
        return
    skip = pytest.mark.skip(reason="real_cluster: needs --real-cluster, or KUBECONFIG and -m real_cluster")
    for item in items:
        if "real_cluster" in item.keywords:
            item.add_marker(skip)
