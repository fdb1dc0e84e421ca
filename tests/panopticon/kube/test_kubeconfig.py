"""Plain kubeconfigs are read without the `kubernetes` package, exactly as the package
reads them; the others are left to the package."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubesim.tls import make_certificate
from panopticon.kube.credentials import Credentials, _from_package, load_credentials
from panopticon.kube.errors import CredentialsError
from panopticon.kube.kubeconfig import read_plain


def write(path: Path, cluster: dict[str, Any], user: dict[str, Any], **context: Any) -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": cluster},
            {"name": "other", "cluster": {"server": "http://x:1"}},
        ],
        "users": [{"name": "u", "user": user}, {"name": "nobody", "user": {}}],
        "contexts": [
            {"name": "ctx", "context": {"cluster": "c", "user": "u", **context}},
            {"name": "elsewhere", "context": {"cluster": "other", "user": "nobody"}},
        ],
        "current-context": "ctx",
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def facts(creds: Credentials) -> dict[str, Any]:
    """Everything a client uses of credentials (an SSLContext compares by what it checks)."""
    ctx = creds.ssl_context
    return {
        "server": creds.server,
        "authorization": creds.authorization(),
        "tls_server_name": creds.tls_server_name,
        "proxy": creds.proxy,
        "namespace": creds.namespace,
        "source": creds.source,
        "tls": None if ctx is None else (ctx.verify_mode, ctx.check_hostname, len(ctx.get_ca_certs()) > 0),
    }


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certificate(tmp_path_factory.mktemp("tls")).cert_file.parent


def plain_cases(tls: Path) -> dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    ca_data = base64.b64encode((tls / "ca.crt").read_bytes()).decode()
    return {
        "http and a token": ({"server": "http://127.0.0.1:8080/"}, {"token": "abc"}, {}),
        "no user credentials": ({"server": "http://127.0.0.1:8080"}, {}, {"namespace": "team-a"}),
        "a CA file, relative to the kubeconfig": (
            {"server": "https://127.0.0.1:6443", "certificate-authority": "tls/ca.crt"},
            {"token": "abc"},
            {},
        ),
        "CA data, a tls-server-name and a proxy": (
            {
                "server": "https://127.0.0.1:6443",
                "certificate-authority-data": ca_data,
                "tls-server-name": "kubernetes.default",
                "proxy-url": "http://proxy:3128",
            },
            {"token": "abc"},
            {"namespace": "ns"},
        ),
        "insecure, with client certificate files": (
            {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True},
            {"client-certificate": str(tls / "server.crt"), "client-key": str(tls / "server.key")},
            {},
        ),
    }


def test_plain_kubeconfigs_read_as_the_package_reads_them(tmp_path: Path, tls: Path) -> None:
    (tmp_path / "tls").symlink_to(tls)
    for name, (cluster, user, context) in plain_cases(tls).items():
        path = write(tmp_path / "config", cluster, user, **context)
        assert read_plain(path, None) is not None, name
        for chosen in (None, "ctx", "elsewhere"):
            assert facts(load_credentials(path, chosen, environ={})) == facts(
                _from_package(path, chosen, origin="--kubeconfig")
            ), (name, chosen)


def test_anything_else_is_left_to_the_package(tmp_path: Path, tls: Path) -> None:
    exec_user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "true"}}
    server = {"server": "http://127.0.0.1:8080"}
    cases: dict[str, tuple[dict[str, Any], dict[str, Any], str | None]] = {
        "an exec plugin": (server, exec_user, None),
        "an auth provider": (server, {"auth-provider": {"name": "oidc", "config": {}}}, None),
        "a token file": (server, {"tokenFile": "/var/run/token"}, None),
        "basic auth": (server, {"username": "a", "password": "b"}, None),
        "an embedded client certificate": (
            server,
            {"client-certificate-data": "eA==", "client-key-data": "eA=="},
            None,
        ),
        "an unknown cluster field": ({**server, "disable-compression": True}, {}, None),
        "both CA forms": (
            {**server, "certificate-authority": "a", "certificate-authority-data": "eA=="},
            {},
            None,
        ),
        "CA data that is not base64": ({**server, "certificate-authority-data": "not base64!"}, {}, None),
        "a server without a scheme": ({"server": "127.0.0.1:8080"}, {}, None),
        "an unknown context": (server, {}, "nope"),
        "a certificate without its key": (server, {"client-certificate": "a.crt"}, None),
    }
    for name, (cluster, user, context) in cases.items():
        path = write(tmp_path / "config", cluster, user)
        assert read_plain(path, context) is None, name
    broken = tmp_path / "broken"
    broken.write_text("clusters: [oops")
    assert read_plain(str(broken), None) is None
    several = write(tmp_path / "a", server, {})
    assert read_plain(f"{several}:{several}", None) is None


def test_a_plain_kubeconfig_does_not_import_the_package(tmp_path: Path) -> None:
    """What a shard started with a kubeconfig saves (a third of its start-up CPU)."""
    path = write(tmp_path / "config", {"server": "http://127.0.0.1:8080"}, {"token": "abc"})
    code = (
        "import sys; from panopticon.kube.credentials import load_credentials; "
        f"c = load_credentials({path!r}, environ={{}}); "
        "assert c.authorization() == 'Bearer abc', c; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout


def test_a_plain_kubeconfig_with_a_bad_ca_is_one_error_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path / "config", {"server": "https://x:1", "certificate-authority": "missing.crt"}, {})
    with pytest.raises(CredentialsError, match=r"kubeconfig .*/config: TLS material"):
        load_credentials(path, environ={})
