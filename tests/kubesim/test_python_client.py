"""The `kubernetes` package (what Panopticon loads credentials with) against the
simulator's HTTPS mode: kubeconfig and in-cluster service-account paths
(kubesim/README.md, "Authentication and authorization")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.config.incluster_config import InClusterConfigLoader

from kubesim import SimConfig, SimThread


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    with SimThread(SimConfig(seed=5, compaction_window=None), https=True) as st:
        yield st


def test_the_kubernetes_package_reads_the_simulators_kubeconfig(sim: SimThread, tmp_path: Path) -> None:
    path = sim.server.write_kubeconfig(tmp_path / "kubeconfig")
    api_client = config.new_client_from_config(config_file=str(path))
    with api_client:
        names = [ns.metadata.name for ns in client.CoreV1Api(api_client).list_namespace().items]
        assert "kube-system" in names
        versions = client.VersionApi(api_client).get_code()
        assert versions.major == "1"


def test_the_in_cluster_loader_works_with_a_token_file_and_the_ca(sim: SimThread, tmp_path: Path) -> None:
    assert sim.server.certificate is not None
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text(sim.token)
    ca.write_bytes(sim.server.certificate.ca_pem)
    env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(sim.server.port)}
    cfg = client.Configuration()
    InClusterConfigLoader(token_filename=str(token), cert_filename=str(ca), environ=env).load_and_set(cfg)
    with client.ApiClient(cfg) as api_client:
        body = client.CoreV1Api(api_client).list_namespace(limit=1)
        assert len(body.items) == 1 and body.metadata._continue
