"""Credentials through the `kubernetes` package: kubeconfigs written by `panopticon sim
--kubeconfig-out` (HTTP and HTTPS), contexts, exec plugins, client certificates,
insecure-skip-tls-verify, and the in-cluster service account with token rotation."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubesim import SimProcess, SimServer
from kubesim.tls import make_certificate
from panopticon.kube.client import KubeClient
from panopticon.kube.credentials import load_credentials
from panopticon.kube.discovery import Discovery
from panopticon.kube.errors import CredentialsError
from tests.panopticon.kube.helpers import FAST_CLIENT, sim_config
from tests.support import aio
from tests.support.aio import asynctest


async def api_versions(kubeconfig: str | None = None, **kwargs: Any) -> list[str]:
    creds = load_credentials(kubeconfig, **kwargs)
    async with KubeClient(creds, settings=FAST_CLIENT) as client:
        ref = await Discovery(client).resolve("apps/v1", "Deployment")
        assert ref.path == "/apis/apps/v1/deployments"
        return list((await client.get("/api"))["versions"])


@pytest.mark.slow
@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
def test_a_kubeconfig_written_by_panopticon_sim_works(https: bool) -> None:

    with SimProcess(
        ["--scale", "0", "--namespaces", "0", "--nodes", "0", *(["--https"] if https else [])]
    ) as proc:
        creds = load_credentials(str(proc.kubeconfig_path))
        assert creds.server == proc.url and creds.source.startswith("kubeconfig ")
        if https:
            assert creds.ssl_context is not None and creds.ssl_context.verify_mode == ssl.CERT_REQUIRED
        else:
            assert creds.ssl_context is None
        assert creds.authorization() == f"Bearer {proc.token}"
        assert aio.run(api_versions(str(proc.kubeconfig_path))) == ["v1"]


def kubeconfig(
    path: Path, clusters: dict[str, dict[str, Any]], users: dict[str, dict[str, Any]], **ctx: Any
) -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": c} for n, c in clusters.items()],
        "users": [{"name": n, "user": u} for n, u in users.items()],
        "contexts": [{"name": n, "context": c} for n, c in ctx.items()],
        "current-context": next(iter(ctx)),
    }
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@asynctest
async def test_the_context_chooses_server_user_and_namespace(tmp_path: Path) -> None:
    async with SimServer(sim_config()) as server:
        path = kubeconfig(
            tmp_path / "config",
            {"nowhere": {"server": "http://127.0.0.1:9"}, "sim": {"server": server.url}},
            {"nobody": {"token": "x"}, "admin": {"token": server.token}},
            first={"cluster": "nowhere", "user": "nobody"},
            second={"cluster": "sim", "user": "admin", "namespace": "team-a"},
        )
        default = load_credentials(path)
        assert default.server == "http://127.0.0.1:9" and default.namespace == ""
        creds = load_credentials(path, "second")
        assert creds.server == server.url and creds.namespace == "team-a"
        assert await api_versions(path, context="second") == ["v1"]


@asynctest
async def test_an_exec_plugin_supplies_the_token(tmp_path: Path) -> None:
    async with SimServer(sim_config()) as server:
        credential = {
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "status": {"token": server.token, "expirationTimestamp": "2099-01-01T00:00:00Z"},
        }
        plugin = tmp_path / "plugin.py"
        plugin.write_text(f"print({json.dumps(json.dumps(credential))})\n")
        exec_user = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": sys.executable,
                "args": [str(plugin)],
                "interactiveMode": "Never",
            }
        }
        path = kubeconfig(
            tmp_path / "config",
            {"sim": {"server": server.url}},
            {"exec": exec_user},
            only={"cluster": "sim", "user": "exec"},
        )
        creds = load_credentials(path)
        assert creds.authorization() == f"Bearer {server.token}"
        assert await api_versions(path) == ["v1"]


@asynctest
async def test_client_certificates_and_insecure_skip_tls_verify_build_the_ssl_context(tmp_path: Path) -> None:
    async with SimServer(sim_config(), https=True) as server:
        cert = server.certificate
        assert cert is not None
        b64 = lambda p: base64.b64encode(Path(p).read_bytes()).decode()  # noqa: E731
        user = {
            "token": server.token,
            "client-certificate-data": b64(cert.cert_file),
            "client-key-data": b64(cert.key_file),
        }
        path = kubeconfig(
            tmp_path / "config",
            {"sim": {"server": server.url, "insecure-skip-tls-verify": True}},
            {"admin": user},
            only={"cluster": "sim", "user": "admin"},
        )
        creds = load_credentials(path)
        assert creds.ssl_context is not None
        assert creds.ssl_context.verify_mode == ssl.CERT_NONE and not creds.ssl_context.check_hostname
        assert await api_versions(path) == ["v1"]


def service_account(directory: Path, *, token: str, ca_pem: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "token").write_text(token)
    (directory / "ca.crt").write_bytes(ca_pem)
    (directory / "namespace").write_text("monitoring\n")
    return directory


@asynctest
async def test_in_cluster_credentials_follow_the_env_and_a_rotating_token(tmp_path: Path) -> None:
    async with SimServer(sim_config(), https=True) as server:
        assert server.certificate is not None
        sa = service_account(tmp_path / "sa", token=server.token, ca_pem=server.certificate.ca_pem)
        env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(server.port)}
        creds = load_credentials(environ=env, service_account_dir=str(sa))
        assert creds.server == server.url and creds.source == "in-cluster"
        assert creds.namespace == "monitoring"
        async with KubeClient(creds, settings=FAST_CLIENT) as client:
            assert (await client.get("/api"))["versions"] == ["v1"]
            # The kubelet rotates the bound token; the old one stops working.
            server.sim.reconfigure(tokens=(("rotated-token", "system:admin"),), admin_token=server.token)
            replacement = sa / "token.new"
            replacement.write_text("rotated-token")
            os.replace(replacement, sa / "token")
            assert (await client.get("/api"))["versions"] == ["v1"]
            assert [r.status for r in server.sim.requests.since(0)][-2:] == [401, 200]


def test_in_cluster_needs_both_env_vars_and_the_files(tmp_path: Path) -> None:
    sa = service_account(tmp_path / "sa", token="t", ca_pem=b"not a certificate")
    with pytest.raises(CredentialsError, match="in-cluster"):
        load_credentials(environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, service_account_dir=str(sa))
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    with pytest.raises(CredentialsError, match="TLS"):
        load_credentials(environ=env, service_account_dir=str(sa))


@asynctest
async def test_in_cluster_names_ipv6_hosts_in_brackets_and_rejects_empty_files(tmp_path: Path) -> None:
    async with SimServer(sim_config(), https=True) as server:
        assert server.certificate is not None
        sa = service_account(tmp_path / "sa", token=server.token, ca_pem=server.certificate.ca_pem)
        env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
        creds = load_credentials(environ=env, service_account_dir=str(sa))
        assert creds.server == "https://[fd00::1]:443"
        assert creds.authorization() == f"Bearer {server.token}"
        (sa / "token").write_text("")
        with pytest.raises(CredentialsError, match=r"token file .* is empty"):
            load_credentials(environ=env, service_account_dir=str(sa))
        (sa / "token").unlink()
        with pytest.raises(CredentialsError, match=r"in-cluster.*token file"):
            load_credentials(environ=env, service_account_dir=str(sa))


def test_in_cluster_credentials_do_not_import_the_kubernetes_package(tmp_path: Path) -> None:
    # A shard in a pod never reads a kubeconfig: the package's ~20 MB are not loaded.
    sa = service_account(tmp_path / "sa", token="t", ca_pem=make_certificate(tmp_path / "tls").ca_pem)
    code = (
        "import sys; from panopticon.kube.credentials import load_credentials; "
        "env = {'KUBERNETES_SERVICE_HOST': '10.0.0.1', 'KUBERNETES_SERVICE_PORT': '443'}; "
        f"c = load_credentials(environ=env, service_account_dir={str(sa)!r}); "
        "assert c.server == 'https://10.0.0.1:443', c.server; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout


def test_without_any_source_loading_fails_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(CredentialsError, match="no Kubernetes credentials"):
        load_credentials(environ={})
    bad = tmp_path / "broken"
    bad.write_text("clusters: [oops")
    with pytest.raises(CredentialsError, match="broken"):
        load_credentials(str(bad))


def test_a_kubeconfig_that_cannot_be_used_is_one_error_naming_where_it_came_from(tmp_path: Path) -> None:
    good = tmp_path / "config"
    good.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: a\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\nusers: [{name: u, user: {}}]\n"
        "contexts: [{name: a, context: {cluster: c, user: u}}, {name: b, context: {cluster: c, user: u}}]\n"
    )
    (tmp_path / "empty").write_text("")
    cases = {
        (str(tmp_path / "missing"), None): "--kubeconfig .*/missing: no such file",
        (str(tmp_path / "empty"), None): "--kubeconfig .*/empty: the file is empty",
        (str(tmp_path), None): "--kubeconfig .*: is a directory, not a kubeconfig file",
        (str(good), "nope"): r"--context nope: no such context in --kubeconfig .*/config \(it has: a, b\)",
    }
    for (path, context), message in cases.items():
        with pytest.raises(CredentialsError, match=message):
            load_credentials(path, context, environ={})
    with pytest.raises(CredentialsError, match=r"\$KUBECONFIG .*/missing: no such file"):
        load_credentials(environ={"KUBECONFIG": str(tmp_path / "missing")})
    # Several files, as kubectl reads them: missing ones are skipped.
    several = f"{tmp_path / 'missing'}{os.pathsep}{good}"
    assert load_credentials(environ={"KUBECONFIG": several}).server == "http://127.0.0.1:1"
